"""Add a task from the dashboard, including multi-instance settings: checked by the API's
wire serializer, then by add_task."""

import pytest

from tasks.models import AuditRecord, Task
from tests.factories import JobFactory, MembershipFactory, TaskFactory
from tests.web.conftest import HTMX, job_url, signed_in

pytestmark = pytest.mark.django_db

FORM = {
    "task_id": "Mi-1",
    "command_line": "/bin/echo hi",
    "environment": "A=1\nB=two words",
    "number_of_instances": "3",
    "coordination_command_line": "/bin/true",
    "max_task_retry_count": "2",
}


def test_plain_post_adds_a_multi_instance_task_and_opens_it(op, job):
    r = op.post(job_url("task-add", job), FORM)
    task = Task.objects.get(job=job)
    assert r.status_code == 302 and r["Location"].endswith(f"/tasks/{task.task_id}/")
    assert task.number_of_instances == 3 and task.max_task_retry_count == 2
    assert task.spec["multiInstanceSettings"] == {
        "numberOfInstances": 3,
        "coordinationCommandLine": "/bin/true",
    }
    assert task.spec["environmentSettings"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "two words"},
    ]
    assert AuditRecord.objects.get().action == "add"


def test_htmx_post_adds_and_redirects_the_browser(op, job):
    r = op.post(job_url("task-add", job), FORM, headers=HTMX)
    assert r.status_code == 200 and r["HX-Redirect"].endswith("/tasks/Mi-1/")


def test_a_bad_id_is_refused_by_the_wire_rules_beside_its_field(op, job):
    r = op.post(job_url("task-add", job), {**FORM, "task_id": "bad id!"}, headers=HTMX)
    body = r.content.decode()
    assert r.status_code == 200 and body.lstrip().startswith('<div class="card" id="add-form"')
    assert "InvalidPropertyValue" in body and not Task.objects.exists()


def test_a_duplicate_id_is_refused_in_both_paths(op, job):
    TaskFactory(job=job, task_id="mi-1")
    for headers in ({}, HTMX):
        r = op.post(job_url("task-add", job), FORM, headers=headers)
        assert r.status_code == 200 and "TaskExists" in r.content.decode()
    assert Task.objects.filter(job=job).count() == 1


def test_a_completed_job_refuses_and_the_form_says_why(db):
    job = JobFactory(completed=True)
    client = signed_in(MembershipFactory(account=job.account).user)
    body = client.get(job_url("task-add", job)).content.decode()
    assert "already in a completed state" in body and "disabled" in body
    r = client.post(job_url("task-add", job), FORM)
    assert "JobCompleted" in r.content.decode() and not Task.objects.exists()


def test_bad_environment_lines_are_pointed_out(op, job):
    r = op.post(job_url("task-add", job), {**FORM, "environment": "JUSTANAME"})
    assert "Line 1 is not NAME=value." in r.content.decode()
