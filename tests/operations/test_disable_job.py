"""tasks.operations.jobs: Disable Job (each disableTasks mode) and Enable Job, their `can_*`."""

import pytest

from tasks.errors import BatchError
from tasks.models import Attempt, Job, Task
from tasks.operations.jobs import can_disable_job, can_enable_job, disable_job, enable_job
from tasks.operations.sweeps import run_sweeps
from tasks.operations.tasks import terminate_task
from tests.execution import add, claim, claimed_ids, finish, fresh, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db

STATES = [s for s, _ in Job.State.choices]


@pytest.fixture
def pool(account):
    return make_pool(account)


@pytest.fixture
def node(pool):
    return make_node(pool, "node-1", slots=4)


def job_of(job):
    return Job.objects.get(pk=job.pk)


def running_job(account, pool, node, count=2):
    job = make_job(account, pool)
    tasks = [add(job, f"t{i}") for i in range(count)]
    attempts = claim(node)
    assert len(attempts) == count
    return job, tasks, attempts


def test_requeue_ends_the_running_attempts_and_puts_their_tasks_back_to_active(
    account, pool, node, assert_counters_true
):
    job, tasks, attempts = running_job(account, pool, node)
    before = job_of(job).etag
    disabled = disable_job(job, disable_tasks="requeue")
    job = job_of(job)
    assert (job.state, job.previous_state, job.etag) == ("disabled", "active", disabled.etag)
    assert job.etag != before
    for task in map(fresh, tasks):
        assert (task.state, task.requeue_count, task.result) == (Task.State.ACTIVE, 1, "")
        assert task.last_requeue_time is not None
    for attempt in Attempt.objects.filter(pk__in=[a.pk for a in attempts]):
        assert (attempt.outcome, attempt.cancel_requested) == (Attempt.Outcome.REQUEUED, "requeue")
    assert assert_counters_true(job)["active_count"] == 2


def test_terminate_completes_the_running_tasks_with_task_ended_and_never_runs_them_again(
    account, pool, node, assert_counters_true
):
    job, tasks, attempts = running_job(account, pool, node)
    waiting = add(job, "later")
    disable_job(job, disable_tasks="terminate")
    assert job_of(job).state == "disabled"
    for task in map(fresh, tasks):
        assert (task.state, task.result, task.failure_info["code"]) == (
            "completed",
            "failure",
            "TaskEnded",
        )
        assert task.failure_info["category"] == "usererror"
    assert set(
        Attempt.objects.filter(pk__in=[a.pk for a in attempts]).values_list(
            "cancel_requested", flat=True
        )
    ) == {"terminate"}
    assert fresh(waiting).state == Task.State.ACTIVE  # an active task stays active
    counts = assert_counters_true(job)
    assert (counts["failed_count"], counts["active_count"]) == (2, 1)


def test_wait_lets_running_tasks_run_on_and_the_job_is_disabling_until_the_last_ends(
    account, pool, node, django_capture_on_commit_callbacks
):
    job, tasks, attempts = running_job(account, pool, node)
    disable_job(job, disable_tasks="wait")
    assert job_of(job).state == "disabling"
    assert {fresh(t).state for t in tasks} == {Task.State.RUNNING}
    assert (
        not Attempt.objects.filter(pk__in=[a.pk for a in attempts])
        .exclude(cancel_requested="")
        .exists()
    )
    with django_capture_on_commit_callbacks(execute=True):
        finish(attempts[0], 0)
    assert job_of(job).state == "disabling"
    # Once the report of the last one commits.
    with django_capture_on_commit_callbacks(execute=True):
        finish(attempts[1], 0)
    job = job_of(job)
    assert (job.state, job.previous_state) == ("disabled", "disabling")


def test_wait_with_nothing_running_disables_at_once(account, pool, node):
    job = make_job(account, pool)
    add(job, "t")
    disable_job(job, disable_tasks="wait")
    assert job_of(job).state == "disabled"


