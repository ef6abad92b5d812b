"""reboot_node and reimage_node: the orders, their options applied to running tasks, and
the refusals (Batch's codes), which can_reboot_node / can_reimage_node predict."""

import pytest

from tasks.errors import BatchError
from tasks.models import Attempt, ComputeNode, Task
from tasks.operations.nodes import can_reboot_node, can_reimage_node, reboot_node, reimage_node
from tests.execution import add, claim, finish, fresh, make_job, make_node, make_pool
from tests.factories import ComputeNodeFactory
from tests.operations.node_states import make_situation, node_situations

pytestmark = pytest.mark.django_db

ORDERS = [
    (reboot_node, "reboot", ComputeNode.State.REBOOTING),
    (reimage_node, "reimage", ComputeNode.State.REIMAGING),
]
DONE = {"reboot": "rebooted", "reimage": "reimaged"}


@pytest.fixture
def pool(account):
    return make_pool(account)


@pytest.mark.parametrize(("order", "action", "state"), ORDERS)
def test_the_node_is_rebooting_or_reimaging_at_once_with_the_order_recorded(
    pool, order, action, state
):
    node = make_node(pool)
    done = order(node, option="taskcompletion")
    node.refresh_from_db()
    assert (done.state, node.state, node.pending_action, node.action_option) == (
        state,
        state,
        action,
        "taskcompletion",
    )


@pytest.mark.parametrize(("order", "action", "state"), ORDERS)
def test_the_node_takes_no_work_once_ordered(account, pool, order, action, state):
    node = make_node(pool)
    order(node, option="taskcompletion")
    add(make_job(account, pool), "t1")
    assert claim(node) == []


@pytest.mark.parametrize(("order", "action", "state"), ORDERS)
def test_requeue_puts_the_running_tasks_back_to_active(
    account, pool, assert_counters_true, order, action, state
):
    node = make_node(pool)
    job = make_job(account, pool)
    task = add(job, "t1")
    [attempt] = claim(node)
    order(node)  # requeue is the default
    task = fresh(task)
    assert (task.state, task.requeue_count) == (Task.State.ACTIVE, 1)
    assert Attempt.objects.get(pk=attempt.pk).outcome == Attempt.Outcome.REQUEUED
    assert_counters_true(job)


@pytest.mark.parametrize(("order", "action", "state"), ORDERS)
def test_terminate_completes_the_running_tasks_as_terminated(
    account, pool, assert_counters_true, order, action, state
):
    node = make_node(pool)
    job = make_job(account, pool, onAllTasksComplete="terminatejob")
    task = add(job, "t1")
    claim(node)
    order(node, option="terminate")
    task = fresh(task)
    assert (task.state, task.result) == (Task.State.COMPLETED, Task.Result.FAILURE)
    assert task.failure_info == {
        "category": "usererror",
        "code": "TaskEnded",
        "message": f"The task was terminated because its node was {DONE[action]}.",
    }
    assert task.requeue_count == 0
    assert_counters_true(job)
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == ("completed", "AllTasksComplete")


@pytest.mark.parametrize("option", ["taskcompletion", "retaineddata"])
def test_taskcompletion_and_retaineddata_let_the_running_tasks_finish(account, pool, option):
    node = make_node(pool)
    task = add(make_job(account, pool), "t1")
    [attempt] = claim(node)
    reboot_node(node, option=option)
    assert fresh(task).state == Task.State.RUNNING
    finish(attempt, 0)
    assert fresh(task).result == Task.Result.SUCCESS


def test_requeue_of_a_subtask_requeues_its_whole_multi_instance_task(account, pool):
    primary, other = make_node(pool, "primary"), make_node(pool, "other")
    task = add(make_job(account, pool), "mi", multiInstanceSettings={"numberOfInstances": 2})
    claim(primary)
    assert Attempt.objects.filter(node=other, outcome="running").count() == 1
    reboot_node(other)
    assert (fresh(task).state, fresh(task).requeue_count) == (Task.State.ACTIVE, 1)
    assert not Attempt.objects.filter(task=task, outcome="running").exists()


@pytest.mark.parametrize("order", [reboot_node, reimage_node])
def test_refuses_an_unknown_option(pool, order):
    with pytest.raises(BatchError) as e:
        order(make_node(pool), option="later")
    assert e.value.code == "InvalidPropertyValue" and e.value.status == 400


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("creating", "NodeBeingCreated"),
        ("starting", "NodeBeingStarted"),
        ("waitingforstarttask", "NodeBeingStarted"),
        ("rebooting", "NodeBeingRebooted"),
        ("reimaging", "NodeBeingReimaged"),
        ("leavingpool", "NodeNotReady"),
        ("preempted", "NodeNotReady"),
    ],
)
@pytest.mark.parametrize("order", [reboot_node, reimage_node])
def test_refuses_a_node_in_transition_with_batchs_code(pool, order, state, code):
    node = ComputeNodeFactory(pool=pool, state=state)
    with pytest.raises(BatchError) as e:
        order(node)
    assert (e.value.code, e.value.status) == (code, 409)
    assert ComputeNode.objects.get(pk=node.pk).state == state


@pytest.mark.parametrize("state", ["idle", "running", "starttaskfailed", "unusable"])
def test_a_node_that_is_up_failed_its_start_task_or_is_unusable_can_be_rebooted(pool, state):
    assert reboot_node(ComputeNodeFactory(pool=pool, state=state)).state == "rebooting"


def test_a_node_asked_to_leave_is_refused(pool):
    node = ComputeNodeFactory(pool=pool, state="idle", pending_action="remove")
    assert can_reboot_node(node).code == "NodeNotReady"


def test_a_disabled_offline_node_whose_agent_is_alive_can_be_rebooted_but_not_a_dead_one(pool):
    alive = ComputeNodeFactory(pool=pool, state="offline", scheduling_enabled=False, agent_pid=4242)
    assert can_reboot_node(alive) is None
    stopped = ComputeNodeFactory(
        pool=pool, state="offline", scheduling_enabled=False, agent_pid=None
    )
    assert can_reboot_node(stopped).code == "NodeNotReady"
    lost = ComputeNodeFactory(pool=pool, state="offline", scheduling_enabled=True, agent_pid=4242)
    assert can_reboot_node(lost).code == "NodeNotReady"


def test_refuses_a_node_of_a_pool_being_deleted(pool):
    pool.state = "deleting"
    pool.save()
    assert can_reimage_node(make_node(pool)).code == "PoolBeingDeleted"


@pytest.mark.parametrize(
    ("can", "order"), [(can_reboot_node, reboot_node), (can_reimage_node, reimage_node)]
)
def test_can_agrees_with_the_operation_in_every_state(can, order):
    for label, kwargs in node_situations():
        for deleting in (False, True):
            node = make_situation(kwargs, deleting=deleting)
            predicted = can(node)
            try:
                order(node)
                outcome = None
            except BatchError as error:
                outcome = error.code
            assert outcome == (predicted.code if predicted else None), (label, deleting)
