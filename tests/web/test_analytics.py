"""A job's analytics (tasks/web/analytics.py): completions over time, the run-time
distribution and its outliers, throughput and the ETA, bounded at any job size."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import Job, Task
from tasks.operations.counts import recount_job
from tasks.web import analytics
from tasks.web.analytics import COLUMNS, RECENT, job_analytics, sample_tasks
from tests.factories import JobFactory
from tests.web.conftest import job_url

pytestmark = pytest.mark.django_db


def add_tasks(job, count, *, start=None, run=lambda i: 60, state=lambda i: "completed", prefix="t"):
    """Tasks made in bulk (the rules layer is not what is under test), created and ended in
    order a second apart."""
    start = start or timezone.now() - timedelta(hours=2)
    rows = []
    for i in range(count):
        created = start + timedelta(seconds=i)
        s = state(i)
        began = created if s != "active" else None
        ended = created + timedelta(seconds=run(i)) if s == "completed" else None
        rows.append(
            Task(
                job=job,
                task_id=f"{prefix}{i:05d}",
                id_key=f"{prefix}{i:05d}",
                command_line="x",
                retention_time=timedelta(days=7),
                etag="0x1",
                state=s,
                state_transition_time=created,
                creation_time=created,
                last_modified=created,
                start_time=began,
                end_time=ended,
                result=("failure" if i % 10 == 0 else "success") if s == "completed" else "",
                exit_code=(1 if i % 10 == 0 else 0) if s == "completed" else None,
            )
        )
    Task.objects.bulk_create(rows, batch_size=500)
    recount_job(job)
    job.refresh_from_db()


def test_a_small_job_is_read_whole_and_its_figures_are_exact(job):
    add_tasks(job, 100, run=lambda i: 600 if i == 42 else 60 + i % 5)
    stats = job_analytics(job)
    assert stats.exact and stats.sampled == 100 and stats.sampled_completed == 100
    assert len(stats.completions.columns) == COLUMNS
    # Each column's name says its interval and counts; together they are the 100 completions.
    counted = [c.label.split(": ")[1] for c in stats.completions.columns]
    ok = sum(int(c.split(" succeeded")[0].replace(",", "")) for c in counted)
    bad = sum(int(c.split(", ")[1].split(" failed")[0].replace(",", "")) for c in counted)
    assert (ok, bad) == (90, 10)
    assert [o.task_id for o in stats.outliers] == ["t00042"] and stats.outlier_count == 1
    assert dict(stats.quantiles)["median"] == "62s"


def test_the_page_links_the_outliers_and_says_what_it_read(op, job):
    add_tasks(job, 50, run=lambda i: 900 if i in (7, 8) else 30)
    body = op.get(job_url("job-analytics", job)).content.decode()
    assert "From all 50 tasks of the job." in body
    outliers = body.split('id="outliers"')[1].split("</table>")[0]
    assert "t00008" in outliers
    assert f'href="/web/{job.account.name}/jobs/{job.job_id}/tasks/t00007/"' in outliers
    assert 'id="completions-chart"' in body and 'id="run-time-chart"' in body


def test_a_big_job_is_sampled_and_the_page_says_how_much(op, job, monkeypatch):
    add_tasks(job, 400, run=lambda i: 30 + i % 60)
    stats = job_analytics(job, sample=40)
    assert not stats.exact and 35 <= stats.sampled <= 41
    # Scaled to the counters: the estimated completions add up to about the completed count.
    total = sum(
        int(c.label.split(": ")[1].split(" succeeded")[0].replace(",", ""))
        + int(c.label.split(", ")[1].split(" failed")[0].replace(",", ""))
        for c in stats.completions.columns
    )
    assert abs(total - 400) <= COLUMNS  # rounding per column
    monkeypatch.setattr(analytics, "SAMPLE", 40)
    body = op.get(job_url("job-analytics", job)).content.decode()
    assert "from a sample of" in body and "of 400 tasks" in body


def test_the_sample_finds_the_jobs_tasks_among_another_jobs(account):
    """Tasks of two jobs added at the same time interleave in primary-key order: the probes
    widen so the sample is still about the size asked for, and holds only this job's tasks."""
    mine, other = JobFactory(account=account), JobFactory(account=account)
    start = timezone.now() - timedelta(hours=1)
    for i in range(300):
        add_tasks(
            mine if i % 3 == 0 else other, 1, start=start + timedelta(seconds=i), prefix=f"x{i}-"
        )
    mine.refresh_from_db()
    rows, exact = sample_tasks(mine, 30)
    assert not exact and 25 <= len(rows) <= 31
    assert set(
        Task.objects.filter(pk__in=[r["pk"] for r in rows]).values_list("job", flat=True)
    ) == {mine.pk}


