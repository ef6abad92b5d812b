"""tasks.operations.sweeps: the 180-day maximum task lifetime and deleting-job purges."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tasks.models import Attempt, Job, Task
from tasks.operations.sweeps import expire_task_lifetimes, purge_deleting_jobs, run_sweeps
from tests.factories import JobFactory, TaskFactory

pytestmark = pytest.mark.django_db


def aged(days, **kw):
    """A task added `days` ago, to a job at least as old (a task never predates its job)."""
    born = timezone.now() - timedelta(days=days)
    kw.setdefault("job", JobFactory(creation_time=born))
    return TaskFactory(creation_time=born, **kw)


def snapshot(task):
    task.refresh_from_db()
    return (
        task.state,
        task.previous_state,
        task.state_transition_time,
        task.result,
        task.exit_code,
        task.etag,
        task.last_modified,
    )


@pytest.mark.parametrize("trait", [None, "running"])
def test_terminates_a_task_not_completed_after_180_days_and_leaves_its_state_as_it_was(
    trait, assert_counters_true
):
    task = aged(181, **({trait: True} if trait else {}))
    process = Attempt.objects.create(task=task, job=task.job, claimed=timezone.now())
    before = snapshot(task)
    assert expire_task_lifetimes() == 1
    assert snapshot(task) == before
    task.refresh_from_db()
    process.refresh_from_db()
    assert task.lifetime_expired and process.cancel_requested == "terminate"
    assert_counters_true(task.job)


def test_leaves_younger_tasks_alone():
    task = aged(179, running=True)
    assert expire_task_lifetimes() == 0
    task.refresh_from_db()
    assert not task.lifetime_expired


@pytest.mark.parametrize("trait", ["succeeded", "failed"])
def test_leaves_completed_tasks_alone(trait):
    task = aged(400, **{trait: True})
    assert expire_task_lifetimes() == 0
    task.refresh_from_db()
    assert not task.lifetime_expired


def test_expires_each_task_once():
    aged(200)
    assert expire_task_lifetimes() == 1
    assert expire_task_lifetimes() == 0


def test_finds_old_tasks_in_every_old_job_and_not_in_a_job_with_nothing_left_to_run():
    old = [aged(200) for _ in range(3)]
    done = aged(300, succeeded=True)
    assert expire_task_lifetimes() == 3
    assert set(Task.objects.filter(lifetime_expired=True)) == set(old)
    done.refresh_from_db()
    assert not done.lifetime_expired


def test_works_through_more_tasks_than_one_batch():
    job = JobFactory(creation_time=timezone.now() - timedelta(days=190))
    for _ in range(5):
        aged(190, job=job)
    assert expire_task_lifetimes(batch=2) == 5
    assert Task.objects.filter(lifetime_expired=True).count() == 5


def test_finishes_deleting_jobs_left_deleting():
    job = JobFactory(deleting=True)
    TaskFactory(job=job)
    kept = JobFactory()
    assert purge_deleting_jobs() == 1
    assert list(Job.objects.all()) == [kept] and not Task.objects.filter(job_id=job.pk).exists()


def test_the_management_command_runs_every_sweep_once(capsys):
    aged(181)
    JobFactory(deleting=True)
    call_command("sweep", "--once")
    out = dict(pair.split("=") for pair in capsys.readouterr().out.split())
    assert (out["expired"], out["purged_jobs"]) == ("1", "1")
    again = run_sweeps()
    assert (again["expired"], again["purged_jobs"]) == (0, 0)
