"""tasks.operations.attempts.finish_attempts: the Batch outcome rules of an attempt."""

from datetime import timedelta

import psycopg
import pytest
from django.db import connection

from tasks.exit_conditions import exit_options
from tasks.models import Attempt, Job, Task
from tasks.operations.attempts import AttemptReport, finish_attempts
from tasks.operations.tasks import delete_task, terminate_task
from tests.execution import add, claim, finish, fresh, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(account):
    return make_pool(account)


@pytest.fixture
def node(pool):
    return make_node(pool, "node-1", slots=4)


def run_once(node, job, task_id, exit_code, **spec):
    task = add(job, task_id, **spec)
    [attempt] = [a for a in claim(node) if a.task_id == task.pk]
    finish(attempt, exit_code)
    return fresh(task), fresh(attempt)


def test_exit_code_zero_completes_the_task_as_a_success(account, pool, node, assert_counters_true):
    job = make_job(account, pool)
    task, attempt = run_once(node, job, "t1", 0)
    assert (task.state, task.previous_state, task.result, task.exit_code) == (
        "completed",
        "running",
        "success",
        0,
    )
    assert task.failure_info is None and task.end_time == task.state_transition_time
    assert task.wall_clock_time is not None and task.user_cpu_time is not None
    assert (attempt.outcome, attempt.exit_code, attempt.end_time) == (
        Attempt.Outcome.SUCCEEDED,
        0,
        task.end_time,
    )
    counts = assert_counters_true(job)
    assert (counts["running_count"], counts["succeeded_count"]) == (0, 1)


def test_a_non_zero_exit_code_is_a_failure_exit_code_failure(
    account, pool, node, assert_counters_true
):
    job = make_job(account, pool)
    task, attempt = run_once(node, job, "t1", 3)
    assert (task.state, task.result, task.exit_code, task.retry_count) == (
        "completed",
        "failure",
        3,
        0,
    )
    assert task.failure_info == {
        "category": "usererror",
        "code": "FailureExitCode",
        "message": "The task exited with an exit code representing a failure",
    }
    assert attempt.outcome == Attempt.Outcome.FAILED
    assert assert_counters_true(job)["failed_count"] == 1


def test_a_failure_is_retried_up_to_max_task_retry_count(account, pool, node, assert_counters_true):
    job = make_job(account, pool)
    task = add(job, "t1", constraints={"maxTaskRetryCount": 2})
    for expected_retries in (1, 2):
        [attempt] = claim(node)
        finish(attempt, 1)
        task = fresh(task)
        assert (task.state, task.retry_count) == (Task.State.ACTIVE, expected_retries)
        assert task.last_retry_time is not None and task.exit_code is None and task.result == ""
        assert_counters_true(job)
    [attempt] = claim(node)
    assert attempt.number == 3
    finish(attempt, 1)
    task = fresh(task)
    assert (task.state, task.result, task.retry_count) == ("completed", "failure", 2)
    assert assert_counters_true(job)["failed_count"] == 1


def test_max_task_retry_count_minus_one_retries_without_limit(account, pool, node):
    task = add(make_job(account, pool), "t1", constraints={"maxTaskRetryCount": -1})
    for _ in range(6):
        [attempt] = claim(node)
        finish(attempt, 1)
    assert (fresh(task).state, fresh(task).retry_count) == (Task.State.ACTIVE, 6)


def test_a_task_that_succeeds_on_a_retry_keeps_its_retry_count(account, pool, node):
    task = add(make_job(account, pool), "t1", constraints={"maxTaskRetryCount": 3})
    finish(claim(node)[0], 1)
    finish(claim(node)[0], 0)
    task = fresh(task)
    assert (task.result, task.retry_count, task.failure_info) == ("success", 1, None)


@pytest.mark.parametrize("code", ["CommandProgramNotFound", "CommandLaunchFailed"])
def test_a_command_that_cannot_start_fails_without_retry(account, pool, node, code):
    task = add(make_job(account, pool), "t1", constraints={"maxTaskRetryCount": 3})
    [attempt] = claim(node)
    finish(attempt, None, failure_code=code, failure_message="no such program")
    task = fresh(task)
    assert (task.state, task.result, task.exit_code, task.retry_count) == (
        "completed",
        "failure",
        None,
        0,
    )
    assert task.failure_info == {
        "category": "usererror",
        "code": code,
        "message": "no such program",
    }


