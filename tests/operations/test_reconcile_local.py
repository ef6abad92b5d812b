"""The reconciler with the real providers and real agents against the test database: each
test that does not depend on where the agents run runs with the `local` provider and with
the `slurm` one (a real Slurm: .ci/slurm-up)."""

import os
import shutil
import signal
from datetime import timedelta

import pytest
from django.conf import settings

from tasks.models import ComputeNode, Pool, Task
from tasks.nodehost import layout
from tasks.operations.jobs import add_job
from tasks.operations.pools import add_pool, ensure_local_pool, remove_nodes, resize_pool
from tasks.operations.reconcile import Reconciler
from tasks.operations.tasks import add_task
from tests.agents import wait_for
from tests.factories import AccountFactory
from tests.local_nodes import reconcile_until

pytestmark = pytest.mark.django_db(transaction=True)


def idle_nodes(pool: Pool) -> list[ComputeNode]:
    return list(ComputeNode.objects.filter(pool=pool, state="idle"))


def steady_with(pool: Pool, count: int):
    def check():
        fresh = Pool.objects.get(pk=pool.pk)
        return fresh.allocation_state == "steady" and len(idle_nodes(pool)) == count and fresh

    return check


def handles(provider) -> set[str]:
    return {r.handle for r in provider.running()}


def test_a_new_pool_gets_idle_agents_that_run_its_tasks(provider_reconciler, node_provider):
    reconciler = provider_reconciler
    pool = add_pool(
        AccountFactory(name="rl"),
        spec={
            "id": "p2",
            "vmSize": "standard_d2s_v3",
            "targetDedicatedNodes": 2,
            "taskSlotsPerNode": 2,
        },
    )
    assert pool.provider == node_provider.name
    reconcile_until(reconciler, steady_with(pool, 2), message="2 idle nodes and steady")
    nodes = idle_nodes(pool)
    assert all(n.node_id.startswith("tvmps_") and n.slots == 2 for n in nodes)
    assert {n.provider_handle for n in nodes} == handles(node_provider)
    job = add_job(pool.account, spec={"id": "j", "poolInfo": {"poolId": "p2"}})
    for i in range(6):
        add_task(job, spec={"id": f"t{i}", "commandLine": "/bin/sh -c 'echo $AZ_BATCH_NODE_ID'"})
    reconcile_until(
        reconciler,
        lambda: Task.objects.filter(job=job, state="completed").count() == 6,
        message="the tasks to complete",
    )
    assert set(Task.objects.filter(job=job).values_list("result", flat=True)) == {"success"}
    assert set(Task.objects.filter(job=job).values_list("node_name", flat=True)) <= {
        n.node_id for n in nodes
    }


def test_a_killed_agent_is_restarted_with_the_same_node_id(provider_reconciler, node_provider):
    reconciler = provider_reconciler
    pool = add_pool(
        AccountFactory(name="rk"), spec={"id": "p", "vmSize": "x", "targetDedicatedNodes": 1}
    )
    node = reconcile_until(reconciler, lambda: (idle_nodes(pool) or [None])[0], message="a node")
    os.kill(node.agent_pid, signal.SIGKILL)
    again = reconcile_until(
        reconciler,
        lambda: (
            ComputeNode.objects.filter(pk=node.pk, state="idle")
            .exclude(agent_pid=node.agent_pid)
            .first()
        ),
        message="the node back",
    )
    assert again.node_id == node.node_id and again.registered > node.registered
    assert again.provider_handle != node.provider_handle
    assert again.provider_handle in handles(node_provider)


def test_a_new_reconciler_adopts_the_agents_of_one_that_was_killed(
    provider_reconciler, node_provider
):
    reconciler = provider_reconciler
    pool = add_pool(
        AccountFactory(name="ra"), spec={"id": "p", "vmSize": "x", "targetDedicatedNodes": 2}
    )
    reconcile_until(reconciler, steady_with(pool, 2), message="2 idle nodes")
    nodes = {n.agent_pid: n.provider_handle for n in idle_nodes(pool)}
    fresh = type(node_provider)(environment=node_provider.environment)  # no memory of its own
    successor = Reconciler(providers={node_provider.name: fresh})
    for _ in range(5):
        successor.run_pass()
    assert {n.agent_pid: n.provider_handle for n in idle_nodes(pool)} == nodes
    assert handles(fresh) == set(nodes.values())


