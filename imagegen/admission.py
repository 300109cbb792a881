"""Admission: a bounded queue in front of a pool of generation threads, with a waiting-time budget."""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import threading
import time
from collections.abc import Callable

from imagegen.errors import QueueFull, ShuttingDown
from imagegen.observability import Metrics

log = logging.getLogger(__name__)


class Admission:
    """Runs accepted work on `concurrency` threads; up to `queue_limit` more wait their turn.

    Beyond that, `submit` raises QueueFull. Work that waited longer than `max_wait` seconds is not run:
    its `expired` callback runs instead, so a shopper hears "too busy" rather than waiting forever.
    A queued item costs a closure and a few hundred bytes; a running one costs what its work holds.
    """

    def __init__(
        self,
        concurrency: int,
        queue_limit: int,
        max_wait: float,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = concurrency + queue_limit
        self._max_wait = max_wait
        self._metrics = metrics
        self._clock = clock
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="generation")
        self._lock = threading.Lock()
        self._admitted = 0  # queued + running
        self._closed = False

    def submit(
        self, run: Callable[[], None], expired: Callable[[float], None], dropped: Callable[[], None] = lambda: None
    ) -> None:
        """Queues run(); raises Busy (QueueFull, ShuttingDown) when the queue is full or admission has closed.

        expired(waited seconds) runs instead when it waited too long; dropped() when shutdown came first.
        """
        with self._lock:
            if self._closed:
                raise ShuttingDown()
            if self._admitted >= self._limit:
                raise QueueFull()
            self._admitted += 1
        self._metrics.queued.inc()
        accepted = self._clock()
        context = contextvars.copy_context()
        try:
            future = self._pool.submit(context.run, self._start, run, expired, accepted)
        except RuntimeError:  # the pool shut down between the check above and now
            self._metrics.queued.dec()
            self._release()
            raise ShuttingDown() from None
        future.add_done_callback(lambda done: done.cancelled() and self._drop(dropped))

    def shutdown(self, grace_seconds: float) -> bool:
        """Closes admission, drops work not yet started, and waits up to the grace period for running
        work; True when all of it ended. (Work started now would hardly finish in a pod going away.)"""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        waiter = threading.Thread(target=self._pool.shutdown, kwargs={"wait": True}, daemon=True)
        waiter.start()
        waiter.join(grace_seconds)
        return not waiter.is_alive()

    @property
    def admitted(self) -> int:
        """Queued plus running work."""
        with self._lock:
            return self._admitted

    def _start(self, run: Callable[[], None], expired: Callable[[float], None], accepted: float) -> None:
        waited = self._clock() - accepted
        self._metrics.queued.dec()
        self._metrics.queue_wait.observe(waited)
        try:
            if waited > self._max_wait:
                expired(waited)
            else:
                run()
        except Exception:  # noqa: BLE001 (callers handle their own errors; this keeps the thread alive)
            log.exception("admitted work crashed")
        finally:
            self._release()

    def _drop(self, dropped: Callable[[], None]) -> None:
        self._metrics.queued.dec()
        try:
            dropped()
        except Exception:  # noqa: BLE001 (shutdown goes on whatever a callback does)
            log.exception("dropping queued work failed")
        finally:
            self._release()

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1
