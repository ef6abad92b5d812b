"""Stopping a bulk action in progress: it acts on no further task, keeps what it did, is
audited, and cannot be stopped twice."""

import pytest
from django.urls import reverse

from tasks.errors import BatchError
from tasks.models import AuditRecord, BulkOperation, Task
from tasks.operations.bulk import (
    STOPPABLE,
    can_stop_bulk_operation,
    run_bulk_operation,
    start_bulk_operation,
    stop_bulk_operation,
)
from tests.factories import BulkOperationFactory, TaskFactory
from tests.web.conftest import HTMX

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(job, operator):
    for i in range(3):
        TaskFactory(job=job, task_id=f"f{i}", failed=True)
    return start_bulk_operation(
        job,
        action="reactivate",
        scope={"tasks": ["f0", "f1", "f2"]},
        user=operator,
        actor=operator.username,
        total=3,
    )


def test_a_stopped_run_acts_on_no_task(run):
    stop_bulk_operation(run)
    assert run_bulk_operation(run.pk) is None  # the worker finds it stopped
    op = BulkOperation.objects.get(pk=run.pk)
    assert (op.state, op.done) == ("stopped", 0) and op.finished is not None
    assert set(Task.objects.values_list("state", flat=True)) == {"completed"}
    assert AuditRecord.objects.get(pk=op.audit_id).outcome["state"] == "stopped"


@pytest.mark.parametrize("state", [s.value for s in BulkOperation.State])
def test_can_stop_agrees_with_stop_in_every_state(job, state):
    op = BulkOperationFactory(job=job, state=state)
    refusal = can_stop_bulk_operation(op)
    assert (refusal is None) == (state in STOPPABLE)
    if refusal is None:
        assert stop_bulk_operation(op).state == "stopped"
    else:
        with pytest.raises(BatchError) as e:
            stop_bulk_operation(op)
        assert (e.value.code, e.value.status) == ("BulkOperationEnded", 409)


def test_the_page_stops_it_and_the_audit_says_who(op, run, operator):
    page = op.get(reverse("web:bulk", args=[run.pk])).content.decode()
    assert 'id="bulk-stop"' in page
    r = op.post(reverse("web:bulk-stop", args=[run.pk]), headers=HTMX)
    body = r.content.decode()
    assert (
        r.status_code == 200
        and "Stopped: no further task is acted on." in body
        and 'id="bulk-stop"' not in body
    )
    record = AuditRecord.objects.get(action="bulk-stop")
    assert (record.actor, record.outcome, record.scope["bulk"]) == (
        operator.username,
        {"succeeded": 1},
        run.pk,
    )


def test_stopping_an_ended_run_is_refused_and_audited(op, run):
    run_bulk_operation(run.pk)
    r = op.post(reverse("web:bulk-stop", args=[run.pk]))
    assert r.status_code == 302
    assert AuditRecord.objects.get(action="bulk-stop").outcome["refused"] == "BulkOperationEnded"


def test_a_viewer_cannot_stop_a_run(view, run):
    assert view.post(reverse("web:bulk-stop", args=[run.pk])).status_code == 403
    assert BulkOperation.objects.get(pk=run.pk).state == "pending"
