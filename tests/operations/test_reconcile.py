"""The reconciler against an in-memory provider: scale up and down, stop resize, timeouts,
provider errors, crash recovery and adoption."""

import time
from datetime import timedelta

import psycopg
import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from tasks.models import Attempt, ComputeNode, Pool, Task
from tasks.operations import nodes as node_ops
from tasks.operations.pools import add_pool, delete_pool, resize_pool, stop_resize_pool
from tasks.operations.reconcile import LOCK_KEY, Leadership, Reconciler
from tasks.providers.base import ProviderError
from tests.execution import add, claim, make_job
from tests.factories import AccountFactory
from tests.providers.fakes import FakeProvider

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider():
    return FakeProvider()


@pytest.fixture
def reconciler(provider):
    return Reconciler(providers={"local": provider})


def make_pool(**spec) -> Pool:
    return add_pool(AccountFactory(), spec={"id": "p", "vmSize": "standard_d2s_v3", **spec})


def register_all(pool: Pool) -> list[ComputeNode]:
    """What each started agent does first: register (creating -> idle)."""
    return [
        node_ops.register_node(pool, node_id=n.node_id, slots=n.slots)
        for n in ComputeNode.objects.filter(pool=pool, state="creating")
    ]


def refreshed(pool: Pool) -> Pool:
    return Pool.objects.get(pk=pool.pk)


def steady_pool(reconciler, nodes: int = 3, **spec) -> Pool:
    pool = make_pool(targetDedicatedNodes=nodes, **spec)
    reconciler.run_pass()
    register_all(pool)
    reconciler.run_pass()
    assert refreshed(pool).allocation_state == "steady"
    return pool


def test_a_new_pool_gets_its_nodes_created_and_their_agents_started(reconciler, provider):
    pool = make_pool(targetDedicatedNodes=2, taskSlotsPerNode=3)
    assert pool.allocation_state == "resizing"
    reconciler.run_pass()
    nodes = list(ComputeNode.objects.filter(pool=pool))
    assert len(nodes) == 2 and {n.state for n in nodes} == {"creating"}
    assert all(
        n.node_id.startswith("tvmps_") and n.node_id.endswith("_d") and len(n.node_id) == 40
        for n in nodes
    )
    assert all(
        n.is_dedicated and n.slots == 3 and n.allocation_time and n.provider_handle for n in nodes
    )
    assert sorted(launch.node_id for launch in provider.launches) == sorted(
        n.node_id for n in nodes
    )
    assert {
        (launch.slots, launch.is_dedicated, launch.pool_id) for launch in provider.launches
    } == {(3, True, "p")}
    assert refreshed(pool).allocation_state == "resizing"  # not allocated until the agents register


def test_the_pool_is_steady_once_its_agents_registered_and_the_etag_stays(reconciler):
    pool = make_pool(targetDedicatedNodes=2)
    reconciler.run_pass()
    register_all(pool)
    reconciler.run_pass()
    after = refreshed(pool)
    assert after.allocation_state == "steady" and after.resize_errors == []
    assert (after.etag, after.last_modified) == (pool.etag, pool.last_modified)
    assert after.allocation_state_transition_time > pool.allocation_state_transition_time


def test_low_priority_nodes_get_p_ids_and_start_as_low_priority(reconciler, provider):
    pool = make_pool(targetDedicatedNodes=1, targetLowPriorityNodes=2)
    reconciler.run_pass()
    low = ComputeNode.objects.filter(pool=pool, is_dedicated=False)
    assert low.count() == 2 and all(n.node_id.endswith("_p") for n in low)
    assert sorted(launch.is_dedicated for launch in provider.launches) == [False, False, True]


def test_allocation_seconds_keep_a_new_node_creating_before_its_agent_starts(
    reconciler, provider, settings
):
    settings.BATCHSITE_NODE_ALLOCATION_SECONDS = 30
    pool = make_pool(targetDedicatedNodes=1)
    reconciler.run_pass()
    reconciler.run_pass()
    node = ComputeNode.objects.get(pool=pool)
    assert node.state == "creating" and not node.provider_handle and provider.launches == []
    ComputeNode.objects.filter(pk=node.pk).update(
        allocation_time=timezone.now() - timedelta(seconds=31)
    )
    reconciler.run_pass()
    assert [launch.node_id for launch in provider.launches] == [node.node_id]