def test_exceeding_max_wall_clock_time_ends_the_task_without_retry(account, pool, node):
    task = add(
        make_job(account, pool),
        "t1",
        constraints={"maxTaskRetryCount": 3, "maxWallClockTime": timedelta(seconds=1)},
    )
    [attempt] = claim(node)
    finish(attempt, 137, timed_out=True)
    task = fresh(task)
    assert (task.state, task.result, task.failure_info["code"], task.retry_count) == (
        "completed",
        "failure",
        "TaskEnded",
        0,
    )


def test_statistics_add_up_over_attempts(account, pool, node):
    task = add(make_job(account, pool), "t1", constraints={"maxTaskRetryCount": 1})
    for code in (1, 0):
        [attempt] = claim(node)
        finish_attempts(
            [
                AttemptReport(
                    attempt.pk,
                    exit_code=code,
                    user_cpu=timedelta(seconds=2),
                    kernel_cpu=timedelta(seconds=1),
                )
            ]
        )
    task = fresh(task)
    assert (task.user_cpu_time, task.kernel_cpu_time) == (
        timedelta(seconds=4),
        timedelta(seconds=2),
    )


def test_a_terminated_task_keeps_its_state_and_the_attempt_records_the_kill(account, pool, node):
    task = add(make_job(account, pool), "t1")
    [attempt] = claim(node)
    terminate_task(fresh(task))
    before = fresh(task)
    finish(attempt, 137)
    after = fresh(task)
    assert (after.state, after.result, after.failure_info["code"], after.etag) == (
        "completed",
        "failure",
        "TaskEnded",
        before.etag,
    )
    assert (fresh(attempt).outcome, fresh(attempt).exit_code) == (Attempt.Outcome.TERMINATED, 137)


def test_the_report_of_a_deleted_task_is_accepted_and_ignored(account, pool, node):
    task = add(make_job(account, pool), "t1")
    [attempt] = claim(node)
    delete_task(fresh(task))
    result = finish(attempt, 0)
    assert result.done == [attempt.pk] and not Task.objects.exists()


def test_an_attempt_already_requeued_is_not_finished_again(account, pool, node):
    task = add(make_job(account, pool), "t1")
    [attempt] = claim(node)
    Attempt.objects.filter(pk=attempt.pk).update(outcome=Attempt.Outcome.REQUEUED)
    Task.objects.filter(pk=task.pk).update(state=Task.State.ACTIVE)
    finish(attempt, 0)
    assert fresh(task).state == Task.State.ACTIVE


# --- job-level effects -------------------------------------------------------------------


def test_all_tasks_complete_terminates_a_terminatejob_job(account, pool, node):
    job = make_job(account, pool, onAllTasksComplete="terminatejob")
    add(job, "a")
    add(job, "b")
    a, b = claim(node)
    finish(a, 0)
    assert Job.objects.get(pk=job.pk).state == Job.State.ACTIVE
    finish(b, 1)
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == (Job.State.COMPLETED, "AllTasksComplete")


def test_a_failed_task_terminates_its_job_when_on_task_failure_asks_for_exit_options(
    account, pool, node
):
    job = make_job(account, pool, onTaskFailure="performexitoptionsjobaction")
    add(job, "a")
    add(job, "still-running")
    a, other = claim(node)
    finish(a, 4)
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == (Job.State.COMPLETED, "TaskFailed")
    # The job's terminate reaches its running tasks.
    assert fresh(other.task).failure_info["code"] == "TaskEnded"
    assert Attempt.objects.get(pk=other.pk).cancel_requested == "terminate"


def test_a_failed_task_leaves_its_job_alone_when_on_task_failure_is_noaction(account, pool, node):
    job = make_job(account, pool)
    run_once(node, job, "a", 4)
    assert Job.objects.get(pk=job.pk).state == Job.State.ACTIVE


def test_an_exit_option_job_action_none_keeps_the_job(account, pool, node):
    job = make_job(account, pool, onTaskFailure="performexitoptionsjobaction")
    run_once(
        node,
        job,
        "a",
        4,
        exitConditions={"exitCodes": [{"code": 4, "exitOptions": {"jobAction": "none"}}]},
    )
    assert Job.objects.get(pk=job.pk).state == Job.State.ACTIVE


