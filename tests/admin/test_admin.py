"""The admin: list filters and search work, state fields are read-only, and its actions go
through the rules layer and report refusals as messages."""

import pytest
from django.urls import reverse

from tasks.models import AuditRecord, Job, Task
from tests.admin.helpers import act, texts
from tests.factories import (
    AttemptFactory,
    ComputeNodeFactory,
    JobFactory,
    SubTaskFactory,
    TaskFactory,
)

pytestmark = pytest.mark.django_db


def test_terminate_action_uses_the_rule_and_reports_each_refusal(admin_client_):
    running, done = TaskFactory(running=True), TaskFactory(succeeded=True, task_id="already-done")
    r = act(admin_client_, "terminate_tasks", [running, done])
    running.refresh_from_db()
    assert running.state == Task.State.COMPLETED and running.failure_info["code"] == "TaskEnded"
    assert texts(r) == [
        "Terminate: 1 done.",
        "Terminate refused for 1 (already-done) — TaskCompleted: The specified task is already in a completed state.",
    ]


def test_reactivate_action_refuses_a_succeeded_task_with_a_message(admin_client_):
    failed, ok = TaskFactory(failed=True), TaskFactory(succeeded=True, task_id="fine")
    r = act(admin_client_, "reactivate_tasks", [failed, ok])
    failed.refresh_from_db()
    ok.refresh_from_db()
    assert failed.state == Task.State.ACTIVE and ok.state == Task.State.COMPLETED
    assert "Reactivate refused for 1 (fine) — TaskSucceeded" in texts(r)[1]


def test_delete_action_deletes_through_the_rules_and_keeps_counters_true(admin_client_):
    task = TaskFactory(failed=True)
    job = task.job
    r = act(admin_client_, "delete_tasks", [task])
    job.refresh_from_db()
    assert not Task.objects.filter(pk=task.pk).exists() and job.failed_count == 0
    assert texts(r) == ["Delete: 1 done."]


def test_delete_action_refuses_tasks_of_a_job_being_deleted(admin_client_):
    task = TaskFactory(job=JobFactory(deleting=True), task_id="stuck")
    r = act(admin_client_, "delete_tasks", [task])
    assert Task.objects.filter(pk=task.pk).exists()
    assert texts(r) == [
        "Delete refused for 1 (stuck) — JobBeingDeleted: The specified job has been marked for "
        "deletion and is being garbage collected."
    ]


def test_admin_actions_leave_audit_records(admin_client_):
    task = TaskFactory(running=True)
    act(admin_client_, "terminate_tasks", [task])
    record = AuditRecord.objects.get()
    assert (
        record.actor == "admin:root"
        and record.action == "terminate"
        and record.outcome == {"succeeded": 1}
    )


def test_job_actions_go_through_the_job_rules(admin_client_):
    active, done = JobFactory(), JobFactory(completed=True, job_id="old-job")
    r = act(admin_client_, "terminate_jobs", [active, done], model="job")
    active.refresh_from_db()
    assert active.state == Job.State.COMPLETED
    assert "Terminate refused for 1 (old-job) — JobCompleted" in texts(r)[1]


def test_generic_delete_and_add_are_off_where_they_would_skip_the_rules(admin_client_):
    task = TaskFactory()
    r = admin_client_.get(reverse("admin:tasks_task_add"), follow=True)
    assert r.redirect_chain[-1][0] == reverse("admin:tasks_task_changelist")
    assert texts(r) == ["Tasks are added through the Batch API or the dashboard, not the admin."]
    r = admin_client_.post(
        reverse("admin:tasks_task_delete", args=[task.pk]), {"post": "yes"}, follow=True
    )
    assert (
        Task.objects.filter(pk=task.pk).exists()
        and "Delete selected tasks (rules layer)" in texts(r)[0]
    )
    body = admin_client_.get(reverse("admin:tasks_task_changelist")).content.decode()
    assert 'value="delete_selected"' not in body and 'value="terminate_tasks"' in body


def test_state_fields_are_read_only_on_the_change_form(admin_client_):
    task = TaskFactory(failed=True)
    body = admin_client_.get(reverse("admin:tasks_task_change", args=[task.pk])).content.decode()
    assert (
        'name="state"' not in body
        and 'name="exit_code"' not in body
        and 'name="max_task_retry_count"' in body
    )
    job_body = admin_client_.get(
        reverse("admin:tasks_job_change", args=[task.job.pk])
    ).content.decode()
    assert 'name="failed_count"' not in job_body and 'name="state"' not in job_body


@pytest.mark.parametrize(
    "model, query",
    [
        ("task", "?state__exact=completed&result__exact=failure"),
        ("task", "?q=task"),
        ("job", "?state__exact=active&q=job"),
        ("pool", "?q=pool"),
        ("computenode", "?state__exact=idle&q=node"),
        ("subtask", "?state__exact=running"),
        ("auditrecord", "?action=terminate"),
        ("account", "?q=acct"),
        ("bulkoperation", "?state__exact=pending"),
    ],
)
def test_every_list_filters_and_searches(admin_client_, model, query):
    task = TaskFactory(failed=True)
    SubTaskFactory(task=TaskFactory(job=task.job, multi_instance=True))
    ComputeNodeFactory()
    AttemptFactory(task=task)
    r = admin_client_.get(reverse(f"admin:tasks_{model}_changelist") + query)
    assert r.status_code == 200


def test_audit_records_are_read_only(admin_client_):
    TaskFactory(running=True)
    act(admin_client_, "terminate_tasks", list(Task.objects.all()))
    record = AuditRecord.objects.get()
    assert admin_client_.get(reverse("admin:tasks_auditrecord_add")).status_code == 403
    assert (
        admin_client_.post(
            reverse("admin:tasks_auditrecord_delete", args=[record.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
