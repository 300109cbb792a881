"""The generation queue: one contract in process, on a real redis-server and on a real 3-node Redis Cluster."""

from __future__ import annotations

import threading

import pytest

from imagegen.domain import Picture
from imagegen.errors import GenerationFailed, PeerUnavailable
from imagegen.queue import Job, lane_for
from imagegen.queue.memory import MemoryQueue
from imagegen.queue.redis import RedisQueue
from imagegen.redis_connect import connect
from tests.redis_cluster import BACKENDS, redis_cluster, redis_cluster_addr, replica_views  # noqa: F401 (fixtures)
from tests.service import wait_for

LEASE = 1.0


@pytest.fixture(params=BACKENDS)
def make_queue(request):
    """Builds queues that share one backing store (two of them act as two replicas)."""
    with replica_views(request, lambda: MemoryQueue(lease_seconds=LEASE, max_attempts=3), lambda client, addr: RedisQueue(client, lease_seconds=LEASE, max_attempts=3, addr=addr)) as make:
        yield make


def job(generation_id: str, lane: str = "") -> Job:
    return Job(generation_id, lane, f"payload of {generation_id}".encode())


def test_a_job_is_taken_with_its_payload_and_acked_once(make_queue):
    queue = make_queue()
    assert queue.enqueue(job("g1", "alice")) is True
    assert queue.enqueue(job("g1", "alice")) is False  # already queued
    claimed = queue.take("c1")
    assert (claimed.job, claimed.attempts, claimed.poisoned) == (job("g1", "alice"), 1, False)
    assert claimed.waited_seconds >= 0
    assert queue.position("g1") == 0 and queue.depth().running == 1 and queue.holds("g1")
    assert queue.take("c1") is None
    assert queue.ack("g1") is True and queue.ack("g1") is False
    assert queue.position("g1") is None and (queue.depth().waiting, queue.depth().running) == (0, 0)
    assert not queue.holds("g1")


def test_a_light_shopper_is_not_queued_behind_a_heavy_ones_twenty(make_queue):
    queue = make_queue()
    for number in range(20):
        queue.enqueue(job(f"heavy-{number}", "heavy"))
    queue.enqueue(job("light-0", "light"))
    queue.enqueue(job("shared-0"))
    assert queue.position("light-0") == 1 and queue.position("shared-0") == 2
    order = [queue.take("c1").job.generation_id for _ in range(4)]
    assert order == ["heavy-0", "light-0", "shared-0", "heavy-1"]


def test_positions_never_rise_while_waiting_and_newcomers_are_served_fairly(make_queue):
    queue = make_queue()
    for number in range(5):
        queue.enqueue(job(f"heavy-{number}", "heavy"))
    seen = {f"heavy-{n}": queue.position(f"heavy-{n}") for n in range(5)}
    assert seen == {f"heavy-{n}": n for n in range(5)}
    for step in range(5):
        queue.enqueue(job(f"newcomer-{step}", f"lane-{step}"))  # each is placed ahead of heavy's later work
        for generation_id, before in seen.items():
            now = queue.position(generation_id)
            if now is not None:
                assert now <= before, generation_id
                seen[generation_id] = now
        queue.ack(queue.take("c1").job.generation_id)
    assert queue.position("newcomer-4") is not None


def test_a_dead_consumers_job_is_taken_by_another_after_the_lease(make_queue):
    one, two = make_queue(), make_queue()
    one.enqueue(job("g1"))
    assert one.take("replica-a").job.generation_id == "g1"  # replica-a dies: it never renews nor acks
    assert two.take("replica-b") is None  # within the lease, nobody else runs it
    again = wait_for(lambda: two.take("replica-b", block_seconds=0.2), what="the lease to run out")
    assert (again.job.generation_id, again.attempts, again.poisoned) == ("g1", 2, False)
    assert one.renew("replica-a", "g1") is False  # the dead one lost it
    assert two.renew("replica-b", "g1") is True
    assert two.ack("g1") is True


def test_a_renewed_lease_keeps_the_job_with_its_consumer(make_queue):
    one, two = make_queue(), make_queue()
    one.enqueue(job("g1"))
    one.take("replica-a")
    for _ in range(8):  # about two leases in all, renewed every quarter lease
        assert one.renew("replica-a", "g1") is True
        assert two.take("replica-b", block_seconds=LEASE / 4) is None
    assert one.ack("g1") is True


def test_a_job_handed_back_on_shutdown_is_taken_at_once_without_counting_an_attempt(make_queue):
    one, two = make_queue(), make_queue()
    one.enqueue(job("g1"))
    one.enqueue(job("g2", "bob"))
    one.take("replica-a")
    assert two.hand_back("replica-b", "g1") is False  # not its job
    assert one.hand_back("replica-a", "g1") is True
    assert one.position("g1") == 0 and one.position("g2") == 1
    claimed = two.take("replica-b")  # no lease to wait out
    assert (claimed.job.generation_id, claimed.attempts) == ("g1", 1)
    assert two.ack("g1") is True