def test_an_exit_option_job_action_disable_disables_the_job_and_requeues_its_tasks(
    account, pool, node, assert_counters_true
):
    job = make_job(account, pool, onTaskFailure="performexitoptionsjobaction")
    add(job, "a", exitConditions={"default": {"jobAction": "disable"}})
    other = add(job, "b")
    a, _ = claim(node)
    finish(a, 9)
    assert Job.objects.get(pk=job.pk).state == Job.State.DISABLED
    other = fresh(other)
    assert (other.state, other.requeue_count) == (Task.State.ACTIVE, 1)
    assert claim(node) == []  # a disabled job is not scheduled
    assert_counters_true(job)


# --- exit options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "exit_code", "failure", "expected"),
    [
        ({}, 0, None, ("none", "satisfy")),
        ({}, 1, None, ("terminate", "block")),
        (
            {"exitCodes": [{"code": 1, "exitOptions": {"dependencyAction": "satisfy"}}]},
            1,
            None,
            ("terminate", "satisfy"),
        ),
        (
            {"exitCodeRanges": [{"start": 10, "end": 20, "exitOptions": {"jobAction": "disable"}}]},
            15,
            None,
            ("disable", "block"),
        ),
        ({"default": {"jobAction": "none"}}, 7, None, ("none", "block")),
        ({"default": {"jobAction": "none"}}, 0, None, ("none", "satisfy")),
        (
            {"preProcessingError": {"dependencyAction": "satisfy"}},
            None,
            {"code": "CommandProgramNotFound"},
            ("terminate", "satisfy"),
        ),
        (
            {"exitCodes": [{"code": 0, "exitOptions": {"dependencyAction": "block"}}]},
            0,
            None,
            ("none", "block"),
        ),
        # A resource file that could not be downloaded is a pre-processing error.
        (
            {"preProcessingError": {"jobAction": "none"}},
            None,
            {"code": "BlobAccessDenied"},
            ("none", "block"),
        ),
        (
            {"preProcessingError": {"jobAction": "none"}},
            None,
            {"code": "ResourceContainerNotFound"},
            ("none", "block"),
        ),
        # A failed upload: fileUploadError, unless the command's exit code is listed.
        (
            {"fileUploadError": {"dependencyAction": "satisfy"}},
            0,
            {"code": "FileUploadMiscError"},
            ("terminate", "satisfy"),
        ),
        (
            {
                "fileUploadError": {"jobAction": "disable"},
                "exitCodes": [{"code": 0, "exitOptions": {"jobAction": "none"}}],
            },
            0,
            {"code": "FileUploadAccessDenied"},
            ("none", "block"),
        ),
        ({"default": {"jobAction": "none"}}, 0, {"code": "FileUploadConflict"}, ("none", "block")),
    ],
)
def test_exit_options_follow_the_batch_precedence_and_defaults(
    conditions, exit_code, failure, expected
):
    options = exit_options({"exitConditions": conditions}, exit_code, failure)
    assert (options["jobAction"], options["dependencyAction"]) == expected


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks: SQLite serializes writers whole"
)
def test_a_report_whose_job_a_job_operation_holds_is_deferred_not_waited_for(account, pool, node):
    """A terminate, disable or update of the job holds its row FOR UPDATE: the report is
    deferred (the agent sends it again), its task stays as it was, and once the job is free
    the same report is recorded, with the job as it is then."""
    job = make_job(account, pool)
    task = add(job, "t1")
    [attempt] = claim(node)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '3s'")  # waiting for the job would fail, not hang
    try:
        with psycopg.connect(**params) as other:  # a job operation's transaction, still open
            other.execute("SELECT 1 FROM tasks_job WHERE id = %s FOR UPDATE", [job.pk])
            other.execute(
                "UPDATE tasks_job SET on_all_tasks_complete = 'terminatejob' WHERE id = %s",
                [job.pk],
            )
            result = finish_attempts([AttemptReport(attempt.pk, exit_code=0)])
            assert (result.deferred, result.done) == ([attempt.pk], [])
            assert fresh(task).state == "running"
            other.commit()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    result = finish_attempts([AttemptReport(attempt.pk, exit_code=0)])
    assert result.done == [attempt.pk]
    assert fresh(task).state == "completed"
    # The job's onAllTasksComplete as the operation left it: its last task ended it.
    assert fresh(job).state in (Job.State.TERMINATING, Job.State.COMPLETED)
