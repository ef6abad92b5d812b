"""Update constraints from the dashboard: a form, through update_task."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages

from tests.factories import TaskFactory
from tests.web.conftest import HTMX, task_url

pytestmark = pytest.mark.django_db


def test_form_shows_the_current_constraints(op, job):
    task = TaskFactory(job=job, max_task_retry_count=4)
    for headers in ({}, HTMX):
        body = op.get(task_url("task-update", task), headers=headers).content.decode()
        assert 'name="max_task_retry_count" value="4"' in body


def test_plain_post_updates_and_redirects(op, job):
    task = TaskFactory(job=job)
    r = op.post(
        task_url("task-update", task),
        {"max_wall_clock_time": "01:30:00", "max_task_retry_count": "2"},
    )
    assert r.status_code == 302
    task.refresh_from_db()
    assert task.max_wall_clock_time == timedelta(minutes=90) and task.max_task_retry_count == 2
    assert task.retention_time == timedelta(days=7)


def test_htmx_post_answers_the_task_with_new_constraints_in_its_place(op, job):
    task = TaskFactory(job=job)
    r = op.post(task_url("task-update", task), {"max_wall_clock_time": "PT2H"}, headers=HTMX)
    assert (
        r.status_code == 200 and r["HX-Retarget"] == "#task-live" and "2h 00m" in r.content.decode()
    )


def test_invalid_input_shows_the_form_again(op, job):
    task = TaskFactory(job=job)
    r = op.post(task_url("task-update", task), {"max_task_retry_count": "-5"}, headers=HTMX)
    assert r.status_code == 200 and 'id="update-form"' in r.content.decode()
    assert "greater than or equal to -1" in r.content.decode()


def test_refuses_a_completed_task_in_both_paths(op, job):
    task = TaskFactory(job=job, succeeded=True)
    plain = op.post(task_url("task-update", task), {"max_task_retry_count": "2"})
    assert [str(m) for m in get_messages(plain.wsgi_request)][0].startswith("TaskCompleted")
    htmx = op.post(task_url("task-update", task), {"max_task_retry_count": "2"}, headers=HTMX)
    assert "already in a completed state" in htmx.content.decode().split('id="task-flash">')[1]
    task.refresh_from_db()
    assert task.max_task_retry_count == 0


def test_updating_a_running_task_says_the_running_attempt_gets_the_new_wall_clock(op, job):
    task = TaskFactory(job=job, running=True)
    r = op.post(task_url("task-update", task), {"max_wall_clock_time": "00:00:30"}, headers=HTMX)
    body = r.content.decode()
    assert "constraints updated" in body
    assert (
        "The running attempt now has max wall-clock 30.0 s, from its start (it ends now if it has run longer)"
        in body
    )


def test_updating_an_active_task_says_nothing_of_a_running_attempt(op, job):
    task = TaskFactory(job=job)
    body = op.post(
        task_url("task-update", task), {"max_wall_clock_time": "00:00:30"}, headers=HTMX
    ).content.decode()
    assert "constraints updated" in body and "running attempt now" not in body


def test_the_form_says_a_new_wall_clock_applies_to_the_running_attempt(op, job):
    body = op.get(task_url("task-update", TaskFactory(job=job, running=True))).content.decode()
    assert "Applies to a running attempt too" in body
