"""Every limit on concurrent work, derived from settings in one place.

A generation is admitted at the gate (GENERATE_MAX_INFLIGHT calls at once; one finding them taken waits up
to half a second for a slot, then is refused before its body is read), queued (GENERATION_QUEUE_LIMIT) and run on MODEL_CONCURRENCY threads that mostly wait on the model,
storage and pictures. CPU-heavy steps (the collage, Gemini's picture conversion, the fallback collage) take
one of CPU_CONCURRENCY slots themselves: more at once than cores only adds memory and latency. Uploads are
bounded once, at the gate (UPLOAD_CONCURRENCY). The RPC threads for admitted calls are every admitted
generation and upload plus a reserve; health, status and streams have budgets of their own beside them
(imagegen/edge.py BUDGETS), so a flood of one class cannot take the threads another needs; the small requests the frontend forwards shopper input in
are read a few at a time and capped in size, so a flood of 13 MB ones holds a few bodies, not one per thread.
"""

from __future__ import annotations

import dataclasses
import os
import threading

from imagegen.settings import Settings


@dataclasses.dataclass(frozen=True)
class Capacity:
    """The service's limits, each derived from settings."""

    generate_in_flight: int = 256  # GenerateCartImage calls handled at once (GENERATE_MAX_INFLIGHT)
    generate_in_flight_wait_seconds: float = 0.5  # a call finding them all taken waits this long for one
    uploads: int = 2  # UploadBackground calls handled at once (UPLOAD_CONCURRENCY)
    reserve_threads: int = 16  # RPC threads kept for health and status (RPC_RESERVE_THREADS)
    model_concurrency: int = 32  # generations running at once (MODEL_CONCURRENCY)
    queue_limit: int = 256  # generations waiting their turn (GENERATION_QUEUE_LIMIT)
    queue_max_wait_seconds: float = 90.0  # longest wait in that queue (GENERATION_MAX_WAIT_SECONDS)
    cpu: int = 2  # CPU-heavy steps at once (CPU_CONCURRENCY, 0: the cores this process may run on)
    reads: int = 4  # small requests being read at once, per method
    small_request_bytes: int = 1024 * 1024  # a GenerateCartImage request
    status_request_bytes: int = 64 * 1024  # a GetImageGenerationStatus request
    max_upload_bytes: int = 10 * 1024 * 1024  # MAX_UPLOAD_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> Capacity:
        """The limits the settings ask for."""
        return cls(
            generate_in_flight=settings.generate_max_inflight,
            uploads=settings.upload_concurrency,
            reserve_threads=settings.rpc_reserve_threads,
            model_concurrency=settings.model_concurrency,
            queue_limit=settings.generation_queue_limit,
            queue_max_wait_seconds=settings.generation_max_wait_seconds,
            cpu=settings.cpu_concurrency or len(os.sched_getaffinity(0)) or 1,
            max_upload_bytes=settings.max_upload_bytes,
        )

    @property
    def rpc_threads(self) -> int:
        """RPC threads for admitted calls: every admitted generation and upload, plus a reserve."""
        return self.generate_in_flight + self.uploads + self.reserve_threads

    @property
    def max_message_bytes(self) -> int:
        """Largest gRPC message accepted: the upload limit in base64 plus room for a data: prefix."""
        return (self.max_upload_bytes * 4 // 3) + 64 * 1024

    def cpu_slots(self) -> threading.BoundedSemaphore:
        """One set of CPU slots, shared by every CPU-heavy adapter of the process."""
        return threading.BoundedSemaphore(self.cpu)
