"""Test access to the service process runner (shared with the demo)."""

from devstack.process import ROOT, ServiceProcess, free_port, wait_for

__all__ = ["ROOT", "ServiceProcess", "free_port", "wait_for"]
