"""tasks.operations.tasks.update_task and can_update_task."""

from datetime import timedelta

import pytest

from tasks.errors import BatchError
from tasks.models import Task
from tasks.operations.tasks import can_update_task, update_task
from tests.factories import JobFactory, TaskFactory

pytestmark = pytest.mark.django_db

CONSTRAINTS = {
    "maxWallClockTime": timedelta(minutes=5),
    "retentionTime": timedelta(days=1),
    "maxTaskRetryCount": 2,
}


def test_replaces_the_constraints_and_gives_a_new_etag():
    task = TaskFactory()
    before = (task.etag, task.last_modified)
    update_task(task, constraints=CONSTRAINTS)
    task.refresh_from_db()
    assert (task.max_wall_clock_time, task.retention_time, task.max_task_retry_count) == (
        timedelta(minutes=5),
        timedelta(days=1),
        2,
    )
    assert task.etag != before[0] and task.last_modified > before[1]


def test_omitted_constraints_reset_to_the_defaults():
    task = TaskFactory(
        job=JobFactory(max_task_retry_count=3),
        max_wall_clock_time=timedelta(hours=1),
        retention_time=timedelta(days=1),
        max_task_retry_count=9,
    )
    update_task(task, constraints=None)
    task.refresh_from_db()
    assert (task.max_wall_clock_time, task.retention_time, task.max_task_retry_count) == (
        None,
        timedelta(days=7),
        3,
    )


def test_omitted_members_of_the_constraints_reset_to_their_defaults():
    # UNCONFIRMED (REFERENCE §6.5): replace semantics reach inside `constraints`.
    task = TaskFactory(
        max_wall_clock_time=timedelta(hours=1),
        retention_time=timedelta(days=1),
        max_task_retry_count=9,
    )
    update_task(task, constraints={"maxTaskRetryCount": 1})
    task.refresh_from_db()
    assert (task.max_wall_clock_time, task.retention_time, task.max_task_retry_count) == (
        None,
        timedelta(days=7),
        1,
    )


def test_changes_nothing_but_the_constraints():
    task = TaskFactory(running=True)
    update_task(task, constraints=CONSTRAINTS)
    task.refresh_from_db()
    assert (task.state, task.command_line, task.previous_state) == (
        Task.State.RUNNING,
        "/bin/true",
        "active",
    )


@pytest.mark.parametrize("trait", ["running", None])
def test_a_task_that_is_not_completed_can_be_updated(trait):
    task = TaskFactory(**({trait: True} if trait else {}))
    assert can_update_task(task) is None
    update_task(task, constraints=CONSTRAINTS)


@pytest.mark.parametrize("trait", ["succeeded", "failed"])
def test_refuses_a_completed_task(trait):
    # UNCONFIRMED (REFERENCE §6.5): 409 TaskCompleted for an update of a completed task.
    task = TaskFactory(**{trait: True})
    assert can_update_task(task).code == "TaskCompleted"
    with pytest.raises(BatchError) as info:
        update_task(task, constraints=CONSTRAINTS)
    assert (info.value.code, info.value.status) == ("TaskCompleted", 409)
    task.refresh_from_db()
    assert task.max_task_retry_count == 0


@pytest.mark.parametrize(
    ("trait", "code"),
    [
        ("completed", "JobCompleted"),
        ("terminating", "JobBeingTerminated"),
        ("deleting", "JobBeingDeleted"),
    ],
)
def test_refuses_a_task_of_a_job_that_is_ending(trait, code):
    # UNCONFIRMED (REFERENCE §15.5): the job-state codes Reactivate documents.
    task = TaskFactory(job=JobFactory(**{trait: True}))
    assert can_update_task(task).code == code
    with pytest.raises(BatchError) as info:
        update_task(task, constraints=CONSTRAINTS)
    assert (info.value.code, info.value.status) == (code, 409)


def test_refuses_a_task_deleted_meanwhile():
    task = TaskFactory()
    Task.objects.filter(pk=task.pk).delete()
    with pytest.raises(BatchError) as info:
        update_task(task, constraints=CONSTRAINTS)
    assert info.value.code == "TaskNotFound"


def test_runs_the_precondition_on_the_locked_task_before_writing():
    task = TaskFactory()
    seen = []

    def precondition(locked):
        seen.append(locked.etag)
        raise BatchError.condition_not_met(412)

    with pytest.raises(BatchError) as info:
        update_task(task, constraints=CONSTRAINTS, precondition=precondition)
    assert info.value.code == "ConditionNotMet" and seen == [task.etag]
    task.refresh_from_db()
    assert task.max_task_retry_count == 0


def test_can_update_agrees_with_update_in_every_state():
    for trait in (None, "running", "succeeded", "failed"):
        for job_state in ("active", "disabled", "completed", "terminating", "deleting"):
            task = TaskFactory(job=JobFactory(state=job_state), **({trait: True} if trait else {}))
            predicted = can_update_task(task)
            try:
                update_task(task, constraints=CONSTRAINTS)
                outcome = None
            except BatchError as error:
                outcome = error.code
            assert outcome == (predicted.code if predicted else None), (trait, job_state)


def test_refuses_a_retry_count_below_minus_one_as_add_does():
    task = TaskFactory(max_task_retry_count=3)
    etag = task.etag
    with pytest.raises(BatchError) as refused:
        update_task(task, constraints={"maxTaskRetryCount": -2})
    assert refused.value.code == "InvalidPropertyValue"
    assert dict(refused.value.values)["PropertyName"] == "constraints.maxTaskRetryCount"
    task.refresh_from_db()
    assert (task.max_task_retry_count, task.etag) == (3, etag)
