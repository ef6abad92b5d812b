"""tasks.operations.counts: the job's maintained task counters."""

import pytest

from tasks.models import Job, Task
from tasks.operations.counts import CountDelta, buckets_of, recount_job
from tests.factories import JobFactory, TaskFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("state", "result", "buckets"),
    [
        ("active", "", ("active",)),
        ("preparing", "", ("running",)),  # Batch counts preparing as running
        ("running", "", ("running",)),
        ("completed", "success", ("completed", "succeeded")),
        ("completed", "failure", ("completed", "failed")),
        ("completed", "", ("completed",)),
    ],
)
def test_each_task_state_counts_in_its_buckets(state, result, buckets):
    assert buckets_of(state, result) == buckets


def test_a_delta_moves_tasks_and_slots_in_one_update(django_assert_num_queries):
    job = JobFactory(active_count=2, active_slots=5)
    delta = CountDelta()
    delta.move(("active", ""), ("completed", "failure"), 3)
    delta.add("running", "", 2)
    with django_assert_num_queries(1):
        delta.apply(job.pk)
    job.refresh_from_db()
    assert (job.active_count, job.active_slots) == (1, 2)
    assert (job.completed_count, job.failed_count, job.failed_slots, job.succeeded_count) == (
        1,
        1,
        3,
        0,
    )
    assert (job.running_count, job.running_slots) == (1, 2)


def test_an_empty_delta_writes_nothing(django_assert_num_queries):
    job = JobFactory()
    with django_assert_num_queries(0):
        CountDelta().apply(job.pk)


def test_opposite_moves_cancel_out(django_assert_num_queries):
    job = JobFactory()
    delta = CountDelta()
    delta.add("active", "", 1)
    delta.add("active", "", 1, -1)
    with django_assert_num_queries(0):
        delta.apply(job.pk)


def test_recount_rebuilds_every_counter_from_the_tasks():
    job = JobFactory()
    TaskFactory(job=job, required_slots=2)
    TaskFactory(job=job, state=Task.State.PREPARING)
    TaskFactory(job=job, running=True, required_slots=3)
    TaskFactory(job=job, succeeded=True, required_slots=4)
    TaskFactory(job=job, failed=True, required_slots=5)
    TaskFactory(job=JobFactory(), running=True)  # another job's task counts there
    Job.objects.filter(pk=job.pk).update(active_count=99, failed_slots=-4)
    recount_job(job)
    job.refresh_from_db()
    assert [
        job.active_count,
        job.running_count,
        job.completed_count,
        job.succeeded_count,
        job.failed_count,
    ] == [1, 2, 2, 1, 1]
    assert [
        job.active_slots,
        job.running_slots,
        job.completed_slots,
        job.succeeded_slots,
        job.failed_slots,
    ] == [2, 4, 9, 4, 5]


def test_recount_of_a_job_without_tasks_is_all_zero():
    job = JobFactory(active_count=3, completed_slots=2)
    recount_job(job)
    job.refresh_from_db()
    assert (job.active_count, job.completed_slots, job.total_count) == (0, 0, 0)
