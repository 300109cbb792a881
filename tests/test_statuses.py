"""The status store: lifecycle, monotonic progress, bounds in count and age."""

import pytest

from imagegen import statuses

pytestmark = pytest.mark.fast  # in memory: no servers, no processes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_new_generation_is_processing_at_zero():
    store = statuses.InProcessStatuses(100, 60)
    record = store.create("modern")
    assert (record.status, record.progress) == (statuses.PROCESSING, 0)
    assert store.get(record.id) == record


def test_generation_ids_are_unguessable_and_distinct():
    store = statuses.InProcessStatuses(100, 60)
    ids = {store.create("modern").id for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) >= 20 for i in ids)


def test_progress_never_goes_backwards_and_stays_below_100_while_processing():
    store = statuses.InProcessStatuses(100, 60)
    record = store.create("modern")
    store.progress(record.id, 40)
    store.progress(record.id, 20)
    assert store.get(record.id).progress == 40
    store.progress(record.id, 250)
    assert store.get(record.id).progress == 99


def test_completed_has_progress_100_and_url_and_is_final():
    store = statuses.InProcessStatuses(100, 60)
    record = store.create("modern")
    store.complete(record.id, "http://x/images/generated/a.png")
    store.fail(record.id, "late failure")
    store.progress(record.id, 10)
    done = store.get(record.id)
    assert (done.status, done.progress, done.image_url, done.error_message) == (
        statuses.COMPLETED, 100, "http://x/images/generated/a.png", "")


def test_failed_keeps_message():
    store = statuses.InProcessStatuses(100, 60)
    record = store.create("modern")
    store.fail(record.id, "the model's safety filter blocked the image")
    assert store.get(record.id).status == statuses.FAILED
    assert store.get(record.id).error_message == "the model's safety filter blocked the image"


def test_unknown_id_is_none():
    assert statuses.InProcessStatuses(100, 60).get("nope") is None


def test_records_expire_after_ttl():
    clock = Clock()
    store = statuses.InProcessStatuses(100, 60, clock=clock)
    record = store.create("modern")
    clock.now += 61
    assert store.get(record.id) is None
    assert len(store) == 0


def test_count_bound_evicts_oldest_finished_first_and_keeps_running_ones():
    store = statuses.InProcessStatuses(10, 3600)
    running = store.create("modern")
    finished = []
    for _ in range(30):
        record = store.create("modern")
        store.complete(record.id, "u")
        finished.append(record.id)
    assert len(store) <= 10
    assert store.get(running.id) is not None
    assert store.get(finished[-1]) is not None
    assert store.get(finished[0]) is None
