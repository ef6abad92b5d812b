"""disable_node_scheduling / enable_node_scheduling: schedulingState, the
nodeDisableSchedulingOption applied to running tasks, `offline`, the refusals."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.errors import BatchError
from tasks.models import ComputeNode, Task
from tasks.operations.nodes import (
    can_disable_node_scheduling,
    can_enable_node_scheduling,
    disable_node_scheduling,
    enable_node_scheduling,
    heartbeat_node,
    register_node,
    stop_node,
)
from tests.execution import add, claim, finish, fresh, make_job, make_node, make_pool
from tests.factories import ComputeNodeFactory
from tests.operations.node_states import make_situation, node_situations

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(account):
    return make_pool(account)


def test_a_disabled_node_takes_no_work_and_an_idle_one_is_offline(account, pool):
    node = make_node(pool)
    disabled = disable_node_scheduling(node)
    assert (disabled.scheduling_enabled, disabled.state) == (False, ComputeNode.State.OFFLINE)
    add(make_job(account, pool), "t1")
    assert claim(node) == []


def test_requeue_puts_the_running_tasks_back_and_the_node_is_offline(account, pool):
    node = make_node(pool)
    task = add(make_job(account, pool), "t1")
    claim(node)
    assert disable_node_scheduling(node, option="requeue").state == ComputeNode.State.OFFLINE
    assert (fresh(task).state, fresh(task).requeue_count) == (Task.State.ACTIVE, 1)


def test_terminate_completes_the_running_tasks_as_terminated(account, pool):
    node = make_node(pool)
    task = add(make_job(account, pool), "t1")
    claim(node)
    disable_node_scheduling(node, option="terminate")
    task = fresh(task)
    assert (task.state, task.failure_info["code"]) == (Task.State.COMPLETED, "TaskEnded")
    assert (
        task.failure_info["message"]
        == "The task was terminated because task scheduling was disabled on its node."
    )


def test_taskcompletion_lets_them_finish_and_the_node_runs_until_then(account, pool):
    node = make_node(pool)
    task = add(make_job(account, pool), "t1")
    [attempt] = claim(node)
    heartbeat_node(node, running=True)
    assert disable_node_scheduling(node, option="taskcompletion").state == ComputeNode.State.RUNNING
    assert fresh(task).state == Task.State.RUNNING
    finish(attempt, 0)
    heartbeat_node(node, running=False)
    assert ComputeNode.objects.get(pk=node.pk).state == ComputeNode.State.OFFLINE


def test_enabling_makes_an_offline_node_idle_and_it_takes_work_again(account, pool):
    node = register_node(pool, node_id="n1", slots=2, agent_pid=4242)
    disable_node_scheduling(node)
    assert enable_node_scheduling(node).state == ComputeNode.State.IDLE
    add(make_job(account, pool), "t1")
    assert len(claim(node)) == 1


def test_enabling_a_node_whose_agent_is_gone_leaves_it_offline(pool):
    lost = ComputeNodeFactory(
        pool=pool,
        state="offline",
        scheduling_enabled=False,
        agent_pid=4242,
        last_heartbeat=timezone.now() - timedelta(hours=1),
    )
    assert enable_node_scheduling(lost).state == ComputeNode.State.OFFLINE
    stopped = register_node(pool, node_id="stopped", slots=2, agent_pid=4242)
    disable_node_scheduling(stopped)
    stop_node(stopped)
    assert enable_node_scheduling(stopped).state == ComputeNode.State.OFFLINE


def test_the_scheduling_state_survives_a_restart_of_the_agent(pool):
    node = make_node(pool, "n1")
    disable_node_scheduling(node)
    again = register_node(pool, node_id="n1", slots=2)
    assert (again.scheduling_enabled, again.state) == (False, ComputeNode.State.OFFLINE)


def test_refuses_disabling_twice_and_enabling_an_enabled_node(pool):
    node = make_node(pool)
    with pytest.raises(BatchError) as e:
        enable_node_scheduling(node)
    assert (e.value.code, e.value.status) == ("NodeAlreadyInTargetSchedulingState", 409)
    disable_node_scheduling(node)
    with pytest.raises(BatchError) as e:
        disable_node_scheduling(node)
    assert e.value.code == "NodeAlreadyInTargetSchedulingState"


def test_refuses_an_unknown_option_or_retaineddata(pool):
    for option in ("later", "retaineddata"):
        with pytest.raises(BatchError) as e:
            disable_node_scheduling(make_node(pool), option=option)
        assert e.value.code == "InvalidPropertyValue"


def test_refuses_a_node_leaving_the_pool(pool):
    node = ComputeNodeFactory(pool=pool, state="leavingpool", pending_action="remove")
    assert can_disable_node_scheduling(node).code == "NodeNotReady"


@pytest.mark.parametrize(
    ("can", "act"),
    [
        (can_disable_node_scheduling, disable_node_scheduling),
        (can_enable_node_scheduling, enable_node_scheduling),
    ],
)
def test_can_agrees_with_the_operation_in_every_state(can, act):
    for label, kwargs in node_situations():
        for deleting in (False, True):
            node = make_situation(kwargs, deleting=deleting)
            predicted = can(node)
            try:
                act(node)
                outcome = None
            except BatchError as error:
                outcome = error.code
            assert outcome == (predicted.code if predicted else None), (label, deleting)