def test_a_clean_shutdown_stops_the_local_agents_gracefully(reconciler, local_provider):
    pool = ensure_local_pool(AccountFactory(name="rs"), nodes=2, slots=1)
    reconcile_until(reconciler, steady_with(pool, 2), message="2 idle nodes")
    assert reconciler.shutdown(timeout=20) == 2
    assert local_provider.running() == []
    assert set(ComputeNode.objects.filter(pool=pool).values_list("state", flat=True)) == {"offline"}
    # The next reconciler starts them again, with the same ids.
    ids = set(ComputeNode.objects.filter(pool=pool).values_list("node_id", flat=True))
    reconcile_until(reconciler, lambda: len(idle_nodes(pool)) == 2, message="the nodes back")
    assert {n.node_id for n in idle_nodes(pool)} == ids


@pytest.mark.parametrize("option", ["requeue", "terminate", "taskcompletion", "retaineddata"])
def test_scale_down_to_zero_drains_the_node_per_its_option_then_the_agent_leaves(
    provider_reconciler, node_provider, option
):
    reconciler = provider_reconciler
    pool = add_pool(
        AccountFactory(name=f"sd{option[:4]}"),
        spec={"id": "p", "vmSize": "x", "targetDedicatedNodes": 1},
    )
    assert pool.provider == node_provider.name
    node = reconcile_until(reconciler, lambda: (idle_nodes(pool) or [None])[0], message="a node")
    job = add_job(pool.account, spec={"id": "j", "poolInfo": {"poolId": "p"}})
    task = add_task(
        job,
        spec={
            "id": "t",
            "commandLine": "/bin/sh -c 'sleep 2'",
            "constraints": {"retentionTime": timedelta(seconds=2)},
        },
    )
    reconcile_until(
        reconciler,
        lambda: Task.objects.filter(pk=task.pk, state="running").exists(),
        message="the task to run",
    )
    resize_pool(Pool.objects.get(pk=pool.pk), target_dedicated=0, node_deallocation_option=option)
    reconcile_until(
        reconciler,
        lambda: not ComputeNode.objects.filter(pk=node.pk).exists(),
        timeout=40,
        message="the node to leave",
    )
    reconcile_until(reconciler, lambda: not node_provider.running(), message="the agent to exit")
    reconcile_until(reconciler, steady_with(pool, 0), message="steady with no node")
    task.refresh_from_db()
    if option == "requeue":
        assert (task.state, task.requeue_count) == ("active", 1)
    elif option == "terminate":
        assert (task.state, task.result, task.failure_info["code"]) == (
            "completed",
            "failure",
            "TaskEnded",
        )
    else:
        assert (task.state, task.result, task.requeue_count) == ("completed", "success", 0)
    assert Pool.objects.get(pk=pool.pk).resize_errors == []


def test_a_dead_node_asked_to_leave_is_removed_with_its_directory(reconciler, local_provider):
    pool = add_pool(
        AccountFactory(name="rd"), spec={"id": "p", "vmSize": "x", "targetDedicatedNodes": 1}
    )
    node = reconcile_until(reconciler, lambda: (idle_nodes(pool) or [None])[0], message="a node")
    root = layout.node_root(settings.DATA_DIR, "rd", "p", node.node_id)
    assert root.is_dir()
    os.kill(node.agent_pid, signal.SIGKILL)
    wait_for(lambda: not local_provider.running(), message="the agent dead")
    ComputeNode.objects.filter(pk=node.pk).update(pending_action="remove", action_option="requeue")
    Pool.objects.filter(pk=pool.pk).update(target_dedicated_nodes=0)
    reconcile_until(
        reconciler, lambda: not ComputeNode.objects.filter(pk=node.pk).exists(), message="removed"
    )
    assert not root.exists()


