"""An ImageGenerationService on loopback whose generations wait in a queue the test moves: the shop-wide
queue's fields (queue_position, estimated_seconds) and CancelImageGeneration as the page will meet them."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc

from genproto import imagegeneration_pb2 as pb
from genproto import imagegeneration_pb2_grpc as pb_grpc


class QueuedService(pb_grpc.ImageGenerationServiceServicer):
    """Every generation is queued at `place` (position, seconds) until the test changes it; cancels are recorded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.place = (12, 40)
        self.cancelled: list[str] = []
        self.started: list[str] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_ImageGenerationServiceServicer_to_server(self, self._server)
        self.addr = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def move_to(self, position: int, seconds: int) -> None:
        """Sets the place every queued generation reports from now on."""
        with self._lock:
            self.place = (position, seconds)

    def GenerateCartImage(self, request, context):  # noqa: N802
        with self._lock:
            generation_id = f"queued{len(self.started):012d}"
            self.started.append(generation_id)
        return pb.GenerateCartImageResponse(generation_id=generation_id, status="processing")

    def GetImageGenerationStatus(self, request, context):  # noqa: N802
        with self._lock:
            if request.generation_id in self.cancelled:
                return pb.GetStatusResponse(status="failed", error_message="the picture was cancelled")
            position, seconds = self.place
        return pb.GetStatusResponse(status="processing", queue_position=position, estimated_seconds=seconds)

    def CancelImageGeneration(self, request, context):  # noqa: N802
        with self._lock:
            self.cancelled.append(request.generation_id)
        return pb.GetStatusResponse(status="failed", error_message="the picture was cancelled")

    def ListStyles(self, request, context):  # noqa: N802
        return pb.ListStylesResponse(styles=[pb.ImageStyle(name="modern", label="Modern")])

    def cancels(self) -> list[str]:
        """The ids cancelled so far."""
        with self._lock:
            return list(self.cancelled)

    def close(self) -> None:
        """Stops serving."""
        self._server.stop(grace=None)
