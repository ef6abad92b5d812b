"""tasks.operations.tasks.reactivate_task and can_reactivate_task."""

import pytest
from django.utils import timezone

from tasks.errors import BatchError
from tasks.models import SubTask, Task
from tasks.operations.tasks import can_reactivate_task, reactivate_task
from tests.factories import JobFactory, SubTaskFactory, TaskFactory

pytestmark = pytest.mark.django_db


def test_a_failed_task_becomes_active_again(assert_counters_true):
    task = TaskFactory(failed=True, required_slots=2)
    completed_at, old_etag = task.state_transition_time, task.etag
    reactivate_task(task)
    task.refresh_from_db()
    assert (task.state, task.previous_state) == (Task.State.ACTIVE, Task.State.COMPLETED)
    assert task.previous_state_transition_time == completed_at and task.etag != old_etag
    counts = assert_counters_true(task.job)
    assert (counts["active_count"], counts["active_slots"], counts["failed_count"]) == (1, 2, 0)


def test_forgets_the_exit_code_the_failure_and_the_retries():
    task = TaskFactory(failed=True, retry_count=3, last_retry_time=timezone.now())
    reactivate_task(task)
    task.refresh_from_db()
    assert (task.exit_code, task.failure_info, task.result) == (None, None, "")
    assert (task.retry_count, task.last_retry_time, task.end_time) == (0, None, None)


def test_keeps_the_requeue_count():
    # UNCONFIRMED (REFERENCE §6.8): what happens to requeueCount; we keep it.
    task = TaskFactory(failed=True, requeue_count=2)
    reactivate_task(task)
    task.refresh_from_db()
    assert task.requeue_count == 2 and task.start_time is None


def test_reactivates_a_task_that_failed_without_an_exit_code():
    task = TaskFactory(
        failed=True,
        exit_code=None,
        failure_info={"category": "usererror", "code": "TaskEnded", "message": "x"},
    )
    assert can_reactivate_task(task) is None
    assert reactivate_task(task).state == Task.State.ACTIVE


def test_a_task_past_its_lifetime_may_be_scheduled_again():
    task = TaskFactory(failed=True, lifetime_expired=True)
    reactivate_task(task)
    task.refresh_from_db()
    assert task.lifetime_expired is False


def test_a_multi_instance_task_starts_its_subtasks_afresh():
    task = TaskFactory(failed=True, multi_instance=True)
    SubTaskFactory(task=task, subtask_id=1, state=SubTask.State.COMPLETED)
    reactivate_task(task)
    assert not SubTask.objects.filter(task=task).exists()


@pytest.mark.parametrize("state", [Task.State.ACTIVE, Task.State.PREPARING, Task.State.RUNNING])
def test_refuses_a_task_that_is_not_completed(state):
    task = TaskFactory(state=state)
    assert can_reactivate_task(task).code == "TaskNotCompleted"
    with pytest.raises(BatchError) as info:
        reactivate_task(task)
    assert (info.value.code, info.value.status) == ("TaskNotCompleted", 409)


def test_refuses_a_task_that_succeeded():
    task = TaskFactory(succeeded=True)
    assert can_reactivate_task(task).code == "TaskSucceeded"
    with pytest.raises(BatchError) as info:
        reactivate_task(task)
    assert (info.value.code, info.value.status) == ("TaskSucceeded", 409)
    task.refresh_from_db()
    assert (task.state, task.exit_code) == (Task.State.COMPLETED, 0)


@pytest.mark.parametrize(
    ("trait", "code"),
    [
        ("completed", "JobCompleted"),
        ("terminating", "JobBeingTerminated"),
        ("deleting", "JobBeingDeleted"),
    ],
)
def test_refuses_while_the_job_is_ending(trait, code, assert_counters_true):
    task = TaskFactory(failed=True, job=JobFactory(**{trait: True}))
    assert can_reactivate_task(task).code == code
    with pytest.raises(BatchError) as info:
        reactivate_task(task)
    assert (info.value.code, info.value.status) == (code, 409)
    task.refresh_from_db()
    assert (task.state, task.exit_code) == (Task.State.COMPLETED, 1)
    assert assert_counters_true(task.job)["failed_count"] == 1


def test_the_job_state_refusal_comes_before_the_task_state_refusal():
    task = TaskFactory(succeeded=True, job=JobFactory(completed=True))
    assert can_reactivate_task(task).code == "JobCompleted"


def test_refuses_a_task_deleted_meanwhile():
    task = TaskFactory(failed=True)
    Task.objects.filter(pk=task.pk).delete()
    with pytest.raises(BatchError) as info:
        reactivate_task(task)
    assert info.value.code == "TaskNotFound"


def test_an_unmet_precondition_changes_nothing():
    task = TaskFactory(failed=True)

    def precondition(locked):
        raise BatchError.condition_not_met(412)

    with pytest.raises(BatchError):
        reactivate_task(task, precondition=precondition)
    task.refresh_from_db()
    assert task.state == Task.State.COMPLETED


def test_can_reactivate_agrees_with_reactivate_in_every_state():
    for trait in (None, "running", "succeeded", "failed"):
        for job_state in ("active", "disabled", "completed", "terminating", "deleting"):
            task = TaskFactory(job=JobFactory(state=job_state), **({trait: True} if trait else {}))
            predicted = can_reactivate_task(task)
            try:
                reactivate_task(task)
                outcome = None
            except BatchError as error:
                outcome = error.code
            assert outcome == (predicted.code if predicted else None), (trait, job_state)