def test_a_job_whose_workers_died_max_attempts_times_is_reported_poisoned(make_queue):
    queue = make_queue()
    queue.enqueue(job("poison"))
    queue.enqueue(job("fine", "other"))
    assert queue.take("a").job.generation_id == "poison"
    assert queue.take("b").job.generation_id == "fine"
    queue.ack("fine")
    attempts = []
    while True:
        claimed = wait_for(lambda: queue.take("next", block_seconds=0.2), what="the lease to run out")
        attempts.append((claimed.attempts, claimed.poisoned))
        if claimed.poisoned:
            break
    assert attempts == [(2, False), (3, False), (3, True)]
    assert queue.position("poison") is None and queue.ack("poison") is False
    assert queue.depth().running == 0


def test_cancel_withdraws_a_waiting_job_but_not_a_running_one(make_queue):
    queue = make_queue()
    queue.enqueue(job("running"))
    queue.enqueue(job("waiting", "bob"))
    queue.enqueue(job("after", "carol"))
    queue.take("c1")
    assert queue.cancel("running") is False
    assert queue.cancel("waiting") is True and queue.cancel("waiting") is False
    assert queue.cancel("unknown") is False
    assert queue.position("waiting") is None and queue.position("after") == 0
    assert queue.take("c1").job.generation_id == "after"
    assert (queue.depth().waiting, queue.depth().running) == (0, 2)


def test_a_blocked_take_wakes_when_another_replica_enqueues(make_queue):
    one, two = make_queue(), make_queue()
    assert two.take("replica-b", block_seconds=0.1) is None
    one.enqueue(job("g1"))
    claimed = wait_for(lambda: two.take("replica-b", block_seconds=1.0), what="the take to see the job")
    assert claimed.job.generation_id == "g1"


def test_waiting_for_work_takes_nothing_and_wakes_when_another_replica_enqueues(make_queue):
    one, two = make_queue(), make_queue()
    one.take("c1")  # the first take looks for abandoned leases; waits within a quarter lease need not
    assert one.wait_for_work(LEASE / 8) is False
    two.enqueue(job("g1"))
    assert one.wait_for_work(0.3) is True and one.wait_for_work(0.3) is True  # still there: nothing taken
    assert one.position("g1") == 0 and one.depth().waiting == 1
    one.ack(one.take("c1").job.generation_id)
    woken = []
    waiter = threading.Thread(target=lambda: woken.append(one.wait_for_work(10)))
    waiter.start()
    two.enqueue(job("g2"))
    waiter.join(10)
    assert woken == [True]


def test_two_consumers_each_take_a_job_exactly_once(make_queue):
    one, two = make_queue(), make_queue()
    for number in range(30):
        one.enqueue(job(f"g{number}", f"lane-{number % 4}"))
    taken = []
    while (claimed := (one if len(taken) % 2 else two).take("c" + str(len(taken) % 2))) is not None:
        taken.append(claimed.job.generation_id)
    assert sorted(taken) == sorted(f"g{n}" for n in range(30))


def test_lanes_are_hashed_user_ids_and_empty_for_calls_without_one():
    assert lane_for("  ") == "" and lane_for("shopper-1") == lane_for(" shopper-1 ")
    assert "shopper" not in lane_for("shopper-1") and len(lane_for("shopper-1")) == 32


def test_nothing_is_left_in_redis_once_every_job_has_ended(redis_addr):
    client = connect(redis_addr)
    queue = RedisQueue(client, lease_seconds=LEASE, addr=redis_addr)
    for number in range(12):
        queue.enqueue(job(f"g{number}", f"lane-{number % 3}"))
    queue.cancel("g11")
    queue.hand_back("c1", queue.take("c1").job.generation_id)
    while (claimed := queue.take("c1")) is not None:
        queue.ack(claimed.job.generation_id)
    left = sorted(key.decode() for key in client.keys("imagegen:*"))
    assert left == ["imagegen:{queue}:running", "imagegen:{queue}:seq", "imagegen:{queue}:v", "imagegen:{queue}:wake"]


def test_redis_away_is_peer_unavailable_and_the_queue_works_again_after(redis_server, redis_addr):
    queue = RedisQueue(connect(redis_addr), lease_seconds=LEASE, addr=redis_addr)
    queue.enqueue(job("before"))
    redis_server.stop()
    with pytest.raises(PeerUnavailable, match="generation queue \\(Redis at 127.0.0.1"):
        queue.enqueue(job("during"))
    with pytest.raises(PeerUnavailable):
        queue.take("c1", block_seconds=0.1)
    redis_server.start()  # no persistence: what was queued is gone with the server, the queue starts afresh
    assert queue.enqueue(job("after")) is True
    assert queue.take("c1").job.generation_id == "after"


