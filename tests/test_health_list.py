"""grpc.health.v1.Health/List over real gRPC against the service process."""

from __future__ import annotations

from grpc_health.v1 import health_pb2

SERVICE = "hipstershop.ImageGenerationService"


def test_list_answers_every_status_without_logging_an_error(service):
    before = len(service.logs())
    for _ in range(5):
        answer = service.health.List(health_pb2.HealthListRequest(), timeout=5)
        assert {name: status.status for name, status in answer.statuses.items()} == {
            "": health_pb2.HealthCheckResponse.SERVING, SERVICE: health_pb2.HealthCheckResponse.SERVING}
    written = service.logs()[before:]
    assert "Traceback" not in written and '"severity": "ERROR"' not in written
