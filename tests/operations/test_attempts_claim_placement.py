"""taskSchedulingPolicy.nodeFillType in the claim: spread evens the work out over the
pool's nodes, pack fills one node first; neither holds work back when there is more of it
than free slots, nor for a node that is full, disabled or silent."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks.models import ComputeNode
from tasks.operations.attempts import claim_work
from tasks.operations.pools import add_pool
from tests.execution import add, claimed_ids, make_job
from tests.execution import make_node as _make_node

pytestmark = pytest.mark.django_db


def make_pool(account, fill=None, pool_id="placed"):
    spec = {"id": pool_id, "vmSize": "local"}
    if fill:
        spec["taskSchedulingPolicy"] = {"nodeFillType": fill}
    return add_pool(account, spec=spec)


def make_node(pool, node_id, slots=4):
    return _make_node(pool, node_id, slots=slots)


def add_tasks(account, pool, n, **spec):
    job = make_job(account, pool, f"job-{pool.pool_id}")
    for i in range(n):
        add(job, f"t{i}", **spec)
    return job


def test_spread_is_the_default_and_four_tasks_on_two_idle_nodes_run_two_and_two(account):
    pool = make_pool(account)
    a, b = make_node(pool, "a"), make_node(pool, "b")
    add_tasks(account, pool, 4)
    assert len(claimed_ids(a)) == 1  # b has nothing yet
    assert len(claimed_ids(b)) == 2  # a runs one: b catches up and passes it by one
    assert len(claimed_ids(a)) == 1
    assert (len(claimed_ids(a)), len(claimed_ids(b))) == (0, 0)
    counts = {n.node_id: n.attempts.filter(outcome="running").count() for n in (a, b)}
    assert counts == {"a": 2, "b": 2}


def test_pack_fills_one_node_before_the_next(account):
    pool = make_pool(account, "pack")
    a, b = make_node(pool, "a"), make_node(pool, "b")
    add_tasks(account, pool, 4)
    assert claimed_ids(b) == []  # as empty as a, and a comes first
    assert len(claimed_ids(a)) == 4


def test_pack_prefers_the_fuller_node_and_then_the_next(account):
    pool = make_pool(account, "pack")
    a, b = make_node(pool, "a", slots=2), make_node(pool, "b", slots=2)
    ComputeNode.objects.filter(pk=a.pk).update(scheduling_enabled=False)
    job = add_tasks(account, pool, 1)
    assert len(claimed_ids(b)) == 1  # a takes no work: b does
    ComputeNode.objects.filter(pk=a.pk).update(scheduling_enabled=True)
    add(job, "more1")
    assert claimed_ids(a) == []  # b is fuller, although a comes first
    assert len(claimed_ids(b)) == 1
    add(job, "more2")
    assert len(claimed_ids(a)) == 1  # b is full: a takes the rest


def test_with_more_work_than_free_slots_every_node_fills_whatever_the_fill_type(account):
    for fill in ("spread", "pack"):
        pool = make_pool(account, fill, pool_id=f"busy-{fill}")
        a, b = make_node(pool, f"a-{fill}"), make_node(pool, f"b-{fill}")
        add_tasks(account, pool, 9)
        assert (len(claimed_ids(b)), len(claimed_ids(a))) == (4, 4)


def test_a_node_that_is_disabled_or_silent_holds_nothing_back(account):
    pool = make_pool(account)
    a, b, c = make_node(pool, "a"), make_node(pool, "b"), make_node(pool, "c")
    ComputeNode.objects.filter(pk=b.pk).update(scheduling_enabled=False)
    ComputeNode.objects.filter(pk=c.pk).update(last_heartbeat=timezone.now() - timedelta(minutes=5))
    add_tasks(account, pool, 3)
    assert len(claimed_ids(a)) == 3


def test_a_node_without_room_for_the_task_holds_nothing_back(account):
    pool = make_pool(account)
    a, _b = make_node(pool, "a", slots=4), make_node(pool, "b", slots=1)
    add_tasks(account, pool, 2, requiredSlots=2)
    assert len(claimed_ids(a)) == 2


def test_placement_costs_queries_only_when_there_is_less_work_than_slots(account):
    pool = make_pool(account)
    a, _b = make_node(pool, "a"), make_node(pool, "b")
    add_tasks(account, pool, 20)
    with CaptureQueriesContext(connection) as plenty:
        claim_work(a, limit=4)
    ComputeNode.objects.exclude(pk=a.pk).delete()
    pool2 = make_pool(account, pool_id="few")
    c, _d = make_node(pool2, "c"), make_node(pool2, "d")
    add_tasks(account, pool2, 1)
    with CaptureQueriesContext(connection) as few:
        claim_work(c, limit=4)
    assert (
        len(few.captured_queries) == len(plenty.captured_queries) + 2
    )  # the other nodes, their load