def test_a_pool_without_targets_gets_no_nodes(reconciler, provider):
    pool = make_pool()
    reconciler.run_pass()
    assert not ComputeNode.objects.filter(pool=pool).exists() and provider.launches == []
    assert refreshed(pool).allocation_state == "steady"


@pytest.mark.parametrize("option", ["requeue", "terminate", "taskcompletion", "retaineddata"])
def test_scale_down_hands_the_surplus_nodes_to_their_agents_with_the_option(
    reconciler, provider, option
):
    pool = steady_pool(reconciler, nodes=3)
    busy = ComputeNode.objects.filter(pool=pool).order_by("pk").first()
    job = make_job(pool.account, pool)
    add(job, "t1")
    assert [a.task.task_id for a in claim(busy)] == ["t1"]
    resize_pool(pool, target_dedicated=1, node_deallocation_option=option)
    reconciler.run_pass()
    leaving = ComputeNode.objects.filter(pool=pool, pending_action="remove")
    assert leaving.count() == 2 and {n.action_option for n in leaving} == {option}
    assert busy.pk not in {n.pk for n in leaving}  # idle nodes leave before busy ones
    reconciler.run_pass()  # their agents drain: nothing is removed under them
    assert ComputeNode.objects.filter(pool=pool).count() == 3
    assert refreshed(pool).allocation_state == "resizing"
    for node in leaving:
        provider.crash(node.node_id)  # the agents left and exited
    reconciler.run_pass()
    assert list(ComputeNode.objects.filter(pool=pool).values_list("pk", flat=True)) == [busy.pk]
    reconciler.run_pass()
    assert refreshed(pool).allocation_state == "steady"


def test_a_leaving_node_without_an_agent_is_removed_and_its_running_task_requeued(
    reconciler, provider
):
    pool = steady_pool(reconciler, nodes=1)
    node = ComputeNode.objects.get(pool=pool)
    job = make_job(pool.account, pool)
    task = add(job, "t1")
    claim(node)
    resize_pool(pool, target_dedicated=0)
    reconciler.run_pass()
    provider.crash(node.node_id)
    reconciler.run_pass()
    assert not ComputeNode.objects.filter(pk=node.pk).exists()
    task.refresh_from_db()
    assert (task.state, task.requeue_count) == ("active", 1)
    assert Attempt.objects.get(task=task).outcome == "requeued"
    reconciler.run_pass()
    assert refreshed(pool).allocation_state == "steady"


def test_a_queued_node_asked_to_leave_is_cancelled_in_the_provider(reconciler, provider):
    provider.queue = True
    pool = make_pool(targetDedicatedNodes=1)
    reconciler.run_pass()
    node = ComputeNode.objects.get(pool=pool)
    handle = provider.handle_of(node.node_id)
    stop_resize_pool(pool)
    reconciler.run_pass()  # asks the unallocated node to leave
    reconciler.run_pass()  # its agent never started: removed, the queued job cancelled
    assert not ComputeNode.objects.filter(pk=node.pk).exists()
    assert (handle, False) in provider.stops


def test_stop_resize_keeps_the_allocated_nodes_and_records_resize_stopped(reconciler, provider):
    pool = make_pool(targetDedicatedNodes=3)
    reconciler.run_pass()
    first = ComputeNode.objects.filter(pool=pool).order_by("pk").first()
    node_ops.register_node(pool, node_id=first.node_id, slots=first.slots)
    stopped = stop_resize_pool(pool)
    assert stopped.allocation_state == "stopping" and stopped.etag != pool.etag
    for node in ComputeNode.objects.filter(pool=pool).exclude(pk=first.pk):
        provider.crash(node.node_id)
    for _ in range(3):
        reconciler.run_pass()
    after = refreshed(pool)
    assert list(ComputeNode.objects.filter(pool=pool).values_list("pk", flat=True)) == [first.pk]
    assert (after.allocation_state, after.target_dedicated_nodes) == ("steady", 3)
    assert after.resize_errors == [
        {
            "code": "ResizeStopped",
            "message": "Desired number of dedicated nodes could not "
            "be allocated due to a stop resize operation",
        }
    ]