def test_a_disabling_job_whose_last_task_ended_another_way_is_disabled_by_the_sweep(
    account, pool, node
):
    job, tasks, _ = running_job(account, pool, node, count=1)
    disable_job(job, disable_tasks="wait")
    terminate_task(fresh(tasks[0]))
    run_sweeps()
    assert job_of(job).state == "disabled"


def test_no_task_of_a_disabled_or_disabling_job_is_claimed(account, pool, node):
    job, _, attempts = running_job(account, pool, node, count=1)
    disable_job(job, disable_tasks="wait")
    add(job, "new")  # a disabled job accepts tasks
    assert claim(node) == []
    finish(attempts[0], 0)
    assert claim(node) == []


def test_enable_makes_the_job_active_and_its_tasks_are_scheduled_again(account, pool, node):
    job, tasks, _ = running_job(account, pool, node)
    disable_job(job, disable_tasks="requeue")
    assert claim(node) == []
    enabled = enable_job(job_of(job))
    job = job_of(job)
    assert (job.state, job.previous_state, job.etag) == ("active", "disabled", enabled.etag)
    assert sorted(claimed_ids(node)) == ["t0", "t1"]


def test_disabling_a_disabled_job_changes_nothing(account, pool, node):
    job = make_job(account, pool)
    disable_job(job, disable_tasks="requeue")
    etag = job_of(job).etag
    disable_job(job_of(job), disable_tasks="terminate")
    assert (job_of(job).state, job_of(job).etag) == ("disabled", etag)


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("completed", "JobCompleted"),
        ("terminating", "JobBeingTerminated"),
        ("deleting", "JobBeingDeleted"),
        ("enabling", "JobNotActive"),
    ],
)
def test_refuses_to_disable_a_job_that_is_not_active(account, pool, state, code):
    job = make_job(account, pool)
    Job.objects.filter(pk=job.pk).update(state=state)
    with pytest.raises(BatchError) as e:
        disable_job(job_of(job), disable_tasks="requeue")
    assert (e.value.code, e.value.status) == (code, 409)
    assert job_of(job).state == state


def test_refuses_an_unknown_disable_tasks_mode(account, pool):
    job = make_job(account, pool)
    with pytest.raises(BatchError) as e:
        disable_job(job, disable_tasks="taskcompletion")
    assert (e.value.code, e.value.status) == ("InvalidPropertyValue", 400)
    assert job_of(job).state == "active"


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("active", "OperationInvalidForCurrentState"),
        ("disabling", "OperationInvalidForCurrentState"),
        ("completed", "JobCompleted"),
        ("terminating", "JobBeingTerminated"),
        ("deleting", "JobBeingDeleted"),
    ],
)
def test_refuses_to_enable_a_job_that_is_not_disabled(account, pool, state, code):
    job = make_job(account, pool)
    Job.objects.filter(pk=job.pk).update(state=state)
    with pytest.raises(BatchError) as e:
        enable_job(job_of(job))
    assert (e.value.code, e.value.status) == (code, 409)


@pytest.mark.parametrize("state", STATES)
def test_can_disable_and_can_enable_agree_with_their_operations(account, pool, state):
    job = make_job(account, pool, job_id=f"j-{state}")
    Job.objects.filter(pk=job.pk).update(state=state)
    for can, act in (
        (can_disable_job, lambda j: disable_job(j, disable_tasks="requeue")),
        (can_enable_job, enable_job),
    ):
        Job.objects.filter(pk=job.pk).update(state=state)
        refusal = can(job_of(job))
        try:
            act(job_of(job))
            outcome = None
        except BatchError as e:
            outcome = e.code
        assert outcome == (refusal.code if refusal else None)


def test_a_precondition_is_checked_on_the_locked_job(account, pool):
    job = make_job(account, pool)

    def stale(locked):
        raise BatchError.condition_not_met(412)

    with pytest.raises(BatchError) as e:
        disable_job(job, disable_tasks="requeue", precondition=stale)
    assert e.value.code == "ConditionNotMet"
    assert job_of(job).state == "active"
