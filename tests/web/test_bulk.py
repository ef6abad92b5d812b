"""Bulk actions: a preview with the exact count, then a background run with progress and
a per-task outcome; on a selection or on everything matching a filter."""

import pytest
from django.urls import reverse

from tasks.models import AuditRecord, BulkOperation, Task
from tasks.operations.bulk import run_bulk_operation, run_pending_bulk_operations
from tests.factories import BulkOperationFactory, TaskFactory
from tests.web.conftest import HTMX, job_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def failures(job):
    for i in range(5):
        TaskFactory(job=job, task_id=f"f137-{i}", failed=True, exit_code=137)
    TaskFactory(job=job, task_id="f1", failed=True, exit_code=1)
    TaskFactory(job=job, task_id="ok", succeeded=True)
    return job


def test_preview_of_a_filter_shows_the_exact_count(op, failures):
    body = op.get(
        job_url("job-bulk", failures, action="reactivate", result="failure", exit_code="137")
    ).content.decode()
    assert 'id="bulk-count">5<' in body and "f137-0" in body and "Yes, reactivate 5 tasks" in body
    assert not BulkOperation.objects.exists()


def test_cancel_on_a_filter_preview_goes_back_to_the_job_with_the_filter(op, failures):
    body = op.get(
        job_url("job-bulk", failures, action="reactivate", result="failure", exit_code="137")
    ).content.decode()
    assert (
        f'href="{job_url("job", failures)}?result=failure&amp;exit_code=137" id="bulk-cancel"'
        in body
    )


def test_preview_of_a_selection_counts_the_tasks_that_exist(op, failures):
    url = job_url("job-bulk", failures, action="terminate", task=["f1", "ok", "gone"])
    assert 'id="bulk-count">2<' in op.get(url).content.decode()


def test_preview_refuses_an_empty_scope_and_an_unknown_action(op, failures):
    assert (
        "No task matches"
        in op.get(job_url("job-bulk", failures, action="delete", node="nowhere")).content.decode()
    )
    assert (
        "Choose terminate"
        in op.get(job_url("job-bulk", failures, action="explode")).content.decode()
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"since": "99999-01-01"},  # not a date: was read as no date at all, so "all tasks"
        {"since": "0001-01-01T00:00:00+14:00"},  # before year 1 in UTC: was a 500
        {"until": "9999-12-31T23:59:59-14:00"},  # after year 9999 in UTC
        {"exit_code": "1..x"},
        {"state": "runing"},
        {"q": "x" * 500},
    ],
)
def test_preview_of_a_filter_with_an_error_refuses_and_shows_the_error(op, failures, bad):
    r = op.get(job_url("job-bulk", failures, action="delete", **bad))
    body = r.content.decode()
    assert (
        r.status_code == 200
        and "The filter has an error, so nothing is counted or acted on." in body
    )
    assert (
        'id="bulk-filter-errors"' in body
        and 'id="bulk-count"' not in body
        and "all tasks" not in body
    )
    assert 'name="action"' not in body  # no confirm form


@pytest.mark.parametrize(
    "bad",
    [{"since": "99999-01-01"}, {"since": "0001-01-01T00:00:00+14:00"}, {"failure_code": "a\x00b"}],
)
def test_confirming_a_filter_with_an_error_acts_on_nothing(op, failures, bad):
    r = op.post(job_url("job-bulk", failures), {"action": "delete", **bad})
    assert r.status_code == 200 and "The filter has an error" in r.content.decode()
    assert not BulkOperation.objects.exists() and not AuditRecord.objects.exists()
    run_pending_bulk_operations()
    assert Task.objects.filter(job=failures).count() == 7


def test_a_selection_with_an_id_no_database_compares_is_refused(op, failures):
    body = op.get(
        job_url("job-bulk", failures, action="delete", task=["f1", "a\x00"])
    ).content.decode()
    assert "A task id has no NUL character." in body and 'id="bulk-count"' not in body


def test_the_way_back_from_a_refused_preview_keeps_the_filter_to_correct(op, failures):
    body = op.get(
        job_url("job-bulk", failures, action="delete", since="99999-01-01", node="n1")
    ).content.decode()
    assert "?node=n1&amp;since=99999-01-01" in body and "Correct the filter" in body