def test_a_resize_that_outlives_its_timeout_ends_with_allocation_timedout(reconciler, provider):
    provider.queue = True  # the nodes never get an allocation
    pool = make_pool(targetDedicatedNodes=2)
    reconciler.run_pass()
    Pool.objects.filter(pk=pool.pk).update(
        allocation_state_transition_time=timezone.now() - timedelta(minutes=16)
    )
    reconciler.run_pass()
    after = refreshed(pool)
    assert after.allocation_state == "steady" and after.target_dedicated_nodes == 2
    assert [e["code"] for e in after.resize_errors] == ["AllocationTimedout"]
    assert "resize timeout" in after.resize_errors[0]["message"]
    reconciler.run_pass()  # the nodes still queued are cancelled
    assert not ComputeNode.objects.filter(pool=pool).exists()


def test_a_resize_timeout_of_the_pool_is_honoured(reconciler, provider):
    provider.queue = True
    pool = make_pool(targetDedicatedNodes=1, resizeTimeout=timedelta(minutes=30))
    reconciler.run_pass()
    Pool.objects.filter(pk=pool.pk).update(
        allocation_state_transition_time=timezone.now() - timedelta(minutes=16)
    )
    reconciler.run_pass()
    assert refreshed(pool).allocation_state == "resizing"


def test_a_provider_refusing_to_start_ends_the_resize_with_its_error(reconciler, provider):
    provider.refuse_start = ProviderError(
        "SlurmUnavailable", "sbatch: error: Batch job submission failed"
    )
    pool = make_pool(targetDedicatedNodes=2)
    reconciler.run_pass()
    after = refreshed(pool)
    assert after.allocation_state == "steady" and after.target_dedicated_nodes == 2
    assert after.resize_errors == [
        {
            "code": "SlurmUnavailable",
            "message": "sbatch: error: Batch job submission failed",
            "values": [{"name": "Provider", "value": "local"}],
        }
    ]
    assert not ComputeNode.objects.filter(pool=pool).exists()


def test_a_provider_that_cannot_list_its_nodes_restarts_nothing(reconciler, provider):
    pool = steady_pool(reconciler, nodes=1)
    launches = len(provider.launches)
    provider.refuse_running = OSError("squeue: command not found")
    resize_pool(pool, target_dedicated=2)
    reconciler.run_pass()
    assert len(provider.launches) == launches
    after = refreshed(pool)
    assert after.allocation_state == "resizing"
    assert [e["code"] for e in after.resize_errors] == ["AllocationFailed"]
    assert "squeue" in after.resize_errors[0]["message"]


def test_a_restarted_reconciler_adopts_the_running_agents(reconciler, provider):
    pool = steady_pool(reconciler, nodes=2)
    launches = len(provider.launches)
    ComputeNode.objects.filter(pool=pool).update(provider_handle="fake:stale")
    Reconciler(providers={"local": provider}).run_pass()
    assert len(provider.launches) == launches
    assert {n.provider_handle for n in ComputeNode.objects.filter(pool=pool)} == set(provider.nodes)


def test_a_node_whose_start_was_interrupted_is_adopted_not_started_twice(
    reconciler, provider, monkeypatch
):
    pool = make_pool(targetDedicatedNodes=1)
    reconciler.run_pass()
    node = ComputeNode.objects.get(pool=pool)
    ComputeNode.objects.filter(pk=node.pk).update(
        provider_handle=""
    )  # crashed before storing the handle
    Reconciler(providers={"local": provider}).run_pass()
    assert len(provider.launches) == 1
    assert ComputeNode.objects.get(pk=node.pk).provider_handle == provider.handle_of(node.node_id)


