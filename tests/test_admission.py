"""Admission: work runs side by side up to the concurrency, a bounded queue behind it, a waiting budget."""

from __future__ import annotations

import threading

import pytest

from imagegen.admission import Admission
from imagegen.errors import Busy
from imagegen.observability import Metrics
from tests.service import wait_for

pytestmark = pytest.mark.fast  # in memory: no servers, no processes


class Gate:
    """Work items that wait until released, counting how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.done: list[int] = []

    def work(self, number: int):
        def run() -> None:
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            self.release.wait(20)
            with self.lock:
                self.running -= 1
                self.done.append(number)
        return run


def never_expires(waited: float) -> None:
    raise AssertionError("nothing should expire")


def test_work_runs_side_by_side_up_to_the_concurrency_and_the_rest_waits():
    admission = Admission(concurrency=4, queue_limit=10, max_wait=60, metrics=Metrics())
    gate = Gate()
    for number in range(10):
        admission.submit(gate.work(number), never_expires)
    wait_for(lambda: gate.running == 4, what="four running")
    assert admission.admitted == 10
    gate.release.set()
    wait_for(lambda: len(gate.done) == 10, what="all done")
    assert gate.most == 4
    assert admission.admitted == 0
    admission.shutdown(1)


def test_beyond_concurrency_plus_queue_limit_is_busy_and_room_returns_after():
    admission = Admission(concurrency=2, queue_limit=3, max_wait=60, metrics=Metrics())
    gate = Gate()
    for number in range(5):
        admission.submit(gate.work(number), never_expires)
    with pytest.raises(Busy, match="waiting"):
        admission.submit(gate.work(99), never_expires)
    gate.release.set()
    wait_for(lambda: admission.admitted == 0, what="the queue to drain")
    admission.submit(gate.work(100), never_expires)
    wait_for(lambda: 100 in gate.done, what="the later work")
    admission.shutdown(1)


def test_work_that_waited_past_the_budget_expires_instead_of_running():
    now = [0.0]
    admission = Admission(concurrency=1, queue_limit=5, max_wait=30, metrics=Metrics(), clock=lambda: now[0])
    gate = Gate()
    expired: list[float] = []
    admission.submit(gate.work(1), never_expires)
    wait_for(lambda: gate.running == 1, what="the first running")
    admission.submit(gate.work(2), expired.append)
    now[0] = 31.0  # the second has now waited 31 s
    gate.release.set()
    wait_for(lambda: expired, what="the second to expire")
    assert expired == [31.0] and gate.done == [1]
    admission.shutdown(1)


def test_queue_metrics_follow_the_work():
    metrics = Metrics()
    admission = Admission(concurrency=1, queue_limit=5, max_wait=60, metrics=metrics)
    gate = Gate()
    for number in range(3):
        admission.submit(gate.work(number), never_expires)
    wait_for(lambda: gate.running == 1, what="one running")
    assert metrics.registry.get_sample_value("imagegen_generations_queued") == 2
    gate.release.set()
    wait_for(lambda: len(gate.done) == 3, what="all done")
    assert metrics.registry.get_sample_value("imagegen_generations_queued") == 0
    assert metrics.registry.get_sample_value("imagegen_generation_queue_wait_seconds_count") == 3
    admission.shutdown(1)


def test_shutdown_refuses_new_work_and_reports_whether_running_work_ended():
    admission = Admission(concurrency=1, queue_limit=5, max_wait=60, metrics=Metrics())
    gate = Gate()
    admission.submit(gate.work(1), never_expires)
    wait_for(lambda: gate.running == 1, what="running")
    assert admission.shutdown(0.05) is False
    with pytest.raises(Busy, match="shutting down"):
        admission.submit(gate.work(2), never_expires)
    gate.release.set()


def test_shutdown_drops_work_not_yet_started_and_waits_for_running_work():
    admission = Admission(concurrency=1, queue_limit=5, max_wait=60, metrics=Metrics())
    gate = Gate()
    dropped: list[int] = []
    for number in range(3):
        admission.submit(gate.work(number), never_expires, lambda n=number: dropped.append(n))
    wait_for(lambda: gate.running == 1, what="the first running")
    assert admission.shutdown(0.05) is False  # the first still runs
    assert sorted(dropped) == [1, 2] and admission.admitted == 1  # the queued ones are told at once
    gate.release.set()
    assert admission.shutdown(20) is True  # waited for it
    assert gate.done == [0] and admission.admitted == 0


def test_a_crashing_item_does_not_lose_its_slot():
    admission = Admission(concurrency=1, queue_limit=0, max_wait=60, metrics=Metrics())

    def crash() -> None:
        raise RuntimeError("boom")

    admission.submit(crash, never_expires)
    wait_for(lambda: admission.admitted == 0, what="the slot back")
    admission.shutdown(1)
