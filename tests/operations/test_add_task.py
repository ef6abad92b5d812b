"""tasks.operations.tasks.add_task and can_add_task."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks.errors import BatchError
from tasks.models import Job, Task
from tasks.operations.tasks import (
    MAX_DEPENDENCY_IDS_CHARS,
    MAX_DEPENDENCY_RANGES,
    add_task,
    can_add_task,
)
from tests.factories import JobFactory, TaskFactory

pytestmark = pytest.mark.django_db


def spec(task_id="t1", **extra):
    return {"id": task_id, "commandLine": "/bin/echo hi", **extra}


def refusal(job, task_spec) -> BatchError:
    with pytest.raises(BatchError) as info:
        add_task(job, spec=task_spec)
    return info.value


def test_adds_an_active_task_with_the_id_as_sent():
    job = JobFactory()
    task = add_task(job, spec=spec("MyTask"))
    task.refresh_from_db()
    assert (task.task_id, task.id_key, task.state) == ("MyTask", "mytask", Task.State.ACTIVE)
    assert task.creation_time == task.state_transition_time == task.last_modified
    assert task.etag.startswith("0x") and task.previous_state == ""


def test_gives_omitted_constraints_the_batch_defaults():
    job = JobFactory(max_task_retry_count=4)
    task = add_task(job, spec=spec())
    assert task.max_wall_clock_time is None  # unlimited
    assert task.retention_time == timedelta(days=7)
    assert task.max_task_retry_count == 4  # the job's


def test_keeps_constraints_the_client_gave():
    job = JobFactory(max_task_retry_count=4)
    constraints = {
        "maxWallClockTime": timedelta(hours=1),
        "retentionTime": timedelta(days=1),
        "maxTaskRetryCount": 0,
    }
    task = add_task(job, spec=spec(constraints=constraints))
    assert (task.max_wall_clock_time, task.retention_time, task.max_task_retry_count) == (
        timedelta(hours=1),
        timedelta(days=1),
        0,
    )


def test_keeps_the_properties_it_does_not_interpret_verbatim():
    job = JobFactory()
    extra = {
        "environmentSettings": [{"name": "A", "value": " 1 "}],
        "userIdentity": {"autoUser": {"scope": "task", "elevationLevel": "admin"}},
    }
    task = add_task(job, spec=spec(displayName="shown", requiredSlots=2, **extra))
    task.refresh_from_db()
    assert task.spec == extra
    assert (task.display_name, task.required_slots) == ("shown", 2)


def test_counts_the_new_task_as_active(assert_counters_true):
    job = JobFactory()
    TaskFactory(job=job, failed=True)
    add_task(job, spec=spec(requiredSlots=3))
    counts = assert_counters_true(job)
    assert (counts["active_count"], counts["active_slots"]) == (1, 3)


def test_refuses_an_id_already_in_the_job_whatever_its_case():
    job = JobFactory()
    add_task(job, spec=spec("Task-A"))
    assert refusal(job, spec("tASK-a")).code == "TaskExists"
    assert refusal(job, spec("Task-A")).status == 409
    assert Task.objects.filter(job=job).count() == 1


def test_refusing_a_duplicate_leaves_the_counters_alone(assert_counters_true):
    job = JobFactory()
    add_task(job, spec=spec("a"))
    refusal(job, spec("A"))
    assert assert_counters_true(job)["active_count"] == 1


def test_accepts_the_same_id_in_another_job():
    first, second = JobFactory(), JobFactory()
    add_task(first, spec=spec("same"))
    add_task(second, spec=spec("same"))
    assert Task.objects.filter(id_key="same").count() == 2


@pytest.mark.parametrize(
    ("trait", "code"),
    [
        ("completed", "JobCompleted"),
        ("terminating", "JobBeingTerminated"),
        ("deleting", "JobBeingDeleted"),
    ],
)
def test_refuses_a_job_that_takes_no_new_tasks(trait, code):
    job = JobFactory(**{trait: True})
    assert can_add_task(job).code == code
    error = refusal(job, spec())
    assert (error.code, error.status) == (code, 409)
    assert not Task.objects.filter(job=job).exists()


@pytest.mark.parametrize(
    "state", [Job.State.ACTIVE, Job.State.DISABLED, Job.State.DISABLING, Job.State.ENABLING]
)
def test_a_job_that_is_not_ending_accepts_tasks(state):
    # UNCONFIRMED (REFERENCE §6.1): a disabled job still accepts tasks.
    job = JobFactory(state=state)
    assert can_add_task(job) is None
    assert add_task(job, spec=spec()).state == Task.State.ACTIVE


def test_checks_the_job_state_in_the_database_not_the_callers_copy():
    job = JobFactory()
    Job.objects.filter(pk=job.pk).update(state=Job.State.COMPLETED)
    assert refusal(job, spec()).code == "JobCompleted"


def test_refuses_a_job_deleted_meanwhile():
    job = JobFactory()
    Job.objects.filter(pk=job.pk).delete()
    assert refusal(job, spec()).code == "JobNotFound"


def test_refuses_dependencies_on_a_job_without_task_dependencies():
    job = JobFactory(uses_task_dependencies=False)
    error = refusal(job, spec(dependsOn={"taskIds": ["a"]}))
    assert (error.code, error.status) == ("TaskDependenciesNotSpecifiedOnJob", 400)


def test_accepts_dependencies_on_a_job_with_task_dependencies():
    job = JobFactory(uses_task_dependencies=True)
    depends = {"taskIds": ["a"], "taskIdRanges": [{"start": 1, "end": 5}]}
    assert add_task(job, spec=spec(dependsOn=depends)).spec["dependsOn"] == depends


def test_refuses_a_dependency_list_over_64000_characters():
    job = JobFactory(uses_task_dependencies=True)
    ids = ["x" * 64] * (MAX_DEPENDENCY_IDS_CHARS // 64 + 1)
    error = refusal(job, spec(dependsOn={"taskIds": ids}))
    assert (error.code, error.status) == ("TaskDependencyListTooLong", 400)


def test_refuses_too_many_dependency_ranges():
    job = JobFactory(uses_task_dependencies=True)
    ranges = [{"start": i, "end": i} for i in range(MAX_DEPENDENCY_RANGES + 1)]
    error = refusal(job, spec(dependsOn={"taskIdRanges": ranges}))
    assert (error.code, error.status) == ("TaskDependencyRangesTooLong", 400)


@pytest.mark.parametrize(
    "conditions",
    [
        {"exitCodes": [{"code": 1, "exitOptions": {"dependencyAction": "block"}}]},
        {
            "exitCodeRanges": [
                {"start": 1, "end": 9, "exitOptions": {"dependencyAction": "satisfy"}}
            ]
        },
        {"preProcessingError": {"dependencyAction": "block"}},
        {"fileUploadError": {"dependencyAction": "block"}},
        {"default": {"dependencyAction": "satisfy"}},
    ],
)
def test_refuses_a_dependency_action_on_a_job_without_task_dependencies(conditions):
    job = JobFactory(uses_task_dependencies=False)
    error = refusal(job, spec(exitConditions=conditions))
    assert (error.code, error.status) == ("InvalidPropertyValue", 400)
    assert dict(error.values)["PropertyName"].endswith("dependencyAction")


def test_accepts_a_dependency_action_on_a_job_with_task_dependencies():
    job = JobFactory(uses_task_dependencies=True)
    conditions = {"default": {"dependencyAction": "satisfy"}}
    assert add_task(job, spec=spec(exitConditions=conditions)).spec["exitConditions"] == conditions


@pytest.mark.parametrize("action", ["disable", "terminate"])
@pytest.mark.parametrize(
    "where", ["exitCodes", "exitCodeRanges", "preProcessingError", "fileUploadError", "default"]
)
def test_refuses_a_job_action_while_the_job_ignores_task_failures(action, where):
    job = JobFactory(on_task_failure=Job.OnTaskFailure.NOACTION)
    options = {"jobAction": action}
    conditions = {
        "exitCodes": {"exitCodes": [{"code": 3, "exitOptions": options}]},
        "exitCodeRanges": {"exitCodeRanges": [{"start": 1, "end": 2, "exitOptions": options}]},
    }.get(where, {where: options})
    error = refusal(job, spec(exitConditions=conditions))
    assert (error.code, error.status) == ("InvalidPropertyValue", 400)
    assert dict(error.values)["PropertyName"].endswith("jobAction")


def test_accepts_job_action_none_whatever_the_job_does_on_failure():
    job = JobFactory(on_task_failure=Job.OnTaskFailure.NOACTION)
    add_task(job, spec=spec(exitConditions={"default": {"jobAction": "none"}}))


def test_accepts_a_job_action_when_the_job_performs_exit_options():
    job = JobFactory(on_task_failure=Job.OnTaskFailure.PERFORMEXITOPTIONSJOBACTION)
    add_task(job, spec=spec(exitConditions={"default": {"jobAction": "terminate"}}))


@pytest.mark.parametrize("slots", [2, 5])
def test_refuses_a_multi_instance_task_that_needs_more_than_one_slot(slots):
    job = JobFactory()
    multi = {"numberOfInstances": 3, "coordinationCommandLine": "c"}
    error = refusal(job, spec(multiInstanceSettings=multi, requiredSlots=slots))
    assert (error.code, error.status) == ("InvalidPropertyValue", 400)
    assert dict(error.values)["PropertyName"] == "requiredSlots"


def test_adds_a_multi_instance_task_with_its_instance_count():
    job = JobFactory()
    task = add_task(
        job,
        spec=spec(multiInstanceSettings={"numberOfInstances": 3, "coordinationCommandLine": "c"}),
    )
    assert task.number_of_instances == 3 and task.is_multi_instance


@pytest.mark.parametrize(
    ("job_spec", "task_id", "code"),
    [
        (
            {"jobPreparationTask": {"id": "prep", "commandLine": "x"}},
            "PREP",
            "TaskIdSameAsJobPreparationTask",
        ),
        (
            {"jobPreparationTask": {"commandLine": "x"}},
            "jobpreparation",
            "TaskIdSameAsJobPreparationTask",
        ),
        (
            {"jobReleaseTask": {"id": "rel", "commandLine": "x"}},
            "Rel",
            "TaskIdSameAsJobReleaseTask",
        ),
        ({"jobReleaseTask": {"commandLine": "x"}}, "jobrelease", "TaskIdSameAsJobReleaseTask"),
    ],
)
def test_refuses_the_id_of_the_jobs_preparation_or_release_task(job_spec, task_id, code):
    job = JobFactory(spec=job_spec)
    error = refusal(job, spec(task_id))
    assert (error.code, error.status) == (code, 409)


def test_the_default_preparation_task_id_is_free_when_the_job_has_none():
    job = JobFactory(spec={})
    add_task(job, spec=spec("jobpreparation"))


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"environmentSettings": [{"name": "A=B", "value": "1"}]}, "environmentSettings[0].name"),
        ({"environmentSettings": [{"name": "OK"}, {"name": "=X"}]}, "environmentSettings[1].name"),
    ],
)
def test_refuses_an_environment_variable_name_no_process_can_have(settings, name):
    # No POSIX environment can hold a name with "=": the agent could never start the task.
    error = refusal(JobFactory(), spec(**settings))
    assert (error.code, dict(error.values)["PropertyName"]) == ("InvalidPropertyValue", name)
    assert not Task.objects.exists()


def test_refuses_a_retry_count_below_minus_one():
    error = refusal(JobFactory(), spec(constraints={"maxTaskRetryCount": -2}))
    assert (error.code, dict(error.values)["PropertyName"]) == (
        "InvalidPropertyValue",
        "constraints.maxTaskRetryCount",
    )


def test_accepts_environment_variable_names_with_any_other_character():
    task = add_task(
        JobFactory(), spec=spec(environmentSettings=[{"name": "a.b-c d", "value": "x=y"}])
    )
    assert task.spec["environmentSettings"] == [{"name": "a.b-c d", "value": "x=y"}]


def test_the_database_refuses_a_case_insensitive_duplicate_inserted_directly():
    task = TaskFactory(task_id="Dup")
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.create(
            job=task.job,
            task_id="dUP",
            id_key="dup",
            command_line="x",
            etag="0x1",
            state_transition_time=now,
            creation_time=now,
            last_modified=now,
        )


def test_the_database_refuses_an_id_key_that_is_not_the_lowercased_id():
    job = JobFactory()
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.create(
            job=job,
            task_id="Abc",
            id_key="Abc",
            command_line="x",
            etag="0x1",
            state_transition_time=now,
            creation_time=now,
            last_modified=now,
        )


def test_can_add_agrees_with_add_in_every_job_state():
    for state in Job.State.values:
        job = JobFactory(state=state)
        predicted = can_add_task(job)
        try:
            add_task(job, spec=spec())
            outcome = None
        except BatchError as error:
            outcome = error.code
        assert outcome == (predicted.code if predicted else None), state
