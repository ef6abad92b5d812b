"""Multi-instance tasks: subtasks start, finish, fail the task, and end with it."""

import pytest

from tasks.models import Attempt, SubTask, Task
from tasks.operations.attempts import start_subtask, subtasks_ready
from tasks.operations.tasks import terminate_task
from tests.execution import add, claim, finish, fresh, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db

MULTI = {"multiInstanceSettings": {"numberOfInstances": 2, "coordinationCommandLine": "/bin/true"}}


@pytest.fixture
def setup(account):
    pool = make_pool(account)
    primary_node, sub_node = make_node(pool, "node-1"), make_node(pool, "node-2")
    job = make_job(account, pool)
    task = add(job, "mpi", **MULTI)
    [primary] = claim(primary_node)
    sub = Attempt.objects.get(task=task, subtask_id=1)
    assert sub.node_id == sub_node.pk
    return task, primary, sub


def subtask(task) -> SubTask:
    return SubTask.objects.get(task=task, subtask_id=1)


def test_a_started_subtask_is_running_with_a_start_time(setup):
    task, _, sub = setup
    assert start_subtask(sub)
    s = subtask(task)
    assert (s.state, s.previous_state) == (SubTask.State.RUNNING, SubTask.State.PREPARING)
    assert s.start_time is not None


def test_the_primary_may_run_its_command_once_every_coordination_succeeded(setup):
    task, _, sub = setup
    start_subtask(sub)
    assert not subtasks_ready(task.pk, 2)
    finish(sub, 0)
    assert subtasks_ready(task.pk, 2)
    s = subtask(task)
    assert (s.state, s.result, s.exit_code) == ("completed", "success", 0)
    # The instance holds its node until the primary finishes.
    assert fresh(sub).outcome == Attempt.Outcome.RUNNING


def test_the_primary_finishing_ends_the_task_and_releases_the_subtasks(setup, assert_counters_true):
    task, primary, sub = setup
    start_subtask(sub)
    finish(sub, 0)
    finish(primary, 0)
    task = fresh(task)
    assert (task.state, task.result, task.exit_code) == ("completed", "success", 0)
    sub = fresh(sub)
    assert (sub.outcome, sub.cancel_requested) == (Attempt.Outcome.SUCCEEDED, "finished")
    assert_counters_true(task.job)


def test_a_failing_subtask_fails_the_task_and_stops_the_primary(setup, assert_counters_true):
    task, primary, sub = setup
    start_subtask(sub)
    finish(sub, 5)
    task = fresh(task)
    assert (task.state, task.result) == ("completed", "failure")
    assert (
        task.failure_info["code"] == "FailureExitCode"
        and "Subtask 1" in task.failure_info["message"]
    )
    s = subtask(task)
    assert (s.state, s.result, s.exit_code, s.failure_info["code"]) == (
        "completed",
        "failure",
        5,
        "FailureExitCode",
    )
    primary = fresh(primary)
    assert (primary.outcome, primary.cancel_requested) == (Attempt.Outcome.TERMINATED, "failed")
    assert_counters_true(task.job)


def test_a_failing_subtask_retries_the_whole_task(account):
    pool = make_pool(account)
    node, _ = make_node(pool, "node-1"), make_node(pool, "node-2")
    task = add(make_job(account, pool), "mpi", constraints={"maxTaskRetryCount": 1}, **MULTI)
    [primary] = claim(node)
    finish(Attempt.objects.get(task=task, subtask_id=1), 5)
    task = fresh(task)
    assert (task.state, task.retry_count) == (Task.State.ACTIVE, 1)
    assert fresh(primary).cancel_requested == "retry"
    [again] = claim(node)
    assert again.number == 2 and SubTask.objects.get(task=task).state == SubTask.State.PREPARING


def test_terminate_reaches_every_instance_and_the_subtask_ends_with_task_ended(setup):
    task, primary, sub = setup
    start_subtask(sub)
    terminate_task(fresh(task))
    assert set(Attempt.objects.filter(task=task).values_list("cancel_requested", flat=True)) == {
        "terminate"
    }
    finish(sub, 137)
    s = subtask(task)
    assert (s.state, s.result, s.failure_info["code"]) == ("completed", "failure", "TaskEnded")
    assert fresh(sub).outcome == Attempt.Outcome.TERMINATED
    assert not start_subtask(sub)