def test_a_dead_agent_is_started_again_with_its_node_id_after_a_backoff(reconciler, provider):
    pool = steady_pool(reconciler, nodes=1)
    node = ComputeNode.objects.get(pool=pool)
    provider.crash(node.node_id)
    reconciler.run_pass()
    assert [launch.node_id for launch in provider.launches] == [node.node_id, node.node_id]
    provider.crash(node.node_id)
    reconciler.run_pass()  # crashed again at once: wait before the next start
    assert len(provider.launches) == 2 and not provider.nodes
    reconciler._backoff[node.pk].next_try = 0
    reconciler.run_pass()
    assert (
        len(provider.launches) == 3
        and ComputeNode.objects.get(pk=node.pk).provider_handle in provider.nodes
    )


def test_a_refused_restart_is_a_resize_error_and_tried_again(reconciler, provider):
    pool = steady_pool(reconciler, nodes=1)
    node = ComputeNode.objects.get(pool=pool)
    provider.crash(node.node_id)
    provider.refuse_start = ProviderError("LocalProcessStartFailed", "fork failed")
    reconciler.run_pass()
    assert [e["code"] for e in refreshed(pool).resize_errors] == ["LocalProcessStartFailed"]
    provider.refuse_start = None
    reconciler._backoff[node.pk].next_try = 0
    reconciler.run_pass()
    assert ComputeNode.objects.get(pk=node.pk).provider_handle in provider.nodes


def test_a_deleted_pool_goes_once_its_nodes_have_left(reconciler, provider):
    pool = steady_pool(reconciler, nodes=2)
    delete_pool(pool)
    assert refreshed(pool).state == "deleting"
    assert set(
        ComputeNode.objects.filter(pool=pool).values_list("pending_action", "action_option")
    ) == {("remove", "requeue")}
    reconciler.run_pass()
    assert Pool.objects.filter(pk=pool.pk).exists()  # the agents are still draining
    for node in ComputeNode.objects.filter(pool=pool):
        provider.crash(node.node_id)
    reconciler.run_pass()
    assert not Pool.objects.filter(pk=pool.pk).exists()
    assert launches_after_delete(provider, pool) == 2


def launches_after_delete(provider, pool) -> int:
    return sum(1 for launch in provider.launches if launch.pool_id == pool.pool_id)


def test_agents_of_nodes_that_no_longer_exist_are_stopped(reconciler, provider):
    pool = steady_pool(reconciler, nodes=2)
    gone = ComputeNode.objects.filter(pool=pool).first()
    handle = gone.provider_handle
    ComputeNode.objects.filter(pk=gone.pk).delete()
    reconciler.run_pass()
    assert (handle, True) in provider.stops


def test_nodes_started_by_hand_are_left_alone(reconciler, provider):
    pool = make_pool()
    hand = node_ops.register_node(pool, node_id="worker-7", slots=4)
    reconciler.run_pass()
    assert (
        ComputeNode.objects.get(pk=hand.pk).state == "idle"
        and provider.launches == []
        and provider.stops == []
    )
    ComputeNode.objects.filter(pk=hand.pk).update(state="offline")
    reconciler.run_pass()
    assert ComputeNode.objects.filter(pk=hand.pk).exists() and provider.launches == []


def test_one_pool_failing_does_not_stop_the_others(reconciler, provider):
    broken = make_pool(targetDedicatedNodes=1)
    Pool.objects.filter(pk=broken.pk).update(provider="nonexistent")
    good = add_pool(broken.account, spec={"id": "good", "vmSize": "x", "targetDedicatedNodes": 1})
    counts = reconciler.run_pass()
    assert counts["pools"] == 2
    assert ComputeNode.objects.filter(pool=good).count() == 1
    assert not ComputeNode.objects.filter(pool=broken).exists()


