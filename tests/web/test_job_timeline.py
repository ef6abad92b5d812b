"""The node x time picture of a job's task runs, drawn on the server as SVG."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.web.charts import ROW, node_timeline
from tests.factories import AttemptFactory, TaskFactory
from tests.web.conftest import job_url

pytestmark = pytest.mark.django_db


def test_draws_a_lane_per_node_and_a_bar_per_run(op, job):
    t0 = timezone.now() - timedelta(minutes=10)
    for i, (node, outcome) in enumerate([("n1", "succeeded"), ("n1", "succeeded"), ("n2", "failed"),
                                         ("n2", "failed"), ("n2", "running")]):
        task = TaskFactory(job=job, task_id=f"t{i}")
        AttemptFactory(task=task, node_name=node, outcome=outcome, claimed=t0 + timedelta(minutes=i),
                       end_time=None if outcome == "running" else t0 + timedelta(minutes=i, seconds=50))
    body = op.get(job_url("job-timeline", job)).content.decode()
    svg = body.split('<svg class="chart" id="node-timeline"')[1].split("</svg>")[0]
    assert svg.count('class="lane-bg"') == 2
    assert svg.count('<rect class="succeeded"') == 2 and svg.count('<rect class="failed"') == 2
    assert svg.count('<rect class="running"') == 1 and "2 of 3 failed" in svg
    assert "<title>t2 (attempt 1): failed, exit 0" in svg


def test_overlapping_runs_on_a_node_get_rows_of_their_own(op, job):
    t0 = timezone.now() - timedelta(minutes=10)
    for _ in range(2):
        AttemptFactory(task=TaskFactory(job=job), node_name="n1", claimed=t0, end_time=t0 + timedelta(minutes=5))
    chart = node_timeline(job)
    assert len(chart.lanes) == 1 and chart.lanes[0].height == 2 * ROW
    assert {b.y for b in chart.bars} == {chart.lanes[0].y + 1, chart.lanes[0].y + 1 + ROW}


def test_says_so_when_nothing_has_run(op, job):
    assert "No task of this job has run yet." in op.get(job_url("job-timeline", job)).content.decode()


def test_costs_a_fixed_number_of_queries(op, job, django_assert_num_queries):
    t0 = timezone.now() - timedelta(minutes=10)
    for i in range(30):
        AttemptFactory(task=TaskFactory(job=job), node_name=f"n{i % 4}", claimed=t0 + timedelta(seconds=i))
    # session, user, membership, job, attempts (task ids joined)
    with django_assert_num_queries(5):
        op.get(job_url("job-timeline", job))
