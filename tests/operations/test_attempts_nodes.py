"""tasks.operations.nodes: registering, heartbeats, losing and stopping nodes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.errors import BatchError
from tasks.models import Attempt, ComputeNode, Task
from tasks.operations.nodes import heartbeat_node, mark_lost_nodes_offline, register_node, stop_node
from tasks.operations.tasks import terminate_task
from tests.execution import add, claim, fresh, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(account):
    return make_pool(account)


def test_a_registered_node_is_idle_with_its_slots(pool):
    node = make_node(pool, "n1", slots=3)
    assert (node.state, node.slots, node.pool_id) == (ComputeNode.State.IDLE, 3, pool.pk)


@pytest.mark.parametrize("bad", ["", "has space", "../up", "x" * 129])
def test_refuses_a_node_id_unsafe_as_a_directory_name(pool, bad):
    with pytest.raises(BatchError) as e:
        register_node(pool, node_id=bad, slots=1)
    assert e.value.code == "InvalidPropertyValue"


def test_heartbeat_shows_running_while_a_task_runs_and_adds_totals(account, pool):
    node = make_node(pool, "n1")
    add(make_job(account, pool), "t1")
    claim(node)
    heartbeat_node(node, running=True, tasks_run=2, tasks_succeeded=1)
    node.refresh_from_db()
    assert (node.state, node.total_tasks_run, node.total_tasks_succeeded) == ("running", 2, 1)
    heartbeat_node(node, running=False)
    node.refresh_from_db()
    assert node.state == "idle"


def test_heartbeat_of_a_node_whose_pool_was_deleted_answers_none(pool):
    node = make_node(pool, "n1")
    pool.delete()
    assert heartbeat_node(node, running=False) is None


def test_a_node_whose_heartbeat_stopped_goes_offline_and_its_tasks_are_requeued(
    account, pool, assert_counters_true
):
    lost, other = make_node(pool, "lost"), make_node(pool, "other")
    job = make_job(account, pool)
    task = add(job, "t1")
    [attempt] = claim(lost)
    ComputeNode.objects.filter(pk=lost.pk).update(
        last_heartbeat=timezone.now() - timedelta(minutes=5)
    )
    assert mark_lost_nodes_offline(lost_after=timedelta(seconds=30)) == 1
    assert ComputeNode.objects.get(pk=lost.pk).state == ComputeNode.State.OFFLINE
    task = fresh(task)
    assert (task.state, task.requeue_count) == (
        Task.State.ACTIVE,
        1,
    ) and task.last_requeue_time is not None
    assert fresh(attempt).outcome == Attempt.Outcome.REQUEUED
    assert_counters_true(job)
    [again] = claim(other)
    assert again.task_id == task.pk and again.number == 2


def test_a_live_node_is_not_marked_offline(pool):
    make_node(pool, "n1")
    assert mark_lost_nodes_offline(lost_after=timedelta(seconds=30)) == 0


def test_registering_again_requeues_what_the_previous_agent_left_running(account, pool):
    node = make_node(pool, "n1")
    task = add(make_job(account, pool), "t1")
    claim(node)
    make_node(pool, "n1")
    assert (fresh(task).state, fresh(task).requeue_count) == (Task.State.ACTIVE, 1)


def test_stopping_a_node_requeues_its_tasks_and_takes_it_offline(account, pool):
    node = make_node(pool, "n1")
    task = add(make_job(account, pool), "t1")
    claim(node)
    assert stop_node(node) == []
    assert fresh(task).state == Task.State.ACTIVE
    assert ComputeNode.objects.get(pk=node.pk).state == ComputeNode.State.OFFLINE


def test_a_terminated_task_on_a_lost_node_stays_terminated(account, pool):
    node = make_node(pool, "n1")
    task = add(make_job(account, pool), "t1")
    [attempt] = claim(node)
    terminate_task(fresh(task))
    stop_node(node)
    assert fresh(task).state == Task.State.COMPLETED
    assert fresh(attempt).outcome == Attempt.Outcome.TERMINATED
