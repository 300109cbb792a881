"""Runs the real service as a subprocess on loopback: for the demo and the end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genproto import imagegeneration_pb2 as pb
from genproto import imagegeneration_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent

# The first health check is refused while the process starts: gRPC's default 1 s reconnect backoff would hold
# every wait for SERVING a second or more past the port opening (the 20 s connect timeout is kept).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 250)]


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> object:
    """Polls predicate until it returns something truthy, or fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class ServiceProcess:
    """`python imagegenservice.py` with the given environment; a gRPC stub and HTTP helpers."""

    def __init__(self, env: dict[str, str], tmp_path: Path, python: str = sys.executable, cwd: Path = ROOT) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self._requested = env
        self._tmp_path = tmp_path
        self._command = ([python, "imagegenservice.py"], cwd)
        self._spawn()

    def _spawn(self) -> None:
        env = self._requested
        port, http_port = env.get("PORT", ""), env.get("HTTP_PORT", "")
        self.port = int(port) if port.isdigit() else free_port()
        self.http_port = int(http_port) if http_port.isdigit() else free_port()
        self.log_path = self._tmp_path / f"service-{self.port}.log"
        full_env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self._tmp_path),
            "PYTHONUNBUFFERED": "1",
            "PORT": str(self.port),
            "HTTP_PORT": str(self.http_port),
            "IMAGE_STORE_DIR": str(self._tmp_path / "images"),
            "SHUTDOWN_GRACE_SECONDS": "10",
        }
        full_env.update(env)
        self.env = full_env
        self._log = open(self.log_path, "wb")
        command, cwd = self._command
        self.process = subprocess.Popen(command, cwd=cwd, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}", options=CHANNEL_OPTIONS)
        self.stub = pb_grpc.ImageGenerationServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def _lost_port_race(self) -> bool:
        # free_port() releases the port before the service binds it; another process may take it first.
        auto_ports = not (self._requested.get("PORT", "").isdigit() or self._requested.get("HTTP_PORT", "").isdigit())
        logs = self.logs()
        return auto_ports and any(sign in logs for sign in ("Failed to bind", "Address already in use"))

    @property
    def http_base(self) -> str:
        """The side port's base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def wait_serving(self, timeout: float = 30.0) -> None:
        """Waits until gRPC health says SERVING (or the process died)."""

        attempts = [2]  # retries left after losing a race for a free port

        def serving() -> bool:
            if self.process.poll() is not None:
                if attempts[0] and self._lost_port_race():
                    attempts[0] -= 1
                    self.close()
                    self._spawn()
                    return False
                raise AssertionError(f"service exited with {self.process.returncode}:\n{self.logs()}")
            try:
                answer = self.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            except grpc.RpcError:
                return False
            return answer.status == health_pb2.HealthCheckResponse.SERVING

        wait_for(serving, timeout, what="service health SERVING")

    def wait_finished(self, generation_id: str, timeout: float = 60.0) -> tuple[pb.GetStatusResponse, list[int]]:
        """Polls the status RPC until the generation ends; returns the last status and the progress seen."""
        seen: list[int] = []

        def finished() -> pb.GetStatusResponse | None:
            status = self.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id=generation_id), timeout=5)
            seen.append(status.progress)
            return status if status.status != "processing" else None

        return wait_for(finished, timeout, interval=0.02, what="generation to finish"), seen

    def memory_mib(self, field: str = "VmHWM") -> float:
        """A memory figure of the process from /proc (VmHWM: peak resident set; VmRSS: now), in MiB."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        raise KeyError(field)

    def logs(self) -> str:
        """Everything the service wrote so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict]:
        """The service's JSON log lines so far, parsed."""
        return [json.loads(line) for line in self.logs().splitlines() if line.startswith("{")]

    def http_get(self, url: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """GET a URL; returns status, headers and body (also for HTTP errors)."""
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def terminate(self, timeout: float = 30.0) -> int:
        """Sends SIGTERM and waits for exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        """Kills the process if still running and releases resources."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.channel.close()
        self._log.close()