def test_a_run_whose_stored_filter_has_an_error_fails_without_touching_a_task(op, failures):
    bulk = BulkOperationFactory(
        job=failures,
        action="delete",
        scope={"filter": {"since": "99999-01-01"}, "max_pk": 10**9, "cursor": 0},
    )
    ran = run_bulk_operation(bulk.pk)
    assert ran.state == "failed" and ran.done == 0 and "InvalidPropertyValue" in ran.scope["error"]
    assert Task.objects.filter(job=failures).count() == 7
    body = op.get(reverse("web:bulk", args=[bulk.pk])).content.decode()
    assert 'id="bulk-error"' in body and "Refused before acting on any task" in body


def test_confirming_a_filter_records_the_run_and_its_audit(op, operator, failures):
    r = op.post(
        job_url("job-bulk", failures),
        {"action": "reactivate", "result": "failure", "exit_code": "137"},
    )
    op_row = BulkOperation.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse("web:bulk", args=[op_row.pk])
    assert op_row.state == "pending" and op_row.total == 5 and op_row.user == operator
    assert op_row.scope["filter"] == {"result": "failure", "exit_code": "137"}
    audit = AuditRecord.objects.get()
    assert audit.action == "bulk-reactivate" and audit.outcome == {"state": "pending", "total": 5}


def test_htmx_confirmation_sends_the_browser_to_the_progress(op, failures):
    r = op.post(
        job_url("job-bulk", failures), {"action": "reactivate", "task": ["f1"]}, headers=HTMX
    )
    assert r["HX-Redirect"] == reverse("web:bulk", args=[BulkOperation.objects.get().pk])


def test_a_run_acts_on_each_task_and_records_each_outcome(op, failures):
    op.post(job_url("job-bulk", failures), {"action": "reactivate", "task": ["f1", "ok"]})
    bulk = run_bulk_operation(BulkOperation.objects.get().pk)
    assert (bulk.state, bulk.done, bulk.succeeded, bulk.refused) == ("done", 2, 1, 1)
    assert bulk.outcomes == {"f1": "ok", "ok": "TaskSucceeded"}
    assert Task.objects.get(task_id="f1").state == "active"
    audit = AuditRecord.objects.get()
    assert audit.outcome["succeeded"] == 1 and audit.outcome["refused"] == {"TaskSucceeded": 1}


def test_a_filter_run_never_touches_tasks_added_after_confirming(op, failures):
    op.post(job_url("job-bulk", failures), {"action": "delete", "exit_code": "137"})
    TaskFactory(job=failures, task_id="late", failed=True, exit_code=137)
    run_bulk_operation(BulkOperation.objects.get().pk)
    assert list(
        Task.objects.filter(job=failures).values_list("task_id", flat=True).order_by("task_id")
    ) == ["f1", "late", "ok"]


def test_the_sweep_runs_operations_whose_thread_never_started(op, failures):
    op.post(job_url("job-bulk", failures), {"action": "terminate", "state": "completed"})
    assert run_pending_bulk_operations() == 1
    assert BulkOperation.objects.get().refused == 7  # all completed: TaskCompleted each
    assert run_pending_bulk_operations() == 0


def test_progress_polls_while_running_and_stops_when_done(op, failures):
    op.post(job_url("job-bulk", failures), {"action": "reactivate", "task": ["f1"]})
    bulk = BulkOperation.objects.get()
    url = reverse("web:bulk", args=[bulk.pk])
    assert "every 1s" in op.get(url, headers=HTMX).content.decode()
    run_bulk_operation(bulk.pk)
    done = op.get(url, headers=HTMX)
    assert done.status_code == 286 and 'id="bulk-succeeded">1<' in done.content.decode()
    assert "f1" in op.get(url).content.decode()


def test_progress_of_another_accounts_run_is_not_found(stranger, op, failures):
    op.post(job_url("job-bulk", failures), {"action": "reactivate", "task": ["f1"]})
    assert (
        stranger.get(reverse("web:bulk", args=[BulkOperation.objects.get().pk])).status_code == 404
    )


def test_progress_costs_a_fixed_number_of_queries(op, failures, django_assert_num_queries):
    op.post(job_url("job-bulk", failures), {"action": "reactivate", "result": "failure"})
    bulk = BulkOperation.objects.get()
    run_bulk_operation(bulk.pk)
    # session, user, the run (job, account, user joined), membership
    with django_assert_num_queries(4):
        assert op.get(reverse("web:bulk", args=[bulk.pk])).status_code == 200