def test_a_dead_nodes_directory_is_never_removed_through_a_link_above_it(
    reconciler, local_provider, tmp_path
):
    """Its tasks swapped the pool's directory for a link to a folder holding a directory of
    the node's name: removing the node removes nothing there."""
    pool = add_pool(
        AccountFactory(name="rdl"), spec={"id": "p", "vmSize": "x", "targetDedicatedNodes": 1}
    )
    node = reconcile_until(reconciler, lambda: (idle_nodes(pool) or [None])[0], message="a node")
    os.kill(node.agent_pid, signal.SIGKILL)
    wait_for(lambda: not local_provider.running(), message="the agent dead")
    outside = tmp_path / "outside"
    (outside / node.node_id).mkdir(parents=True)
    (outside / node.node_id / "keep.txt").write_text("must survive\n")
    pool_dir = layout.node_root(settings.DATA_DIR, "rdl", "p", node.node_id).parent
    moved = pool_dir.with_name("moved")
    pool_dir.rename(moved)
    pool_dir.symlink_to(outside, target_is_directory=True)
    try:
        ComputeNode.objects.filter(pk=node.pk).update(
            pending_action="remove", action_option="requeue"
        )
        Pool.objects.filter(pk=pool.pk).update(target_dedicated_nodes=0)
        reconcile_until(
            reconciler,
            lambda: not ComputeNode.objects.filter(pk=node.pk).exists(),
            message="removed",
        )
        assert (outside / node.node_id / "keep.txt").read_text() == "must survive\n"
    finally:
        pool_dir.unlink()
        shutil.rmtree(moved, ignore_errors=True)


def test_a_low_priority_node_is_an_agent_that_says_so(provider_reconciler, node_provider):
    reconciler = provider_reconciler
    pool = add_pool(
        AccountFactory(name="lp"), spec={"id": "p", "vmSize": "x", "targetLowPriorityNodes": 1}
    )
    assert pool.provider == node_provider.name
    node = reconcile_until(reconciler, lambda: (idle_nodes(pool) or [None])[0], message="a node")
    assert (node.is_dedicated, node.node_id.endswith("_p")) == (False, True)
    job = add_job(pool.account, spec={"id": "j", "poolInfo": {"poolId": "p"}})
    task = add_task(
        job,
        spec={"id": "t", "commandLine": "/bin/sh -c 'test $AZ_BATCH_NODE_IS_DEDICATED = false'"},
    )
    reconcile_until(
        reconciler,
        lambda: Task.objects.filter(pk=task.pk, state="completed").first(),
        message="the task",
    )
    assert Task.objects.get(pk=task.pk).result == "success"


def test_allocation_seconds_hold_a_new_node_in_creating_before_its_agent_starts(
    reconciler, local_provider, settings
):
    settings.BATCHSITE_NODE_ALLOCATION_SECONDS = 2
    pool = add_pool(
        AccountFactory(name="as"), spec={"id": "p", "vmSize": "x", "targetDedicatedNodes": 1}
    )
    reconciler.run_pass()
    node = ComputeNode.objects.get(pool=pool)
    reconciler.run_pass()
    assert (
        ComputeNode.objects.get(pk=node.pk).state == "creating" and local_provider.running() == []
    )
    idle = reconcile_until(
        reconciler,
        lambda: ComputeNode.objects.filter(pk=node.pk, state="idle").first(),
        message="the node idle",
    )
    assert idle.registered - node.allocation_time >= timedelta(seconds=2)


def test_a_named_node_removed_leaves_and_is_not_replaced(reconciler, local_provider):
    pool = add_pool(
        AccountFactory(name="rn"), spec={"id": "p", "vmSize": "x", "targetDedicatedNodes": 2}
    )
    reconcile_until(reconciler, steady_with(pool, 2), message="2 idle nodes")
    first, second = idle_nodes(pool)
    remove_nodes(
        Pool.objects.get(pk=pool.pk), node_ids=[first.node_id], node_deallocation_option="requeue"
    )
    reconcile_until(reconciler, steady_with(pool, 1), timeout=40, message="one node left")
    assert [n.node_id for n in idle_nodes(pool)] == [second.node_id]
    assert Pool.objects.get(pk=pool.pk).target_dedicated_nodes == 1
    reconcile_until(
        reconciler, lambda: len(local_provider.running()) == 1, message="its agent gone"
    )