def test_eta_from_the_recent_rate_and_what_remains(job):
    now = timezone.now()
    # RECENT completions over the last 10 minutes, 300 tasks still waiting.
    add_tasks(job, RECENT, start=now - timedelta(minutes=10), run=lambda i: 0)
    add_tasks(job, 300, state=lambda i: "active", prefix="w")
    stats = job_analytics(job, now=now)
    assert stats.remaining == 300
    assert stats.recent_rate == pytest.approx(RECENT / 10, rel=0.02)
    assert stats.eta == pytest.approx(timedelta(minutes=300 / (RECENT / 10)), rel=0.02)


@pytest.mark.parametrize(
    "state, note", [(Job.State.DISABLED, "disabled"), (Job.State.COMPLETED, "completed")]
)
def test_no_eta_when_nothing_can_finish_or_nothing_is_left(job, state, note):
    add_tasks(job, 20, run=lambda i: 1)
    add_tasks(job, 5, state=lambda i: "active", prefix="w")
    Job.objects.filter(pk=job.pk).update(state=state)
    job.refresh_from_db()
    stats = job_analytics(job)
    assert stats.eta is None and note in stats.eta_note


def test_an_empty_job_says_nothing_completed(op, job):
    body = op.get(job_url("job-analytics", job)).content.decode()
    assert "No task has completed yet." in body and "No task is waiting or running." in body


def test_costs_the_same_queries_at_any_size(op, job, django_assert_max_num_queries, monkeypatch):
    add_tasks(job, 300)
    monkeypatch.setattr(analytics, "SAMPLE", 50)  # the sampled path: bounds, one primary-key lookup
    # session, user, membership, job + at most 8 of the analytics'
    with django_assert_max_num_queries(12):
        op.get(job_url("job-analytics", job))


def test_the_sample_is_looked_up_with_its_keys_in_one_parameter(job):
    """A parameter per key (Django's pk__in) cost a third of the sample's time at 1,000
    keys, compiled in Python and on PostgreSQL parsed and planned too, which a job read
    whole does not pay (the analytics ratio at 1M vs 1k tasks)."""
    from django.db import connection

    add_tasks(job, 400)
    seen = []

    def record(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        rows, exact = sample_tasks(job, 200)
    assert not exact and len(rows) == 200
    assert max(len(params or ()) for _, params in seen) <= 2, [len(p or ()) for _, p in seen]


def test_viewers_see_it_and_strangers_do_not(view, stranger, job):
    add_tasks(job, 5)
    assert view.get(job_url("job-analytics", job)).status_code == 200
    assert stranger.get(job_url("job-analytics", job)).status_code == 404


def test_the_sample_does_not_alias_with_a_pattern_in_the_tasks(job):
    """Every 5th task is still waiting: a sample of one in 5 taken at a fixed stride would
    hold only those (and show nothing completed)."""
    add_tasks(job, 500, state=lambda i: "active" if i % 5 == 0 else "completed")
    stats = job_analytics(job, sample=100)
    assert not stats.exact and 60 <= stats.sampled_completed <= 95
