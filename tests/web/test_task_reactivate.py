"""Reactivate from the dashboard: one click (not destructive), through reactivate_task."""

import pytest
from django.contrib.messages import get_messages

from tasks.models import AuditRecord, Task
from tests.factories import JobFactory, MembershipFactory, TaskFactory
from tests.web.conftest import HTMX, signed_in, task_url

pytestmark = pytest.mark.django_db


def test_plain_post_reactivates_a_failed_task(op, job):
    task = TaskFactory(job=job, failed=True)
    r = op.post(task_url("task-reactivate", task))
    assert r.status_code == 302
    task.refresh_from_db()
    job.refresh_from_db()
    assert task.state == Task.State.ACTIVE and task.exit_code is None and job.active_count == 1


def test_htmx_post_answers_the_live_task_that_polls_again(op, job):
    task = TaskFactory(job=job, failed=True)
    r = op.post(task_url("task-reactivate", task), headers=HTMX)
    body = r.content.decode()
    assert r.status_code == 200 and 'id="task-state">active<' in body and "every 2s" in body


def test_refuses_a_succeeded_task_in_both_paths(op, job):
    task = TaskFactory(job=job, succeeded=True)
    plain = op.post(task_url("task-reactivate", task))
    assert [str(m) for m in get_messages(plain.wsgi_request)] == [
        "TaskSucceeded: The specified task completed successfully and cannot be reactivated."
    ]
    htmx = op.post(task_url("task-reactivate", task), headers=HTMX)
    assert "cannot be reactivated" in htmx.content.decode().split('id="task-flash">')[1]
    task.refresh_from_db()
    assert task.state == Task.State.COMPLETED
    assert AuditRecord.objects.filter(outcome__refused="TaskSucceeded").count() == 2


def test_refuses_a_task_of_a_completed_job(db):
    job = JobFactory(completed=True)
    task = TaskFactory(job=job, failed=True)
    client = signed_in(MembershipFactory(account=job.account).user)
    r = client.post(task_url("task-reactivate", task), headers=HTMX)
    assert "The specified job is already in a completed state." in r.content.decode()
