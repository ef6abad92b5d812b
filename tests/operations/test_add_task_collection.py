"""tasks.operations.tasks.add_task_collection."""

import pytest

from tasks.errors import BatchError
from tasks.models import Task
from tasks.operations.tasks import add_task_collection
from tests.factories import JobFactory, TaskFactory

pytestmark = pytest.mark.django_db


def specs(*ids, **extra):
    return [{"id": i, "commandLine": "/bin/true", **extra} for i in ids]


def add(job, task_specs):
    ids = [s["id"] if isinstance(s, dict) else "bad" for s in task_specs]
    return add_task_collection(job, specs=task_specs, ids=ids)


def verdicts(results):
    return [(r.task_id, r.error.code if r.error else "ok") for r in results]


def test_adds_100_tasks_in_one_request(assert_counters_true):
    job = JobFactory()
    results = add(job, specs(*[f"t{i:03d}" for i in range(100)]))
    assert all(r.task is not None and r.error is None for r in results)
    assert Task.objects.filter(job=job).count() == 100
    assert assert_counters_true(job)["active_count"] == 100


def test_refuses_101_tasks_and_adds_none():
    job = JobFactory()
    with pytest.raises(BatchError) as info:
        add(job, specs(*[f"t{i}" for i in range(101)]))
    assert (info.value.code, info.value.status) == ("InvalidPropertyValue", 400)
    assert not Task.objects.filter(job=job).exists()


def test_a_duplicate_within_the_request_gets_task_exists_and_the_first_wins():
    job = JobFactory()
    results = add(job, specs("a", "B", "A", "b"))
    assert verdicts(results) == [("a", "ok"), ("B", "ok"), ("A", "TaskExists"), ("b", "TaskExists")]
    assert sorted(Task.objects.filter(job=job).values_list("task_id", flat=True)) == ["B", "a"]


def test_an_id_already_in_the_job_gets_task_exists_whatever_its_case():
    job = JobFactory()
    TaskFactory(job=job, task_id="Old")
    results = add(job, specs("OLD", "new"))
    assert verdicts(results) == [("OLD", "TaskExists"), ("new", "ok")]


def test_a_replay_with_the_same_ids_creates_no_duplicate(assert_counters_true):
    job = JobFactory()
    batch = specs("a", "b", "c")
    add(job, batch)
    results = add(job, batch)
    assert {code for _, code in verdicts(results)} == {"TaskExists"}
    assert Task.objects.filter(job=job).count() == 3
    assert assert_counters_true(job)["active_count"] == 3


def test_a_bad_task_does_not_stop_the_good_ones(assert_counters_true):
    job = JobFactory(uses_task_dependencies=False)
    wire_error = BatchError.invalid_property("id", "bad id!")
    mixed = [
        specs("good1")[0],
        wire_error,
        specs("deps", dependsOn={"taskIds": ["good1"]})[0],
        specs("slots", multiInstanceSettings={"numberOfInstances": 2}, requiredSlots=2)[0],
        specs("good2")[0],
    ]
    results = add(job, mixed)
    assert verdicts(results) == [
        ("good1", "ok"),
        ("bad", "InvalidPropertyValue"),
        ("deps", "TaskDependenciesNotSpecifiedOnJob"),
        ("slots", "InvalidPropertyValue"),
        ("good2", "ok"),
    ]
    assert results[1].error is wire_error
    assert sorted(Task.objects.filter(job=job).values_list("task_id", flat=True)) == [
        "good1",
        "good2",
    ]
    assert assert_counters_true(job)["active_count"] == 2


def test_a_task_refused_for_its_job_does_not_reserve_its_id():
    job = JobFactory(uses_task_dependencies=False)
    results = add(job, [*specs("x", dependsOn={"taskIds": ["y"]}), *specs("X")])
    assert verdicts(results) == [("x", "TaskDependenciesNotSpecifiedOnJob"), ("X", "ok")]


def test_the_results_follow_the_request_order():
    job = JobFactory()
    ids = ["z", "m", "a", "q"]
    assert [r.task_id for r in add(job, specs(*ids))] == ids


def test_successes_carry_the_stored_task():
    job = JobFactory()
    (result,) = add(job, specs("one", requiredSlots=2))
    stored = Task.objects.get(job=job)
    assert (result.task.pk, result.task.etag, result.task.required_slots) == (
        stored.pk,
        stored.etag,
        2,
    )


@pytest.mark.parametrize(
    ("trait", "code"),
    [
        ("completed", "JobCompleted"),
        ("terminating", "JobBeingTerminated"),
        ("deleting", "JobBeingDeleted"),
    ],
)
def test_refuses_the_whole_request_for_the_jobs_state(trait, code):
    job = JobFactory(**{trait: True})
    with pytest.raises(BatchError) as info:
        add(job, specs("a", "b"))
    assert (info.value.code, info.value.status) == (code, 409)
    assert not Task.objects.filter(job=job).exists()


def test_a_request_of_only_bad_tasks_adds_nothing(assert_counters_true):
    job = JobFactory()
    TaskFactory(job=job, task_id="a")
    results = add(job, specs("A", "a"))
    assert verdicts(results) == [("A", "TaskExists"), ("a", "TaskExists")]
    assert assert_counters_true(job)["active_count"] == 1


def test_tasks_take_the_jobs_defaults_as_they_are_under_its_lock_not_as_the_caller_read_them():
    # The tasks are made before the transaction from the job the caller holds; a job
    # changed meanwhile must not leave its old defaults or rules on them.
    job = JobFactory(max_task_retry_count=1, uses_task_dependencies=False)
    stale = type(job).objects.get(pk=job.pk)
    type(job).objects.filter(pk=job.pk).update(max_task_retry_count=5, uses_task_dependencies=True)
    results = add(
        stale,
        specs("a") + [{"id": "b", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["a"]}}],
    )
    assert verdicts(results) == [("a", "ok"), ("b", "ok")]
    assert Task.objects.get(job=job, task_id="a").max_task_retry_count == 5


def test_an_id_in_the_job_gets_task_exists_before_any_rule_of_its_job():
    job = JobFactory(uses_task_dependencies=False)
    TaskFactory(job=job, task_id="a")
    results = add(job, [{"id": "A", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["x"]}}])
    assert verdicts(results) == [("A", "TaskExists")]


def test_an_environment_variable_name_with_an_equals_sign_fails_only_its_task():
    job = JobFactory()
    results = add_task_collection(
        job,
        specs=[
            {"id": "good", "commandLine": "x"},
            {"id": "bad", "commandLine": "x", "environmentSettings": [{"name": "A=B"}]},
        ],
        ids=["good", "bad"],
    )
    assert results[0].task is not None
    assert results[1].task is None and results[1].error.code == "InvalidPropertyValue"
    assert dict(results[1].error.values)["PropertyName"] == "environmentSettings[0].name"
    assert list(job.tasks.values_list("task_id", flat=True)) == ["good"]
