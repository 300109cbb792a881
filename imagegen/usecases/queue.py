"""Queuing and working off generations: accepted jobs wait in the shop's queue; this process's taker takes
them in fair order whenever one of its workers is free, and the worker runs the job under a renewed lease and
acks it; shutdown ends or hands back what is left. One taker per process, not one per worker: idle workers
cost the queue nothing (with Redis, one blocking read per replica, not a poll per worker).

With one process the queue is in memory and the rules are today's: GENERATION_QUEUE_LIMIT waiting beyond
MODEL_CONCURRENCY running, and what waited past GENERATION_MAX_WAIT_SECONDS expires. With Redis the queue
is the shop's: a job outlives the replica that accepted it and the one that ran it (taken again after its
lease), and a replica shutting down hands its running jobs back at once when the grace runs out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue as local_queue
import threading
import time
from typing import Protocol

from imagegen import queue as shared_queue
from imagegen.errors import PeerUnavailable, QueueFull, ShuttingDown
from imagegen.estimate import Estimator
from imagegen.observability import Metrics, bound, continued
from imagegen.state import StatusStore
from imagegen.usecases.pending import SHUT_DOWN, Pending
from imagegen.usecases.run import UNRECORDED, Job, RunGeneration

log = logging.getLogger(__name__)

POISONED = ("this picture could not be drawn: the service stopped while drawing it several times; "
            "please try a different cart or try again later")


class StartGate(Protocol):
    """What a job needs before it is taken (the model quota's next call): reserved first, handed to the worker."""

    def reserve(self, timeout: float) -> object | None:
        """A reservation, waiting up to timeout seconds; None when none came."""
        ...

    def release(self, reservation: object) -> None:
        """Gives back a reservation no job used."""
        ...

    def handed(self, reservation: object) -> contextlib.AbstractContextManager[None]:
        """Within it, the worker's thread uses the reservation (given back if it does not)."""
        ...


@dataclasses.dataclass(frozen=True)
class Workers:
    """How this process works off the queue: capacity.py derives the count, limit and wait."""

    count: int  # worker threads (MODEL_CONCURRENCY)
    queue_limit: int  # GENERATION_QUEUE_LIMIT
    max_wait_seconds: float  # GENERATION_MAX_WAIT_SECONDS
    lease_seconds: float  # GENERATION_LEASE_SECONDS
    consumer: str  # this process's name in the shop's queue
    shop_wide: bool = False  # the queue outlives this process: hand work back rather than fail it


class GenerationQueue:
    """Puts accepted jobs in the shop's queue and runs MODEL_CONCURRENCY worker threads fed by one taker."""

    def __init__(
        self,
        queue: shared_queue.GenerationQueue,
        run: RunGeneration,
        pending: Pending,
        statuses: StatusStore,
        metrics: Metrics,
        workers: Workers,
        *,
        estimator: Estimator | None = None,
        gate: StartGate | None = None,
    ) -> None:
        self.queue = queue
        self._run = run
        self._pending = pending
        self._statuses = statuses
        self._metrics = metrics
        self._workers = workers.count
        self._queue_limit = workers.queue_limit
        self._max_wait = workers.max_wait_seconds
        self._lease = workers.lease_seconds
        self._consumer = workers.consumer
        self._shop_wide = workers.shop_wide
        self._estimator = estimator
        self._gate = gate  # with the model's quota: a job is taken only once a call may be sent for it
        self._stopping = threading.Event()
        self._closed = threading.Event()  # shutdown is over: leases are no longer renewed
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running: dict[str, Job] = {}
        self._handed_back: set[str] = set()
        self._free = threading.Semaphore(workers.count)  # workers with nothing to do: the taker takes one job each
        self._taken: local_queue.SimpleQueue[tuple[shared_queue.Claimed, object | None] | None] = (
            local_queue.SimpleQueue())

    def start(self) -> None:
        """Starts the worker threads, the taker feeding them and the lease renewal."""
        for number in range(self._workers):
            threading.Thread(target=self._work, name=f"generation-{number}", daemon=True).start()
        threading.Thread(target=self._take, name="queue-taker", daemon=True).start()
        threading.Thread(target=self._renew, name="queue-lease", daemon=True).start()

    def submit(self, job: Job) -> None:
        """Queues the job; raises QueueFull or ShuttingDown (both Busy) when the queue is full or shutting down."""
        if self._stopping.is_set():
            raise ShuttingDown()
        depth = self.queue.depth()
        full = (depth.waiting >= self._queue_limit if self._shop_wide
                else depth.waiting + depth.running >= self._queue_limit + self._workers)
        if full:
            raise QueueFull()
        if not self._shop_wide:
            self._pending.add(job.generation_id, job.cache_key)
        try:
            self.queue.enqueue(shared_queue.Job(job.generation_id, shared_queue.lane_for(job.user_id), job.encode()))
        except PeerUnavailable:
            if not self._shop_wide:
                self._pending.forget(job.generation_id, job.cache_key)
            raise

    def withdrawn(self, generation_id: str) -> None:
        """Frees the place of a job whose status was withdrawn (else the worker taking it skips it)."""
        try:
            if not self.queue.cancel(generation_id):
                return
        except PeerUnavailable:
            return
        for owed_id, cache_key in self._pending.owed():
            if owed_id == generation_id:
                self._pending.forget(generation_id, cache_key)

    def shutdown(self, grace_seconds: float) -> int:
        """Stops taking work and lets running generations finish within the grace period.

        Then, with the shop's queue, hands back what still runs (another replica finishes it); in process,
        marks it failed. Waiting jobs in process end at once. Returns how many were still unfinished.
        """
        deadline = time.monotonic() + grace_seconds
        self._pending.stop()
        self._stopping.set()
        if not self._shop_wide:
            self._end_waiting()
        with self._idle:
            while self._running and (remaining := deadline - time.monotonic()) > 0:
                self._idle.wait(remaining)
            left = dict(self._running)
            self._handed_back.update(left)
        self._closed.set()
        if not self._shop_wide:
            return self._pending.fail_unfinished()
        for generation_id in left:
            self._pending.quietly(self.queue.hand_back, self._consumer, generation_id)
            self._statuses.disown(generation_id)
        if left:
            log.warning("generations handed back to the queue at shutdown", extra={"count": len(left)})
        return len(left)

    def _end_waiting(self) -> None:
        """In process, a job still waiting when shutdown begins would hardly finish: it ends now."""
        with self._lock:
            running = set(self._running)
        for generation_id, cache_key in self._pending.owed():
            if generation_id not in running and self.queue.cancel(generation_id):
                self._pending.fail(generation_id, SHUT_DOWN)
                self._pending.forget(generation_id, cache_key)

    def _take(self) -> None:
        """Takes a job from the queue whenever a worker is free and hands it to one; at shutdown, stops them."""
        while not self._stopping.is_set():
            if not self._free.acquire(timeout=1.0):
                continue
            try:
                taken = self._take_one()
            except PeerUnavailable as error:
                log.warning("the generation queue cannot be read", extra={"reason": str(error)})
                taken = None
                self._stopping.wait(1.0)
            except Exception:  # noqa: BLE001 (the only taker: if it ended, this replica would draw nothing more)
                if not self._stopping.is_set():  # at shutdown the Redis client may close under a take
                    log.exception("taking from the generation queue failed; trying again")
                taken = None
                self._stopping.wait(1.0)
            if taken is None:
                self._free.release()
            else:
                self._taken.put(taken)
        for _ in range(self._workers):
            self._taken.put(None)

    def _take_one(self) -> tuple[shared_queue.Claimed, object | None] | None:
        """The next job, with the gate's reservation for it when there is a gate."""
        if self._gate is None:
            claimed = self.queue.take(self._consumer, block_seconds=1.0)
            return None if claimed is None else (claimed, None)
        # Work first, then the call's slot, then the job: no slot is held while the queue is empty, and
        # a job the quota cannot send yet keeps its place (and its honest position) in the queue.
        if not self.queue.wait_for_work(1.0) or (reservation := self._gate.reserve(1.0)) is None:
            return None
        try:
            claimed = self.queue.take(self._consumer)
        except PeerUnavailable:
            self._pending.quietly(self._gate.release, reservation)
            raise
        if claimed is None:  # another replica took it
            self._pending.quietly(self._gate.release, reservation)
            return None
        return claimed, reservation

    def _work(self) -> None:
        while (taken := self._taken.get()) is not None:
            claimed, reservation = taken
            try:
                with self._gate.handed(reservation) if reservation is not None else contextlib.nullcontext():
                    if self._stopping.is_set():  # taken as shutdown began: the next replica starts it
                        self._pending.quietly(self.queue.hand_back, self._consumer, claimed.job.generation_id)
                        continue
                    self._handle(claimed)
            except Exception:  # noqa: BLE001 (left in the queue, the job is taken again after its lease)
                log.exception("a queued generation could not be handled", extra={
                    "generation_id": claimed.job.generation_id})
            finally:
                self._free.release()

    def _handle(self, claimed: shared_queue.Claimed) -> None:
        generation_id = claimed.job.generation_id
        job = Job.decode(generation_id, claimed.job.payload, claimed.waited_seconds)
        if claimed.attempts > 1:
            self._metrics.repeated_runs.inc()
        if self._shop_wide:
            self._pending.add(generation_id, job.cache_key)
        with bound(request_id=job.request_id or None, generation_id=generation_id), continued(dict(job.trace)):
            self._start(claimed, job)

    def _start(self, claimed: shared_queue.Claimed, job: Job) -> None:
        """Fails a poisoned job, expires one that waited too long, skips a cancelled one, else runs it."""
        generation_id = job.generation_id
        if claimed.poisoned:  # already out of the queue
            log.error("generation abandoned by its workers too often; failing it", extra={"attempts": claimed.attempts})
            self._pending.fail(generation_id, POISONED)
            self._pending.forget(generation_id, job.cache_key)
            return
        self._metrics.queue_wait.observe(claimed.waited_seconds)
        if claimed.waited_seconds > self._max_wait:
            if self._run.expire(job, claimed.waited_seconds):
                self.queue.ack(generation_id)
            return
        if not self._statuses.own(generation_id):  # cancelled (or ended) while it waited
            self._pending.forget(generation_id, job.cache_key)
            self.queue.ack(generation_id)
            return
        with self._lock:
            self._running[generation_id] = job
        started = time.monotonic()
        try:
            outcome = self._run(job)
        finally:
            with self._idle:
                del self._running[generation_id]
                handed_back = generation_id in self._handed_back
                self._idle.notify_all()
        if outcome == "completed" and self._estimator is not None:
            self._estimator.record(time.monotonic() - started)
        # Acked only once its end is recorded: else a reader would find it neither queued nor ended.
        if not handed_back and outcome != UNRECORDED:
            self._pending.quietly(self.queue.ack, generation_id)

    def _renew(self) -> None:
        """Renews the lease of every job running here, every third of the lease."""
        while not self._closed.wait(self._lease / 3):
            with self._lock:
                running = list(self._running)
            for generation_id in running:
                try:
                    if not self.queue.renew(self._consumer, generation_id):
                        log.warning("a running generation's lease was lost; another worker may draw it too",
                                    extra={"generation_id": generation_id})
                except PeerUnavailable as error:
                    log.warning("a queue lease could not be renewed", extra={"reason": str(error)})
                    break
                except Exception:  # noqa: BLE001 (the only renewer: if it ended, every running job would be drawn twice)
                    if not self._closed.is_set():
                        log.exception("renewing a queue lease failed; trying again next round")
                    break
