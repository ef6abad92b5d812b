"""register_node: the reconciler's `creating` row, restarts after a reboot or reimage,
nodes asked to leave, low-priority nodes, the start task's `starting`."""

import pytest
from django.utils import timezone

from tasks.models import ComputeNode, Task
from tasks.operations.nodes import register_node
from tests.execution import add, claim, fresh, make_job, make_pool
from tests.factories import ComputeNodeFactory

pytestmark = pytest.mark.django_db

NODE_ID = "tvmps_" + "0" * 31 + "a_d"


@pytest.fixture
def pool(account):
    return make_pool(account)


def register(pool, node_id=NODE_ID, **kwargs):
    return register_node(
        pool, node_id=node_id, slots=kwargs.pop("slots", 2), root_dir=f"/tmp/bs/{node_id}", **kwargs
    )


def test_takes_the_row_the_reconciler_created_and_keeps_its_allocation_time(pool):
    allocated = timezone.now() - timezone.timedelta(seconds=30)
    created = ComputeNodeFactory(
        pool=pool,
        node_id=NODE_ID,
        state=ComputeNode.State.CREATING,
        allocation_time=allocated,
        provider_handle="local:123",
    )
    node = register(pool, agent_pid=4321)
    assert node.pk == created.pk
    assert (node.state, node.agent_pid, node.provider_handle) == (
        ComputeNode.State.IDLE,
        4321,
        "local:123",
    )
    node.refresh_from_db()
    assert node.allocation_time == allocated and node.registered > allocated
    assert ComputeNode.objects.filter(pool=pool).count() == 1


def test_a_pool_with_a_start_task_has_its_new_node_starting(pool):
    pool.spec["startTask"] = {"commandLine": "/bin/true"}
    pool.save()
    ComputeNodeFactory(pool=pool, node_id=NODE_ID, state=ComputeNode.State.CREATING)
    assert register(pool).state == ComputeNode.State.STARTING
    assert register(pool, "by-hand").state == ComputeNode.State.STARTING


def test_a_starting_node_takes_no_work(account, pool):
    pool.spec["startTask"] = {"commandLine": "/bin/true"}
    pool.save()
    node = register(pool)
    add(make_job(account, pool), "t1")
    assert claim(node) == []


def test_a_hand_started_agent_gets_a_new_idle_row_allocated_now(pool):
    node = register(pool, "by-hand")
    assert node.state == ComputeNode.State.IDLE and node.allocation_time == node.registered


def test_registering_after_a_reboot_clears_the_order_and_sets_a_new_boot_time(pool):
    node = register(pool)
    ComputeNode.objects.filter(pk=node.pk).update(
        state=ComputeNode.State.REBOOTING, pending_action="reboot", action_option="taskcompletion"
    )
    again = register(pool)
    again.refresh_from_db()
    assert (again.state, again.pending_action, again.action_option) == (
        ComputeNode.State.IDLE,
        "",
        "",
    )
    assert again.registered > node.registered


def test_registering_after_a_reimage_clears_the_order(pool):
    node = register(pool)
    ComputeNode.objects.filter(pk=node.pk).update(
        state=ComputeNode.State.REIMAGING, pending_action="reimage"
    )
    again = register(pool)
    assert (again.state, again.pending_action) == (ComputeNode.State.IDLE, "")


def test_a_node_asked_to_leave_stays_leaving_when_its_agent_restarts(account, pool):
    node = register(pool)
    ComputeNode.objects.filter(pk=node.pk).update(pending_action="remove", action_option="requeue")
    again = register(pool)
    assert (again.state, again.pending_action) == (ComputeNode.State.LEAVINGPOOL, "remove")
    add(make_job(account, pool), "t1")
    assert claim(again) == []


def test_a_node_whose_scheduling_is_disabled_comes_back_offline(pool):
    node = register(pool)
    ComputeNode.objects.filter(pk=node.pk).update(scheduling_enabled=False)
    assert register(pool).state == ComputeNode.State.OFFLINE


def test_a_low_priority_agent_makes_a_low_priority_node(pool):
    assert register(pool, "spot", is_dedicated=False).is_dedicated is False
    assert register(pool, "dedicated").is_dedicated is True


def test_registering_again_forgets_the_previous_boots_start_task_info_and_samples(pool):
    node = register(pool)
    ComputeNode.objects.filter(pk=node.pk).update(
        start_task_info={"state": "completed"},
        cpu_percent=50.0,
        memory_bytes=10,
        errors=[{"code": "X"}],
    )
    again = register(pool)
    again.refresh_from_db()
    assert (again.start_task_info, again.cpu_percent, again.memory_bytes, again.errors) == (
        None,
        None,
        None,
        [],
    )


def test_registering_requeues_what_the_reconcilers_row_had_running(account, pool):
    node = register(pool)
    task = add(make_job(account, pool), "t1")
    claim(node)
    register(pool)
    assert (fresh(task).state, fresh(task).requeue_count) == (Task.State.ACTIVE, 1)


def test_an_agent_restarted_while_a_reimage_still_waits_keeps_the_order(pool):
    node = register(pool)
    ComputeNode.objects.filter(pk=node.pk).update(
        state=ComputeNode.State.REIMAGING, pending_action="reimage", action_option="retaineddata"
    )
    again = register(pool, resume_order=True)
    assert (again.state, again.pending_action, again.action_option) == (
        "reimaging",
        "reimage",
        "retaineddata",
    )
