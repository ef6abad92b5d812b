"""A bulk action's runner survives database errors: it reconnects and resumes the run.

The error is injected where the database would raise it (a query wrapper failing one
statement, as a restarted server fails the next statement of every open connection)."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

from tasks.models import BulkOperation, Task
from tasks.operations.bulk import (
    run_bulk_operation,
    run_bulk_operation_resumed,
    run_pending_bulk_operations,
    selection_scope,
    start_bulk_operation,
)
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


class FailOnce:
    """Fail the `at`-th statement from now on, once, as a dropped connection does."""

    def __init__(self, at: int) -> None:
        self.at, self.seen = at, 0

    def __call__(self, execute, sql, params, many, context):
        self.seen += 1
        if self.seen == self.at:
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)


@pytest.fixture
def bulk(job):
    ids = [TaskFactory(job=job, task_id=f"t{i}").task_id for i in range(5)]
    return start_bulk_operation(
        job, action="terminate", scope=selection_scope(ids), user=None, actor="test", total=len(ids)
    )


@pytest.mark.parametrize("at", [1, 2, 4, 9, 15])
def test_a_run_cut_by_a_database_error_reconnects_and_finishes(bulk, at):
    with connection.execute_wrapper(fail := FailOnce(at)):
        result = run_bulk_operation_resumed(bulk.pk, first_retry=0.01)
    assert fail.seen > at  # it went on after the error
    assert result is not None and result.state == BulkOperation.State.DONE
    assert set(Task.objects.filter(job=bulk.job).values_list("state", flat=True)) == {
        Task.State.COMPLETED
    }


def test_the_sweep_resumes_its_own_run_after_a_database_error_at_once(bulk):
    with connection.execute_wrapper(FailOnce(6)):
        assert run_pending_bulk_operations() == 1
    assert BulkOperation.objects.get(pk=bulk.pk).state == BulkOperation.State.DONE


def test_a_run_another_runner_has_is_left_alone(bulk):
    run_bulk_operation(bulk.pk)
    # Running again, with a fresh beat: another runner has it.
    BulkOperation.objects.filter(pk=bulk.pk).update(state=BulkOperation.State.RUNNING, done=0)
    assert run_bulk_operation_resumed(bulk.pk, first_retry=0.01) is None
    assert BulkOperation.objects.get(pk=bulk.pk).done == 0
