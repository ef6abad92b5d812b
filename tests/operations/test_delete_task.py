"""tasks.operations.tasks.delete_task and can_delete_task."""

import pytest
from django.utils import timezone

from tasks.errors import BatchError
from tasks.models import Attempt, Job, NodeCleanup, SubTask, Task
from tasks.operations.tasks import can_delete_task, delete_task
from tests.factories import JobFactory, SubTaskFactory, TaskFactory

pytestmark = pytest.mark.django_db


def attempt(task, *, node, task_dir, subtask_id=None):
    return Attempt.objects.create(
        task=task,
        job=task.job,
        subtask_id=subtask_id,
        claimed=timezone.now(),
        node_name=node,
        task_dir=task_dir,
    )


@pytest.mark.parametrize("trait", [None, "running", "succeeded", "failed"])
def test_deletes_a_task_in_any_state(trait, assert_counters_true):
    job = JobFactory()
    keep = TaskFactory(job=job, running=True)
    task = TaskFactory(job=job, required_slots=3, **({trait: True} if trait else {}))
    assert can_delete_task(task) is None
    delete_task(task)
    assert list(Task.objects.filter(job=job)) == [keep]
    counts = assert_counters_true(job)
    assert (counts["running_count"], counts["running_slots"]) == (1, 1)


def test_queues_every_directory_the_task_had_for_its_nodes_to_remove():
    task = TaskFactory(succeeded=True, node_name="node-1", task_root_directory="/d/job/t/attempt2")
    attempt(task, node="node-1", task_dir="/d/job/t/attempt1")
    attempt(task, node="node-2", task_dir="/d/job/t/attempt0")
    delete_task(task)
    assert set(NodeCleanup.objects.values_list("node_name", "task_dir", "reason")) == {
        ("node-1", "/d/job/t/attempt2", "delete"),
        ("node-1", "/d/job/t/attempt1", "delete"),
        ("node-2", "/d/job/t/attempt0", "delete"),
    }


def test_a_running_task_loses_its_attempt_so_its_node_kills_it():
    task = TaskFactory(running=True)
    attempt(task, node="node-1", task_dir="/d/t")
    delete_task(task)
    assert not Attempt.objects.exists()


def test_a_multi_instance_task_goes_at_once_and_its_subtasks_directories_in_the_background(
    assert_counters_true,
):
    task = TaskFactory(
        running=True, multi_instance=True, node_name="node-1", task_root_directory="/d/primary"
    )
    SubTaskFactory(task=task, subtask_id=1)
    attempt(task, node="node-1", task_dir="/d/primary")
    attempt(task, node="node-2", task_dir="/d/sub1", subtask_id=1)
    delete_task(task)
    assert not Task.objects.filter(pk=task.pk).exists() and not SubTask.objects.exists()
    assert set(NodeCleanup.objects.values_list("node_name", "task_dir")) == {
        ("node-1", "/d/primary"),
        ("node-2", "/d/sub1"),
    }
    assert assert_counters_true(task.job)["running_count"] == 0


def test_refuses_a_task_of_a_job_being_deleted():
    # UNCONFIRMED (REFERENCE §6.6): 409 JobBeingDeleted.
    task = TaskFactory(job=JobFactory(deleting=True))
    assert can_delete_task(task).code == "JobBeingDeleted"
    with pytest.raises(BatchError) as info:
        delete_task(task)
    assert (info.value.code, info.value.status) == ("JobBeingDeleted", 409)
    assert Task.objects.filter(pk=task.pk).exists()


@pytest.mark.parametrize("trait", ["completed", "terminating", "disabled"])
def test_deletes_a_task_of_a_job_in_any_other_state(trait):
    # UNCONFIRMED (REFERENCE §15.17): delete while the job is completed or terminating.
    task = TaskFactory(job=JobFactory(**{trait: True}))
    assert can_delete_task(task) is None
    delete_task(task)
    assert not Task.objects.filter(pk=task.pk).exists()


def test_refuses_a_task_deleted_meanwhile():
    task = TaskFactory()
    Task.objects.filter(pk=task.pk).delete()
    with pytest.raises(BatchError) as info:
        delete_task(task)
    assert (info.value.code, info.value.status) == ("TaskNotFound", 404)


def test_an_unmet_precondition_deletes_nothing(assert_counters_true):
    task = TaskFactory()

    def precondition(locked):
        raise BatchError.condition_not_met(412)

    with pytest.raises(BatchError):
        delete_task(task, precondition=precondition)
    assert Task.objects.filter(pk=task.pk).exists()
    assert assert_counters_true(task.job)["active_count"] == 1


def test_deleting_the_last_unfinished_task_completes_a_job_that_terminates_when_all_tasks_complete():
    job = JobFactory(on_all_tasks_complete=Job.OnAllTasksComplete.TERMINATEJOB)
    TaskFactory(job=job, failed=True)
    delete_task(TaskFactory(job=job))
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == (Job.State.COMPLETED, "AllTasksComplete")


def test_can_delete_agrees_with_delete_in_every_state():
    for trait in (None, "running", "succeeded", "failed"):
        for job_state in ("active", "disabled", "completed", "terminating", "deleting"):
            task = TaskFactory(job=JobFactory(state=job_state), **({trait: True} if trait else {}))
            predicted = can_delete_task(task)
            try:
                delete_task(task)
                outcome = None
            except BatchError as error:
                outcome = error.code
            assert outcome == (predicted.code if predicted else None), (trait, job_state)
