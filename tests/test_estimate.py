"""The wait estimate: from run times and throughput, the same for every replica sharing Redis."""

from __future__ import annotations

import pytest

from imagegen.estimate import Estimator, MemoryRunLog, RedisRunLog
from tests.redis_cluster import BACKENDS, redis_cluster, redis_cluster_addr, replica_views  # noqa: F401 (fixtures)


@pytest.fixture(params=BACKENDS)
def make_log(request):
    with replica_views(request, MemoryRunLog, RedisRunLog) as make:
        yield make


def test_nothing_known_is_zero(make_log):
    assert Estimator(make_log(), refresh_seconds=0).estimate(5) == 0


def test_waiting_jobs_are_estimated_from_throughput_and_run_time_alike_on_every_replica(make_log):
    one, two = Estimator(make_log(), refresh_seconds=0), Estimator(make_log(), refresh_seconds=0)
    for _ in range(10):  # ten completions just now, 10 s each: about one a second
        one.record(10.0)
    assert two.estimate(0) == one.estimate(0) == 11  # next start in ~1 s, then the run
    assert two.estimate(9) == 20
    assert two.estimate(9) > two.estimate(3) > two.estimate(0)
    assert two.estimate(0, running_for=4.0) == 6 and two.estimate(0, running_for=30.0) == 1