def test_requeued_tasks_of_a_removed_node_run_elsewhere(reconciler, provider):
    pool = steady_pool(reconciler, nodes=2)
    first, second = ComputeNode.objects.filter(pool=pool).order_by("pk")
    job = make_job(pool.account, pool)
    add(job, "t1")
    claim(first)
    ComputeNode.objects.filter(pk=first.pk).update(pending_action="remove", action_option="requeue")
    provider.crash(first.node_id)
    reconciler.run_pass()
    assert [a.task.task_id for a in claim(second)] == ["t1"]
    assert Task.objects.get(job=job).requeue_count == 1


def test_the_local_quota_stops_a_resize_with_account_core_quota_reached(
    reconciler, provider, settings
):
    settings.BATCHSITE_LOCAL_MAX_NODES = 3
    first = make_pool(targetDedicatedNodes=2)
    second = add_pool(
        first.account,
        spec={"id": "q", "vmSize": "x", "targetDedicatedNodes": 1, "targetLowPriorityNodes": 1},
    )
    reconciler.run_pass()
    assert ComputeNode.objects.filter(pool=first).count() == 2
    assert list(ComputeNode.objects.filter(pool=second).values_list("is_dedicated", flat=True)) == [
        True
    ]
    register_all(first), register_all(second)
    reconciler.run_pass()
    after = refreshed(second)
    assert (after.allocation_state, after.target_low_priority_nodes) == ("steady", 1)
    assert [e["code"] for e in after.resize_errors] == ["AccountCoreQuotaReached"]
    assert "low priority" in after.resize_errors[0]["message"]
    assert refreshed(first).resize_errors == []


def test_the_loop_outlives_a_database_error_and_a_bug(reconciler, monkeypatch):
    calls = []
    real = reconciler.run_pass

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        if len(calls) == 2:
            raise RuntimeError("a bug")
        return real()

    monkeypatch.setattr(reconciler, "run_pass", flaky)
    reconciler.run(interval=0.01, should_stop=lambda: len(calls) >= 3, lock=AlwaysLeader())
    assert len(calls) == 3


def test_an_idle_reconciler_wakes_for_a_pool_that_starts_to_move(reconciler, monkeypatch):
    # Its interval is an hour: the pass after Add Pool comes from its look between passes.
    calls = []

    def a_pass():
        calls.append(time.monotonic())
        if len(calls) == 1:
            make_pool(targetDedicatedNodes=1)
        return {"busy": 0}

    monkeypatch.setattr(reconciler, "run_pass", a_pass)
    deadline = time.monotonic() + 60
    reconciler.run(
        interval=3600,
        should_stop=lambda: len(calls) >= 2 or time.monotonic() > deadline,
        lock=AlwaysLeader(),
    )
    assert len(calls) == 2


def test_an_idle_reconciler_sleeps_on_while_every_pool_is_steady(reconciler, monkeypatch):
    steady_pool(reconciler, nodes=1)
    calls = []
    monkeypatch.setattr(reconciler, "run_pass", lambda: calls.append(1) or {"busy": 0})
    deadline = time.monotonic() + 0.5
    reconciler.run(
        interval=3600, should_stop=lambda: time.monotonic() > deadline, lock=AlwaysLeader()
    )
    assert calls == [1]


class AlwaysLeader:
    def acquire(self) -> bool:
        return True


def test_a_second_reconciler_waits_while_the_first_holds_the_lock(
    reconciler, monkeypatch, settings, tmp_path
):
    settings.DATA_DIR = tmp_path
    first, second = Leadership(), Leadership()
    assert first.acquire()
    if connection.vendor == "postgresql":
        s = connection.settings_dict
        with psycopg.connect(
            host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"], dbname=s["NAME"]
        ) as other:
            assert (
                other.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()[0] is False
            )
            first.release()
            assert (
                other.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()[0] is True
            )
        return
    assert not second.acquire()
    passes = []
    monkeypatch.setattr(reconciler, "run_pass", lambda: passes.append(1) or {"busy": 0})
    monkeypatch.setattr("tasks.operations.reconcile.STANDBY_SECONDS", 0.01)
    deadline = time.monotonic() + 0.3
    reconciler.run(interval=0.01, should_stop=lambda: time.monotonic() > deadline, lock=second)
    assert passes == []  # it stood by
    first.release()
    assert second.acquire()
    second.release()
