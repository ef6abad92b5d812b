"""Delete from the dashboard: confirmed first, through delete_task, back to the job."""

import pytest
from django.contrib.messages import get_messages

from tasks.models import AuditRecord, Task
from tests.factories import JobFactory, MembershipFactory, TaskFactory
from tests.web.conftest import HTMX, job_url, signed_in, task_url

pytestmark = pytest.mark.django_db


def test_asks_for_confirmation_first(op, job):
    task = TaskFactory(job=job)
    assert "Yes, delete" in op.post(task_url("task-delete", task)).content.decode()
    assert Task.objects.filter(pk=task.pk).exists()


def test_plain_post_deletes_and_returns_to_the_job(op, job):
    task = TaskFactory(job=job)
    r = op.post(task_url("task-delete", task), {"confirm": "yes"})
    assert r.status_code == 302 and r["Location"] == job_url("job", job)
    assert not Task.objects.filter(pk=task.pk).exists()
    assert [str(m) for m in get_messages(r.wsgi_request)] == [f"Task {task.task_id} deleted."]


def test_htmx_post_deletes_and_sends_the_browser_to_the_job(op, job):
    task = TaskFactory(job=job)
    r = op.post(task_url("task-delete", task), {"confirm": "yes"}, headers=HTMX)
    assert r.status_code == 200 and r["HX-Redirect"] == job_url("job", job)
    assert AuditRecord.objects.get().outcome == {"succeeded": 1}


def test_refuses_a_task_of_a_job_being_deleted_in_both_paths(db):
    job = JobFactory(deleting=True)
    task = TaskFactory(job=job)
    client = signed_in(MembershipFactory(account=job.account).user)
    plain = client.post(task_url("task-delete", task), {"confirm": "yes"})
    assert [str(m) for m in get_messages(plain.wsgi_request)][0].startswith("JobBeingDeleted")
    htmx = client.post(task_url("task-delete", task), {"confirm": "yes"}, headers=HTMX)
    assert "marked for deletion" in htmx.content.decode()
    assert Task.objects.filter(pk=task.pk).exists()