def test_many_threads_on_two_replicas_take_every_job_exactly_once(make_queue):
    queues = [make_queue(), make_queue()]
    for number in range(60):
        queues[0].enqueue(job(f"g{number}", f"lane-{number % 7}"))
    taken: list[str] = []
    lock = threading.Lock()

    def work(queue, consumer: str) -> None:
        while (claimed := queue.take(consumer)) is not None:
            with lock:
                taken.append(claimed.job.generation_id)
            queue.ack(claimed.job.generation_id)

    threads = [threading.Thread(target=work, args=(queues[n % 2], f"c{n}")) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(taken) == sorted(f"g{n}" for n in range(60))
    assert (queues[1].depth().waiting, queues[1].depth().running) == (0, 0)


class _Drawings:
    """A generator that counts its drawings; the first fails when told to."""

    name = "counting"

    def __init__(self, fail_first: bool = False) -> None:
        self.calls = 0
        self._fail_first = fail_first

    def generate(self, request, progress):
        from tests.unit.fakes import png

        self.calls += 1
        if self._fail_first and self.calls == 1:
            raise GenerationFailed("the model refused this one")
        return Picture(png(), "image/png")


class _MissedEnds:
    """The status store, but Redis misses the first `misses` final writes (complete or fail): they raise."""

    def __init__(self, statuses, misses: int = 1) -> None:
        self._statuses = statuses
        self.misses = misses

    def __getattr__(self, name):
        return getattr(self._statuses, name)

    def _ended(self, name: str, *args):
        if self.misses > 0:
            self.misses -= 1
            self._statuses.disown(args[0])  # as an end does: this replica stops renewing its status lease
            raise PeerUnavailable("shared state (Redis at 127.0.0.1)", "no answer in time")
        return getattr(self._statuses, name)(*args)

    def complete(self, *args):
        return self._ended("complete", *args)

    def fail(self, *args):
        return self._ended("fail", *args)


def _shop_on_redis(redis_addr: str, generator, lease: float = LEASE, misses: int = 1):
    """The use cases wired as the service wires them, on the real Redis: queue, statuses, workers."""
    from imagegen.observability import Metrics
    from imagegen.state.redis import redis_state
    from imagegen.usecases.pending import Pending
    from imagegen.usecases.queue import GenerationQueue, Workers
    from imagegen.usecases.run import RunGeneration
    from imagegen.usecases.start import CartRequest, Drawing, StartGeneration
    from imagegen.usecases.status import ReadStatus
    from tests.unit.fakes import FakePictures, FakeShop, MemoryStore

    client = connect(redis_addr, timeout_seconds=2)
    queue = RedisQueue(client, lease_seconds=lease, addr=redis_addr)
    state = redis_state(redis_addr, status_max_entries=100, status_ttl_seconds=600, lease_seconds=lease,
                        client=client, still_queued=queue.holds)
    statuses = _MissedEnds(state.statuses, misses)
    metrics, store = Metrics(), MemoryStore()
    pending = Pending(statuses, state.in_flight, metrics)
    run = RunGeneration(pictures=FakePictures(), generator=generator, store=store, statuses=statuses,
                        results=state.results, pending=pending, metrics=metrics)
    workers = GenerationQueue(queue, run, pending, statuses, metrics, Workers(
        count=1, queue_limit=16, max_wait_seconds=60, lease_seconds=lease, consumer="replica-a", shop_wide=True))
    workers.start()
    start = StartGeneration(cart=FakeShop({"alice": [("MUG", 1)]}), catalog=FakeShop(), store=store, state=state,
                            queue=workers, pending=pending, metrics=metrics, drawing=Drawing(generator.name, 256))
    return (lambda: start(CartRequest(user_id="alice"))), ReadStatus(state.statuses, queue), statuses, (
        lambda: (workers.shutdown(1), state.close()))


@pytest.mark.parametrize("missed", ["completed", "failed"])
def test_a_job_whose_end_redis_missed_stays_queued_reads_processing_and_is_drawn_again(redis_addr, missed):
    drawings = _Drawings(fail_first=missed == "failed")  # failed: Redis misses the failure's record
    start, read, statuses, close = _shop_on_redis(redis_addr, drawings)
    try:
        record = start()
        seen: list[tuple[str, str]] = []

        def ended():
            standing = read(record.id)
            seen.append((standing.generation.status, standing.generation.error_message))
            return standing.generation.status != "processing"

        wait_for(ended, timeout=30, interval=0.02, what="the generation to end")
        # Never acked while its end was unrecorded: taken again after its lease (the status lease lapsed by
        # then too, and the reader did not call it interrupted), drawn again and recorded this time.
        assert seen[-1][0] == "completed", seen[-1]
        assert set(seen[:-1]) <= {("processing", "")}, set(seen)
        assert drawings.calls == 2 and statuses.misses == 0
    finally:
        close()

