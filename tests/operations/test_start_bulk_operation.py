"""Starting a bulk action: the rules layer refuses a scope it could not act on exactly."""

import pytest

from tasks.errors import BatchError
from tasks.models import AuditRecord, BulkOperation
from tasks.operations import bulk
from tasks.operations.bulk import MAX_SELECTION, can_start_bulk_operation, start_bulk_operation
from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db


def start(job, scope, action="terminate"):
    return start_bulk_operation(
        job, action=action, scope=scope, user=UserFactory(), actor="t", total=1
    )


@pytest.mark.parametrize(
    "scope, property_name",
    [
        ({"filter": {"since": "99999-01-01"}, "max_pk": 9}, "filter.since"),
        ({"filter": {"since": "0001-01-01T00:00:00+14:00"}, "max_pk": 9}, "filter.since"),
        ({"filter": {"state": "exploded"}, "max_pk": 9}, "filter.state"),
        ({"tasks": [f"t{i}" for i in range(MAX_SELECTION + 1)]}, "tasks"),
        (
            {"tasks": ["ok", "a\x00b"]},
            "tasks",
        ),  # PostgreSQL refuses a NUL in any string: was a 500 there
    ],
)
def test_refuses_a_scope_it_could_not_act_on_exactly(scope, property_name):
    with pytest.raises(BatchError) as refused:
        start(JobFactory(), scope)
    assert (
        refused.value.code == "InvalidPropertyValue"
        and dict(refused.value.values)["PropertyName"] == property_name
    )
    assert not BulkOperation.objects.exists() and not AuditRecord.objects.exists()


def test_refuses_an_unknown_action():
    with pytest.raises(BatchError) as refused:
        start(JobFactory(), {"tasks": ["a"]}, action="explode")
    assert dict(refused.value.values)["PropertyName"] == "action"


@pytest.mark.parametrize(
    "action, scope",
    [
        ("explode", {"tasks": ["a"]}),
        ("delete", {"tasks": ["a"] * (MAX_SELECTION + 1)}),
        ("delete", {"filter": {"exit_code": "x"}, "max_pk": 1}),
        ("delete", {"filter": {}, "max_pk": 1}),
        ("reactivate", {"tasks": ["a", "b"]}),
        ("terminate", {"filter": {"state": "running"}, "max_pk": 1}),
    ],
)
def test_the_may_i_form_agrees_with_the_operation(monkeypatch, action, scope):
    monkeypatch.setattr(bulk, "start_worker", lambda pk: None)
    expected = can_start_bulk_operation(action=action, scope=scope)
    try:
        start(JobFactory(), scope, action=action)
        raised = None
    except BatchError as error:
        raised = error
    assert raised == expected


def test_records_a_valid_scope_pending_with_its_audit(monkeypatch):
    monkeypatch.setattr(bulk, "start_worker", lambda pk: None)
    op = start(JobFactory(), {"filter": {"state": "active"}, "max_pk": 9})
    assert op.state == "pending" and AuditRecord.objects.get().outcome == {
        "state": "pending",
        "total": 1,
    }
