"""gRPC health: grpcio-health-checking's servicer, with the List method its release leaves unimplemented."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2

MAX_LISTED = 100  # the protocol lets a server refuse a list this long with RESOURCE_EXHAUSTED


class HealthServicer(health.HealthServicer):
    """grpc.health.v1.Health: Check and Watch from grpcio-health-checking, and List from the same statuses."""

    def List(self, request: health_pb2.HealthListRequest, context: grpc.ServicerContext  # noqa: N802 (grpc API)
             ) -> health_pb2.HealthListResponse:
        """Every service's status, as Check would answer it."""
        with self._lock:
            statuses = dict(self._server_status)
        if len(statuses) > MAX_LISTED:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"more than {MAX_LISTED} services")
        return health_pb2.HealthListResponse(statuses={
            name: health_pb2.HealthCheckResponse(status=status) for name, status in statuses.items()})
