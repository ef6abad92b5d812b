"""leave_pool and start_leaving_pool: a node drained per its nodeDeallocationOption
leaves the pool; what still runs is requeued, its tasks' files are gone."""

import pytest

from tasks.models import Attempt, ComputeNode, NodeCleanup, Task
from tasks.operations.node_leaving import leave_pool
from tasks.operations.nodes import start_leaving_pool
from tests.execution import add, claim, finish, fresh, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(account):
    return make_pool(account)


def order_removal(node, option=""):
    ComputeNode.objects.filter(pk=node.pk).update(pending_action="remove", action_option=option)


def test_the_row_is_gone_and_what_still_ran_is_requeued(account, pool, assert_counters_true):
    node = make_node(pool, "leaver")
    job = make_job(account, pool)
    task = add(job, "t1")
    [attempt] = claim(node)
    leave_pool(node)
    assert not ComputeNode.objects.filter(pk=node.pk).exists()
    assert (fresh(task).state, fresh(task).requeue_count) == (Task.State.ACTIVE, 1)
    assert Attempt.objects.get(pk=attempt.pk).outcome == Attempt.Outcome.REQUEUED
    assert_counters_true(job)


def test_the_completed_tasks_whose_files_were_on_it_answer_files_cleaned_up(account, pool):
    node = make_node(pool, "leaver")
    job = make_job(account, pool)
    add(job, "done")
    [attempt] = claim(node)
    finish(attempt, 0)
    NodeCleanup.objects.create(
        node_name="leaver", pool_id="", task_dir=f"{node.root_dir}/workitems/x", reason="delete"
    )
    leave_pool(node)
    done = Task.objects.get(task_id="done")
    assert (done.files_cleaned, done.node_name, done.node_id) == (True, "leaver", None)
    assert not NodeCleanup.objects.filter(node_name="leaver").exists()


def test_a_node_already_gone_is_not_an_error(pool):
    node = make_node(pool, "leaver")
    ComputeNode.objects.filter(pk=node.pk).delete()
    leave_pool(node)


def test_starting_to_leave_makes_the_node_leaving_and_it_takes_no_work(account, pool):
    node = make_node(pool, "leaver")
    order_removal(node, "taskcompletion")
    assert start_leaving_pool(node) == "taskcompletion"
    assert ComputeNode.objects.get(pk=node.pk).state == ComputeNode.State.LEAVINGPOOL
    add(make_job(account, pool), "t1")
    assert claim(node) == []


def test_starting_to_leave_with_requeue_requeues_the_running_tasks(account, pool):
    node = make_node(pool, "leaver")
    task = add(make_job(account, pool), "t1")
    claim(node)
    order_removal(node, "requeue")
    assert start_leaving_pool(node) == "requeue"
    assert (fresh(task).state, fresh(task).requeue_count) == (Task.State.ACTIVE, 1)


def test_requeue_is_the_default_option(account, pool):
    node = make_node(pool, "leaver")
    task = add(make_job(account, pool), "t1")
    claim(node)
    order_removal(node)
    assert start_leaving_pool(node) == "requeue"
    assert fresh(task).state == Task.State.ACTIVE


def test_starting_to_leave_with_terminate_completes_the_running_tasks_as_terminated(
    account, pool, assert_counters_true
):
    node = make_node(pool, "leaver")
    job = make_job(account, pool)
    task = add(job, "t1")
    [attempt] = claim(node)
    order_removal(node, "terminate")
    start_leaving_pool(node)
    task = fresh(task)
    assert (task.state, task.result, task.failure_info["code"]) == (
        Task.State.COMPLETED,
        "failure",
        "TaskEnded",
    )
    assert "removed from the pool" in task.failure_info["message"]
    assert Attempt.objects.get(pk=attempt.pk).cancel_requested == "terminate"
    assert_counters_true(job)


def test_starting_to_leave_with_taskcompletion_lets_the_running_tasks_finish(account, pool):
    node = make_node(pool, "leaver")
    task = add(make_job(account, pool), "t1")
    [attempt] = claim(node)
    order_removal(node, "taskcompletion")
    start_leaving_pool(node)
    assert fresh(task).state == Task.State.RUNNING
    finish(attempt, 0)
    assert (fresh(task).state, fresh(task).result) == (Task.State.COMPLETED, "success")


def test_a_node_not_asked_to_leave_does_not_become_leaving(pool):
    node = make_node(pool, "stayer")
    start_leaving_pool(node)
    assert ComputeNode.objects.get(pk=node.pk).state == ComputeNode.State.IDLE
