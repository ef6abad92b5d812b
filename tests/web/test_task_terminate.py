"""Terminate from the dashboard: confirmed first, through terminate_task, audited."""

import pytest
from django.contrib.messages import get_messages

from tasks.models import Attempt, AuditRecord, Task
from tests.factories import AttemptFactory, TaskFactory
from tests.web.conftest import HTMX, task_url

pytestmark = pytest.mark.django_db


def test_asks_for_confirmation_before_terminating(op, job):
    task = TaskFactory(job=job, running=True)
    for response in (
        op.get(task_url("task-terminate", task)),
        op.post(task_url("task-terminate", task)),
    ):
        assert response.status_code == 200 and "Yes, terminate" in response.content.decode()
    task.refresh_from_db()
    assert task.state == Task.State.RUNNING


def test_htmx_confirmation_is_a_fragment_for_the_dialog(op, job):
    task = TaskFactory(job=job, running=True)
    body = op.get(task_url("task-terminate", task), headers=HTMX).content.decode()
    assert body.lstrip().startswith('<div class="card confirm-box"') and "<html" not in body


def test_plain_post_terminates_and_redirects_with_a_message(op, job):
    task = TaskFactory(job=job, running=True)
    attempt = AttemptFactory(task=task, outcome="running", end_time=None)
    r = op.post(task_url("task-terminate", task), {"confirm": "yes"})
    assert r.status_code == 302 and r["Location"] == task_url("task", task)
    task.refresh_from_db()
    attempt.refresh_from_db()
    assert task.state == Task.State.COMPLETED and task.failure_info["code"] == "TaskEnded"
    assert attempt.cancel_requested == "terminate" and attempt.outcome == Attempt.Outcome.RUNNING
    assert [str(m) for m in get_messages(r.wsgi_request)] == [
        f"Task {task.task_id}: terminate done."
    ]


def test_htmx_post_answers_the_updated_task_and_closes_the_dialog(op, job):
    task = TaskFactory(job=job, running=True)
    r = op.post(task_url("task-terminate", task), {"confirm": "yes"}, headers=HTMX)
    body = r.content.decode()
    assert r.status_code == 200 and 'id="task-state">completed<' in body
    assert 'id="task-dialog" hx-swap-oob="true"' in body and "terminate done" in body


def test_refusal_of_a_completed_task_is_shown_in_both_paths(op, job):
    task = TaskFactory(job=job, succeeded=True)
    plain = op.post(task_url("task-terminate", task), {"confirm": "yes"})
    assert [str(m) for m in get_messages(plain.wsgi_request)] == [
        "TaskCompleted: The specified task is already in a completed state."
    ]
    htmx = op.post(task_url("task-terminate", task), {"confirm": "yes"}, headers=HTMX)
    assert htmx.status_code == 200
    assert (
        'class="msg error" role="status" id="task-flash">The specified task is already'
        in htmx.content.decode()
    )


def test_leaves_an_audit_record_of_success_and_of_refusal(op, operator, job):
    running, done = TaskFactory(job=job, running=True), TaskFactory(job=job, succeeded=True)
    op.post(task_url("task-terminate", running), {"confirm": "yes"})
    op.post(task_url("task-terminate", done), {"confirm": "yes"})
    records = list(AuditRecord.objects.order_by("pk"))
    assert [
        (
            r.user,
            r.actor,
            r.action,
            r.scope["tasks"],
            r.outcome.get("succeeded"),
            r.outcome.get("refused"),
        )
        for r in records
    ] == [
        (operator, operator.username, "terminate", [running.task_id], 1, None),
        (operator, operator.username, "terminate", [done.task_id], None, "TaskCompleted"),
    ]
