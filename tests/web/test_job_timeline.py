"""The node x time picture of a job's task runs, drawn on the server as SVG."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import Job
from tasks.web.charts import ROW, node_timeline
from tests.factories import AttemptFactory, TaskFactory
from tests.web.conftest import job_url

pytestmark = pytest.mark.django_db


def test_draws_a_lane_per_node_and_a_bar_per_run(op, job):
    t0 = timezone.now() - timedelta(minutes=10)
    for i, (node, outcome) in enumerate(
        [
            ("n1", "succeeded"),
            ("n1", "succeeded"),
            ("n2", "failed"),
            ("n2", "failed"),
            ("n2", "running"),
        ]
    ):
        task = TaskFactory(job=job, task_id=f"t{i}")
        AttemptFactory(
            task=task,
            node_name=node,
            outcome=outcome,
            claimed=t0 + timedelta(minutes=i),
            end_time=None if outcome == "running" else t0 + timedelta(minutes=i, seconds=50),
        )
    body = op.get(job_url("job-timeline", job)).content.decode()
    svg = body.split('<svg class="chart" id="node-timeline"')[1].split("</svg>")[0]
    assert svg.count('class="lane-bg"') == 2
    assert svg.count('<rect class="succeeded"') == 2 and svg.count('<rect class="failed"') == 2
    assert svg.count('<rect class="running"') == 1 and "2 of 3 failed" in svg
    assert "<title>t2 (attempt 1): failed, exit 0" in svg


def test_overlapping_runs_on_a_node_get_rows_of_their_own(op, job):
    t0 = timezone.now() - timedelta(minutes=10)
    for _ in range(2):
        AttemptFactory(
            task=TaskFactory(job=job),
            node_name="n1",
            claimed=t0,
            end_time=t0 + timedelta(minutes=5),
        )
    chart = node_timeline(job)
    assert len(chart.lanes) == 1 and chart.lanes[0].height == 2 * ROW
    assert {b.y for b in chart.bars} == {chart.lanes[0].y + 1, chart.lanes[0].y + 1 + ROW}


def test_says_so_when_nothing_has_run(op, job):
    assert (
        "No task of this job has run yet." in op.get(job_url("job-timeline", job)).content.decode()
    )


def test_costs_a_fixed_number_of_queries(op, job, django_assert_num_queries):
    t0 = timezone.now() - timedelta(minutes=10)
    for i in range(30):
        AttemptFactory(
            task=TaskFactory(job=job), node_name=f"n{i % 4}", claimed=t0 + timedelta(seconds=i)
        )
    # session, user, membership, job, attempts (task ids joined)
    with django_assert_num_queries(5):
        op.get(job_url("job-timeline", job))


def _runs(job, count, t0, *, node=lambda i: f"n{i % 3}", seconds=30, every=60):
    for i in range(count):
        task = TaskFactory.build(job=job, task_id=f"r{i:04d}")
        task.id_key = task.task_id.lower()
        task.save()
        AttemptFactory(
            task=task,
            node_name=node(i),
            claimed=t0 + timedelta(seconds=i * every),
            end_time=t0 + timedelta(seconds=i * every + seconds),
            outcome="failed" if i % 7 == 0 else "succeeded",
        )


def test_a_range_shows_only_its_runs_and_clips_them(op, job):
    t0 = timezone.now() - timedelta(hours=2)
    _runs(job, 60, t0)  # one a minute for an hour, 30 s each
    since, until = t0 + timedelta(minutes=10, seconds=15), t0 + timedelta(minutes=20)
    chart = node_timeline(job, since=since, until=until)
    # runs 10 (10:00-10:30, clipped to start at 10:15) to 19
    assert chart.shown == 10 and chart.start == since and chart.end == until and not chart.capped
    assert min(b.x for b in chart.bars) == chart.label


def test_the_range_comes_from_the_page_and_zoom_links_narrow_and_widen_it(op, job):
    t0 = timezone.now() - timedelta(hours=2)
    Job.objects.filter(pk=job.pk).update(creation_time=t0 - timedelta(minutes=1))
    job.refresh_from_db()
    _runs(job, 60, t0)
    fmt = "%Y-%m-%dT%H:%M:%S"
    since = timezone.localtime(t0 + timedelta(minutes=10)).strftime(fmt)
    until = timezone.localtime(t0 + timedelta(minutes=30)).strftime(fmt)
    body = op.get(job_url("job-timeline", job, **{"from": since, "to": until})).content.decode()
    assert "20 runs in this range." in body
    zoom_in = body.split('id="zoom-in"')[0].rsplit('href="?', 1)[1].split('"')[0]
    inner = op.get(
        job_url("job-timeline", job) + "?" + zoom_in.replace("&amp;", "&")
    ).content.decode()
    assert "10 runs in this range." in inner  # the middle half: minutes 15 to 25
    zoom_out = body.split('id="zoom-out"')[0].rsplit('href="?', 1)[1].split('"')[0]
    outer = op.get(
        job_url("job-timeline", job) + "?" + zoom_out.replace("&amp;", "&")
    ).content.decode()
    assert "40 runs in this range." in outer  # minutes 0 to 40


def test_a_bad_range_is_said_and_the_latest_runs_shown(op, job):
    _runs(job, 3, timezone.now() - timedelta(hours=1))
    body = op.get(job_url("job-timeline", job, **{"from": "yesterday"})).content.decode()
    assert 'role="alert" id="range-errors"' in body and "Not a date and time" in body
    assert "All 3 runs of the job." in body


def test_bars_are_links_to_their_attempts_with_a_name(op, job):
    t0 = timezone.now() - timedelta(hours=1)
    _runs(job, 2, t0)
    body = op.get(job_url("job-timeline", job)).content.decode()
    first = job.attempts.get(task__task_id="r0000")
    href = f'href="/web/{job.account.name}/jobs/{job.job_id}/tasks/r0000/#attempt-{first.pk}"'
    assert href in body
    link = body.split(href)[1].split(">")[0]
    assert "Task r0000, attempt 1, on n0, from " in link and ": failed, exit 0" in link
    task_page = op.get(f"/web/{job.account.name}/jobs/{job.job_id}/tasks/r0000/").content.decode()
    assert f'id="attempt-{first.pk}"' in task_page


def test_says_how_many_runs_were_cut(op, job, monkeypatch):
    from tasks.web import charts

    t0 = timezone.now() - timedelta(hours=2)
    _runs(job, 30, t0)
    monkeypatch.setattr(charts, "MAX_ATTEMPTS", 12)
    monkeypatch.setattr(
        charts.node_timeline, "__kwdefaults__", {**charts.node_timeline.__kwdefaults__, "limit": 12}
    )
    body = op.get(job_url("job-timeline", job)).content.decode()
    assert "Showing the latest 12 of 30 runs of the job" in body
    monkeypatch.setattr(charts, "COUNT_CAP", 20)
    body = op.get(job_url("job-timeline", job)).content.decode()
    assert "Showing the latest 12 of more than 20 runs of the job" in body
