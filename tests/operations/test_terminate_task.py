"""tasks.operations.tasks.terminate_task and can_terminate_task."""

import pytest
from django.utils import timezone

from tasks.errors import BatchError
from tasks.models import Attempt, Job, SubTask, Task
from tasks.operations.tasks import can_terminate_task, terminate_task
from tests.factories import JobFactory, SubTaskFactory, TaskFactory

pytestmark = pytest.mark.django_db


def running_attempt(task, subtask_id=None):
    return Attempt.objects.create(
        task=task,
        job=task.job,
        subtask_id=subtask_id,
        claimed=timezone.now(),
        start_time=timezone.now(),
        node_name="node-1",
    )


@pytest.mark.parametrize("trait", [None, "running"])
def test_completes_a_task_as_failed_with_task_ended(trait, assert_counters_true):
    task = TaskFactory(**({trait: True} if trait else {}))
    old_state, old_etag = task.state, task.etag
    terminate_task(task)
    task.refresh_from_db()
    assert (task.state, task.previous_state, task.result) == (
        Task.State.COMPLETED,
        old_state,
        Task.Result.FAILURE,
    )
    # UNCONFIRMED (REFERENCE §6.7): the failureInfo of a user terminate.
    assert task.failure_info["code"] == "TaskEnded" and task.failure_info["category"] == "usererror"
    assert task.end_time == task.state_transition_time and task.etag != old_etag
    counts = assert_counters_true(task.job)
    assert (counts["completed_count"], counts["failed_count"]) == (1, 1)


def test_a_preparing_task_leaves_the_running_count(assert_counters_true):
    task = TaskFactory(state=Task.State.PREPARING)
    terminate_task(task)
    assert assert_counters_true(task.job)["running_count"] == 0


def test_asks_the_node_to_kill_the_running_process():
    task = TaskFactory(running=True)
    attempt = running_attempt(task)
    terminate_task(task)
    attempt.refresh_from_db()
    assert attempt.cancel_requested == "terminate"


def test_a_multi_instance_task_completes_at_once_and_its_subtasks_are_stopped_in_the_background():
    task = TaskFactory(running=True, multi_instance=True)
    sub = SubTaskFactory(task=task, subtask_id=1)
    attempts = [running_attempt(task), running_attempt(task, subtask_id=1)]
    terminate_task(task)
    task.refresh_from_db()
    assert task.state == Task.State.COMPLETED
    assert {
        a.cancel_requested for a in Attempt.objects.filter(pk__in=[a.pk for a in attempts])
    } == {"terminate"}
    # The subtask is reached by its node, not in the request.
    assert SubTask.objects.get(pk=sub.pk).state == SubTask.State.RUNNING


@pytest.mark.parametrize("trait", ["succeeded", "failed"])
def test_refuses_a_completed_task(trait):
    task = TaskFactory(**{trait: True})
    before = (task.result, task.etag)
    assert can_terminate_task(task).code == "TaskCompleted"
    with pytest.raises(BatchError) as info:
        terminate_task(task)
    assert (info.value.code, info.value.status) == ("TaskCompleted", 409)
    task.refresh_from_db()
    assert (task.result, task.etag) == before


def test_refuses_a_task_of_a_job_being_deleted():
    task = TaskFactory(running=True, job=JobFactory(deleting=True))
    assert can_terminate_task(task).code == "JobBeingDeleted"
    with pytest.raises(BatchError) as info:
        terminate_task(task)
    assert (info.value.code, info.value.status) == ("JobBeingDeleted", 409)


@pytest.mark.parametrize("trait", ["completed", "terminating", "disabled"])
def test_terminates_a_task_of_a_job_in_any_other_state(trait):
    # UNCONFIRMED (REFERENCE §6.7): only a job being deleted refuses Terminate.
    task = TaskFactory(job=JobFactory(**{trait: True}))
    assert can_terminate_task(task) is None
    assert terminate_task(task).state == Task.State.COMPLETED


def test_refuses_a_task_deleted_meanwhile():
    task = TaskFactory()
    Task.objects.filter(pk=task.pk).delete()
    with pytest.raises(BatchError) as info:
        terminate_task(task)
    assert info.value.code == "TaskNotFound"


def test_an_unmet_precondition_changes_nothing():
    task = TaskFactory()

    def precondition(locked):
        raise BatchError.condition_not_met(412)

    with pytest.raises(BatchError):
        terminate_task(task, precondition=precondition)
    task.refresh_from_db()
    assert task.state == Task.State.ACTIVE


def test_terminating_the_last_task_completes_a_job_that_terminates_when_all_tasks_complete():
    job = JobFactory(on_all_tasks_complete=Job.OnAllTasksComplete.TERMINATEJOB)
    TaskFactory(job=job, succeeded=True)
    task = TaskFactory(job=job)
    terminate_task(task)
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == (Job.State.COMPLETED, "AllTasksComplete")


def test_a_job_with_other_tasks_left_stays_active():
    job = JobFactory(on_all_tasks_complete=Job.OnAllTasksComplete.TERMINATEJOB)
    TaskFactory(job=job)
    terminate_task(TaskFactory(job=job))
    job.refresh_from_db()
    assert job.state == Job.State.ACTIVE


def test_can_terminate_agrees_with_terminate_in_every_state():
    for trait in (None, "running", "succeeded", "failed"):
        for job_state in ("active", "disabled", "completed", "terminating", "deleting"):
            task = TaskFactory(job=JobFactory(state=job_state), **({trait: True} if trait else {}))
            predicted = can_terminate_task(task)
            try:
                terminate_task(task)
                outcome = None
            except BatchError as error:
                outcome = error.code
            assert outcome == (predicted.code if predicted else None), (trait, job_state)
