"""tasks.operations.jobs: add, update/patch, terminate, delete and their `can_*` forms."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.errors import BatchError
from tasks.models import Attempt, Job, NodeCleanup, Task
from tasks.operations import jobs as job_ops
from tasks.operations.job_ends import complete_job_if_all_tasks_done, purge_deleting_job
from tasks.operations.jobs import (
    add_job,
    can_delete_job,
    can_terminate_job,
    can_update_job,
    delete_job,
    terminate_job,
    update_job,
)
from tests.factories import AccountFactory, JobFactory, TaskFactory

pytestmark = pytest.mark.django_db

ENDING = [
    ("completed", "JobCompleted"),
    ("terminating", "JobBeingTerminated"),
    ("deleting", "JobBeingDeleted"),
]


def attempt(task, **kw):
    return Attempt.objects.create(task=task, job=task.job, claimed=timezone.now(), **kw)


# --- add ---------------------------------------------------------------------------------


def test_adds_an_active_job_with_the_batch_defaults():
    job = add_job(AccountFactory(), spec={"id": "MyJob", "poolInfo": {"poolId": "p"}})
    job.refresh_from_db()
    assert (job.job_id, job.id_key, job.state, job.pool_id) == (
        "MyJob",
        "myjob",
        Job.State.ACTIVE,
        "p",
    )
    assert (job.priority, job.max_parallel_tasks, job.uses_task_dependencies) == (0, -1, False)
    assert (job.on_all_tasks_complete, job.on_task_failure) == ("noaction", "noaction")
    assert (job.max_task_retry_count, job.max_wall_clock_time) == (0, None)
    assert job.total_count == 0


def test_keeps_what_the_client_gave():
    spec = {
        "id": "j",
        "poolInfo": {"poolId": "p"},
        "priority": 100,
        "usesTaskDependencies": True,
        "onAllTasksComplete": "terminatejob",
        "onTaskFailure": "performexitoptionsjobaction",
        "constraints": {"maxWallClockTime": timedelta(days=1), "maxTaskRetryCount": 1},
        "metadata": [{"name": "a", "value": "b"}],
    }
    job = add_job(AccountFactory(), spec=spec)
    job.refresh_from_db()
    assert (job.priority, job.uses_task_dependencies, job.max_task_retry_count) == (100, True, 1)
    assert job.max_wall_clock_time == timedelta(days=1)
    assert job.spec["metadata"] == [{"name": "a", "value": "b"}]


def test_refuses_an_id_already_in_the_account_whatever_its_case():
    account = AccountFactory()
    add_job(account, spec={"id": "Job", "poolInfo": {"poolId": "p"}})
    with pytest.raises(BatchError) as info:
        add_job(account, spec={"id": "jOB", "poolInfo": {"poolId": "p"}})
    assert (info.value.code, info.value.status) == ("JobExists", 409)
    assert Job.objects.filter(account=account).count() == 1


def test_the_same_id_is_free_in_another_account():
    add_job(AccountFactory(), spec={"id": "j", "poolInfo": {"poolId": "p"}})
    add_job(AccountFactory(), spec={"id": "j", "poolInfo": {"poolId": "p"}})


# --- update ------------------------------------------------------------------------------


def test_update_replaces_every_updatable_property():
    job = JobFactory(
        priority=5,
        max_parallel_tasks=3,
        max_task_retry_count=2,
        spec={"allowTaskPreemption": True, "metadata": [{"name": "a", "value": "b"}]},
    )
    old_etag = job.etag
    update_job(job, spec={"poolInfo": {"poolId": "other"}}, replace=True)
    job.refresh_from_db()
    assert (job.priority, job.max_parallel_tasks, job.max_task_retry_count, job.pool_id) == (
        0,
        -1,
        0,
        "other",
    )
    assert "allowTaskPreemption" not in job.spec and "metadata" not in job.spec
    assert job.etag != old_etag


def test_patch_changes_only_what_it_names():
    job = JobFactory(
        priority=5, max_parallel_tasks=3, spec={"metadata": [{"name": "a", "value": "b"}]}
    )
    update_job(job, spec={"priority": 7}, replace=False)
    job.refresh_from_db()
    assert (job.priority, job.max_parallel_tasks, job.spec["metadata"]) == (
        7,
        3,
        [{"name": "a", "value": "b"}],
    )


def test_setting_terminatejob_on_a_job_whose_tasks_are_done_completes_it():
    job = JobFactory()
    TaskFactory(job=job, succeeded=True)
    update_job(job, spec={"onAllTasksComplete": "terminatejob"}, replace=False)
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == (Job.State.COMPLETED, "AllTasksComplete")


@pytest.mark.parametrize(("trait", "code"), ENDING)
def test_update_refuses_a_job_that_is_ending(trait, code):
    job = JobFactory(priority=5, **{trait: True})
    assert can_update_job(job).code == code
    with pytest.raises(BatchError) as info:
        update_job(job, spec={"priority": 1}, replace=False)
    assert (info.value.code, info.value.status) == (code, 409)
    job.refresh_from_db()
    assert job.priority == 5


def test_update_refuses_a_job_deleted_meanwhile():
    job = JobFactory()
    Job.objects.filter(pk=job.pk).delete()
    with pytest.raises(BatchError) as info:
        update_job(job, spec={}, replace=True)
    assert info.value.code == "JobNotFound"


def test_update_keeps_the_task_counters(assert_counters_true):
    job = JobFactory()
    TaskFactory(job=job)
    stale = Job.objects.get(pk=job.pk)
    TaskFactory(job=job, running=True)
    update_job(stale, spec={"priority": 3}, replace=False)
    counts = assert_counters_true(job)
    assert (counts["active_count"], counts["running_count"]) == (1, 1)


# --- the job's value rules, one answer for add, update and patch (issue 8, item 13) ------


JOB_VALUE_RULES = [
    ({"maxParallelTasks": 0}, "maxParallelTasks"),
    ({"maxParallelTasks": -2}, "maxParallelTasks"),
    ({"priority": 1001}, "priority"),
    ({"priority": -1001}, "priority"),
    ({"constraints": {"maxTaskRetryCount": -2}}, "constraints.maxTaskRetryCount"),
    (
        {"commonEnvironmentSettings": [{"name": "A=B", "value": "1"}]},
        "commonEnvironmentSettings[0].name",
    ),
    (
        {
            "jobManagerTask": {
                "id": "m",
                "commandLine": "x",
                "environmentSettings": [{"name": "ok"}, {"name": "X=1"}],
            }
        },
        "jobManagerTask.environmentSettings[1].name",
    ),
]


@pytest.mark.parametrize(("values", "name"), JOB_VALUE_RULES)
def test_add_refuses_a_value_batch_refuses(values, name):
    with pytest.raises(BatchError) as refused:
        add_job(AccountFactory(), spec={"id": "j", "poolInfo": {"poolId": "p"}, **values})
    assert refused.value.code == "InvalidPropertyValue"
    assert dict(refused.value.values)["PropertyName"] == name
    assert not Job.objects.exists()


@pytest.mark.parametrize("replace", [True, False], ids=["update", "patch"])
@pytest.mark.parametrize(
    ("values", "name"),
    [r for r in JOB_VALUE_RULES if {"priority", "maxParallelTasks", "constraints"} & set(r[0])],
)
def test_update_and_patch_refuse_what_add_refuses(values, name, replace):
    job = JobFactory(priority=3, max_parallel_tasks=2)
    etag = job.etag
    with pytest.raises(BatchError) as refused:
        update_job(job, spec=values, replace=replace)
    assert refused.value.code == "InvalidPropertyValue"
    assert dict(refused.value.values)["PropertyName"] == name
    job.refresh_from_db()
    assert (job.priority, job.max_parallel_tasks, job.etag) == (3, 2, etag)


@pytest.mark.parametrize(
    "values",
    [{"maxParallelTasks": -1}, {"maxParallelTasks": 1}, {"priority": -1000}, {"priority": 1000}],
)
def test_the_limits_themselves_are_accepted_everywhere(values):
    job = add_job(AccountFactory(), spec={"id": "j", "poolInfo": {"poolId": "p"}, **values})
    assert update_job(job, spec=values, replace=True).etag != job.etag


# --- terminate ---------------------------------------------------------------------------


def test_terminate_completes_running_tasks_and_leaves_active_ones_active(assert_counters_true):
    job = JobFactory()
    active = TaskFactory(job=job)
    running = TaskFactory(job=job, running=True, required_slots=2)
    preparing = TaskFactory(job=job, state=Task.State.PREPARING)
    done = TaskFactory(job=job, succeeded=True)
    process = attempt(running)
    terminate_job(job, reason="Because")
    job.refresh_from_db()
    assert (job.state, job.previous_state, job.terminate_reason) == (
        Job.State.COMPLETED,
        "terminating",
        "Because",
    )
    assert job.end_time is not None
    states = dict(Task.objects.filter(job=job).values_list("pk", "state"))
    assert states == {
        active.pk: "active",
        running.pk: "completed",
        preparing.pk: "completed",
        done.pk: "completed",
    }
    process.refresh_from_db()
    assert process.cancel_requested == "terminate"
    counts = assert_counters_true(job)
    assert (
        counts["active_count"],
        counts["running_count"],
        counts["failed_count"],
        counts["succeeded_count"],
    ) == (1, 0, 2, 1)


def test_terminate_gives_the_user_reason_by_default():
    job = JobFactory()
    terminate_job(job)
    job.refresh_from_db()
    assert job.terminate_reason == "UserTerminate"


@pytest.mark.parametrize(("trait", "code"), ENDING)
def test_terminate_refuses_a_job_that_is_ending(trait, code):
    job = JobFactory(**{trait: True})
    assert can_terminate_job(job).code == code
    with pytest.raises(BatchError) as info:
        terminate_job(job)
    assert (info.value.code, info.value.status) == (code, 409)


def test_terminate_refuses_a_job_deleted_meanwhile():
    job = JobFactory()
    Job.objects.filter(pk=job.pk).delete()
    with pytest.raises(BatchError) as info:
        terminate_job(job)
    assert info.value.code == "JobNotFound"


def test_terminate_with_an_unmet_precondition_changes_nothing():
    job = JobFactory()
    task = TaskFactory(job=job, running=True)

    def precondition(locked):
        raise BatchError.condition_not_met(412)

    with pytest.raises(BatchError):
        terminate_job(job, precondition=precondition)
    job.refresh_from_db()
    task.refresh_from_db()
    assert (job.state, task.state) == (Job.State.ACTIVE, Task.State.RUNNING)


# --- delete ------------------------------------------------------------------------------


def test_delete_removes_the_job_its_tasks_and_queues_their_directories():
    job = JobFactory()
    task = TaskFactory(job=job, running=True)
    attempt(task, node_name="node-1", task_dir="/d/t")
    delete_job(job)
    assert (
        not Job.objects.filter(pk=job.pk).exists() and not Task.objects.filter(pk=task.pk).exists()
    )
    assert list(NodeCleanup.objects.values_list("node_name", "task_dir", "reason")) == [
        ("node-1", "/d/t", "jobdelete")
    ]


def test_a_large_job_stays_deleting_for_the_sweep(monkeypatch, assert_counters_true):
    monkeypatch.setattr(job_ops, "INLINE_PURGE_LIMIT", 1)
    job = JobFactory()
    TaskFactory(job=job, running=True)
    process = attempt(Task.objects.get(job=job))
    TaskFactory(job=job)
    delete_job(job)
    job.refresh_from_db()
    assert (job.state, job.previous_state) == (Job.State.DELETING, "active")
    process.refresh_from_db()
    assert process.cancel_requested == "delete"
    assert_counters_true(job)
    purge_deleting_job(job, batch=1)
    assert not Job.objects.filter(pk=job.pk).exists() and not Task.objects.exists()


def test_delete_refuses_a_job_already_being_deleted():
    job = JobFactory(deleting=True)
    assert can_delete_job(job).code == "JobBeingDeleted"
    with pytest.raises(BatchError) as info:
        delete_job(job)
    assert (info.value.code, info.value.status) == ("JobBeingDeleted", 409)


@pytest.mark.parametrize("trait", ["completed", "terminating", "disabled"])
def test_delete_accepts_a_job_in_any_other_state(trait):
    job = JobFactory(**{trait: True})
    assert can_delete_job(job) is None
    delete_job(job)
    assert not Job.objects.filter(pk=job.pk).exists()


def test_delete_refuses_a_job_deleted_meanwhile():
    job = JobFactory()
    Job.objects.filter(pk=job.pk).delete()
    with pytest.raises(BatchError) as info:
        delete_job(job)
    assert info.value.code == "JobNotFound"


def test_delete_with_an_unmet_precondition_deletes_nothing():
    job = JobFactory()

    def precondition(locked):
        raise BatchError.condition_not_met(412)

    with pytest.raises(BatchError):
        delete_job(job, precondition=precondition)
    job.refresh_from_db()
    assert job.state == Job.State.ACTIVE


# --- completion --------------------------------------------------------------------------


def test_a_job_without_tasks_counts_as_complete():
    job = JobFactory(on_all_tasks_complete=Job.OnAllTasksComplete.TERMINATEJOB)
    complete_job_if_all_tasks_done(job)
    job.refresh_from_db()
    assert job.state == Job.State.COMPLETED


def test_a_job_without_terminatejob_never_completes_by_itself():
    job = JobFactory()
    TaskFactory(job=job, succeeded=True)
    complete_job_if_all_tasks_done(job)
    job.refresh_from_db()
    assert job.state == Job.State.ACTIVE


def test_a_job_completing_by_itself_keeps_its_counters(assert_counters_true):
    job = JobFactory(on_all_tasks_complete=Job.OnAllTasksComplete.TERMINATEJOB)
    TaskFactory(job=job, failed=True)
    complete_job_if_all_tasks_done(Job.objects.get(pk=job.pk))
    assert assert_counters_true(job)["failed_count"] == 1


@pytest.mark.parametrize("operation", ["update", "terminate", "delete"])
def test_each_can_agrees_with_its_operation_in_every_state(operation):
    can, run = {
        "update": (can_update_job, lambda j: update_job(j, spec={}, replace=False)),
        "terminate": (can_terminate_job, terminate_job),
        "delete": (can_delete_job, delete_job),
    }[operation]
    for state in Job.State.values:
        job = JobFactory(state=state)
        predicted = can(job)
        try:
            run(job)
            outcome = None
        except BatchError as error:
            outcome = error.code
        assert outcome == (predicted.code if predicted else None), state
