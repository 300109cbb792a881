"""Queuing a generation: the admission pool runs it, expires it or drops it; shutdown ends what is left."""

from __future__ import annotations

from imagegen.admission import Admission
from imagegen.errors import Busy
from imagegen.usecases.pending import Pending
from imagegen.usecases.run import Job, RunGeneration


class GenerationQueue:
    """Hands accepted jobs to the admission pool and keeps the pending ledger in step with it."""

    def __init__(self, admission: Admission, run: RunGeneration, pending: Pending) -> None:
        self._admission = admission
        self._run = run
        self._pending = pending

    def submit(self, job: Job) -> None:
        """Queues the job; raises Busy (and forgets it) when the queue is full or shutting down."""
        self._pending.add(job.generation_id, job.cache_key)
        try:
            self._admission.submit(
                lambda: self._run(job), lambda waited: self._run.expire(job, waited), lambda: self._run.drop(job)
            )
        except Busy:
            self._pending.forget(job.generation_id, job.cache_key)
            raise

    def shutdown(self, grace_seconds: float) -> int:
        """Stops accepting work, lets running generations finish within the grace period.

        Returns how many were still unfinished (and are now marked failed).
        """
        self._pending.stop()
        self._admission.shutdown(grace_seconds)
        return self._pending.fail_unfinished()
