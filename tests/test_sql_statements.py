"""The hot path's hand-written statements (tasks/sql.py) write and read what the ORM would,
on both databases: the set-based UPDATE of update_rows() on PostgreSQL, the padded IN
lists of pks_where(), the constants written into statements, and the hot path's
statements prepared afresh as the tables grow."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tasks import sql
from tasks.models import Task
from tests.factories import JobFactory, TaskFactory

pytestmark = pytest.mark.django_db


def test_update_rows_writes_each_rows_own_values_nulls_and_json_included():
    job = JobFactory()
    a, b, c = (TaskFactory(job=job, task_id=f"t{i}") for i in range(3))
    t = timezone.now().replace(microsecond=123456)
    long_name = "n" * Task._meta.get_field("node_name").max_length  # kept whole
    rows = [
        (a.pk, [Task.State.RUNNING, t, long_name, {"reason": "a"}, 7]),
        (b.pk, [Task.State.COMPLETED, None, "", None, None]),
    ]
    fields = ["state", "start_time", "node_name", "failure_info", "exit_code"]

    assert sql.update_rows(Task, fields, rows) == 2

    a.refresh_from_db()
    b.refresh_from_db()
    c.refresh_from_db()
    assert (a.state, a.start_time, a.node_name, a.failure_info, a.exit_code) == (
        Task.State.RUNNING,
        t,
        long_name,
        {"reason": "a"},
        7,
    )
    assert (b.state, b.start_time, b.node_name, b.failure_info, b.exit_code) == (
        Task.State.COMPLETED,
        None,
        "",
        None,
        None,
    )
    assert c.state == Task.State.ACTIVE  # not named: untouched


def test_update_rows_only_if_leaves_rows_whose_column_moved_on_and_counts_the_rest():
    job = JobFactory()
    active = TaskFactory(job=job, task_id="a")
    moved = TaskFactory(job=job, task_id="b", state=Task.State.RUNNING)
    later = timezone.now() + timedelta(seconds=5)

    updated = sql.update_rows(
        Task,
        ["state", "start_time"],
        [(active.pk, [Task.State.RUNNING, later]), (moved.pk, [Task.State.PREPARING, later])],
        only_if=("state", Task.State.ACTIVE),
    )

    assert updated == 1
    moved.refresh_from_db()
    assert moved.state == Task.State.RUNNING and moved.start_time != later
    active.refresh_from_db()
    assert (active.state, active.start_time) == (Task.State.RUNNING, later)


def test_update_rows_refuses_a_value_too_long_for_its_column_rather_than_cutting_it():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite does not enforce a varchar's length")
    from django.db import DataError, transaction

    task = TaskFactory()
    too_long = "n" * (Task._meta.get_field("node_name").max_length + 1)
    with pytest.raises(DataError), transaction.atomic():
        sql.update_rows(Task, ["node_name"], [(task.pk, [too_long])])
    task.refresh_from_db()
    assert task.node_name == ""


@pytest.mark.parametrize("count", [1, 3, 5, 64, 65])
def test_pks_where_finds_exactly_the_rows_named_whatever_their_number(count):
    job = JobFactory()
    tasks = [TaskFactory(job=job, task_id=f"t{i}") for i in range(count + 2)]
    wanted = [t.pk for t in tasks[:count]]

    where, params = sql.pks_where(wanted)
    found = sql.select_models(Task, ["task_id"], where, params, order="{id}")

    assert [t.pk for t in found] == wanted


def test_pks_where_on_postgresql_is_a_short_list_of_a_few_lengths():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite is always an IN list of the pks")
    lengths = {len(sql.pks_where(range(n))[1]) for n in range(1, sql.IN_LIST_MAX + 1)}
    assert lengths == {1, 2, 4, 8, 16, 32, 64}
    where, params = sql.pks_where(range(sql.IN_LIST_MAX + 1))
    assert "ANY" in where and len(params) == 1


@pytest.mark.parametrize("value", ["it's", "a b", "x;--", 3, None, "é"])
def test_literal_refuses_anything_but_a_name_or_a_flag(value):
    with pytest.raises(ValueError):
        sql.literal(value)


def test_literal_writes_names_and_flags():
    assert sql.literal("running") == "'running'"
    assert sql.literal("terminate_requested") == "'terminate_requested'"
    assert (sql.literal(True), sql.literal(False)) == ("TRUE", "FALSE")


def _prepared_texts() -> list[str]:
    [rows, _] = sql.run("SELECT statement FROM pg_prepared_statements", [])
    return [statement for (statement,) in rows]


def test_the_hot_paths_statements_are_prepared_afresh_when_their_plans_are_due(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no prepared plans to renew")
    statement = "SELECT COUNT(*) FROM tasks_task WHERE job_id = %s"
    job = JobFactory()
    sql.run("SELECT 1", [])  # the hot path's cursor exists
    connection._batchsite_replan.due = float("inf")  # no renewal of its own in between
    for _ in range(sql.PREPARE_AFTER + 1):
        sql.run(statement, [job.pk])
    first = [s for s in _prepared_texts() if "tasks_task WHERE job_id" in s]
    assert len(first) == 1, first

    connection._batchsite_replan.due = 0.0  # its plans are due
    for _ in range(sql.PREPARE_AFTER + 1):
        [[(count,)], _] = sql.run(statement, [job.pk])
    assert count == 0

    again = [s for s in _prepared_texts() if "tasks_task WHERE job_id" in s]
    assert len(again) == 2 and set(first) < set(again), again


def test_update_rows_together_writes_every_part_and_counts_each():
    from tasks.models import Attempt
    from tests.factories import AttemptFactory

    job = JobFactory()
    a, b, c = (TaskFactory(job=job, task_id=f"t{i}") for i in range(3))
    attempt = AttemptFactory(task=a, outcome=Attempt.Outcome.RUNNING, end_time=None)
    t = timezone.now()

    counts = sql.update_rows_together(
        [
            (Attempt, ["outcome", "end_time"], [(attempt.pk, [Attempt.Outcome.SUCCEEDED, t])]),
            (Task, ["state", "retry_count"], [(a.pk, [Task.State.ACTIVE, 1])]),
            (Task, ["state"], []),
            (
                Task,
                ["state"],
                [(b.pk, [Task.State.COMPLETED]), (c.pk + 1000, [Task.State.COMPLETED])],
            ),
        ]
    )

    assert counts == [1, 1, 0, 1]  # the missing pk updates nothing
    attempt.refresh_from_db()
    assert (attempt.outcome, attempt.end_time) == (Attempt.Outcome.SUCCEEDED, t)
    a.refresh_from_db()
    b.refresh_from_db()
    c.refresh_from_db()
    assert (a.retry_count, b.state, c.state) == (1, Task.State.COMPLETED, Task.State.ACTIVE)


def test_binary_placeholders_become_text_ones_for_djangos_cursor_percent_signs_kept():
    assert sql._text_placeholders("a = %b AND b = %s AND c LIKE 'x%%' AND d = '%%b'") == (
        "a = %s AND b = %s AND c LIKE 'x%%' AND d = '%%b'"
    )


@pytest.mark.parametrize("observed", [False, True])
def test_a_collection_is_stored_the_same_whether_its_statements_are_observed_or_not(observed):
    """The INSERT binds its arrays in binary on the driver's cursor, in text on Django's
    (which a CaptureQueriesContext, DEBUG logging or an execute wrapper puts it through)."""
    from django.test.utils import CaptureQueriesContext

    from tasks.operations.tasks import add_task_collection

    job = JobFactory()
    specs = [
        {"id": "a", "commandLine": "/bin/true", "constraints": {"maxTaskRetryCount": 2}},
        {"id": "b", "commandLine": "echo 'it''s' \"%s\" %b", "displayName": "ü"},
    ]
    watch = CaptureQueriesContext(connection) if observed else contextlib.nullcontext()
    with watch:
        add_task_collection(job, specs=specs, ids=["a", "b"])
    if observed:
        assert any("INSERT" in q["sql"] for q in watch.captured_queries)
    stored = {
        t.task_id: (t.command_line, t.display_name, t.max_task_retry_count, t.state)
        for t in Task.objects.filter(job=job)
    }
    assert stored == {
        "a": ("/bin/true", "", 2, Task.State.ACTIVE),
        "b": ("echo 'it''s' \"%s\" %b", "ü", 0, Task.State.ACTIVE),
    }
    job.refresh_from_db()
    assert job.active_count == 2


def test_the_claims_task_page_is_planned_once_not_on_every_call():
    """Its limit is written into the statement on PostgreSQL: bound, PostgreSQL costed the
    generic plan for an unknown limit and planned the page afresh on most calls."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no plan cache")
    from tasks.operations.attempt_store import candidate_tasks
    from tasks.operations.tasks import add_task_collection

    job = JobFactory()
    # A job of some size, its statistics known, as the claim meets it.
    for start in range(0, 3000, 100):
        specs = [{"id": f"t{i}", "commandLine": "/bin/true"} for i in range(start, start + 100)]
        add_task_collection(job, specs=specs, ids=[spec["id"] for spec in specs])
    sql.run("ANALYZE tasks_task", [])
    sql.run("SELECT 1", [])  # the hot path's cursor exists
    connection._batchsite_replan.due = float("inf")  # no renewal of its own in between
    for _ in range(20):
        page = candidate_tasks(job, None, 2)
    first = Task.objects.filter(job=job).order_by("creation_time", "pk")[:2]
    assert [t.pk for t in page] == [t.pk for t in first]
    [rows, _] = sql.run(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
        ['%FROM "tasks_task" WHERE "job_id"%LIMIT%'],
    )
    assert len(rows) == 1, rows
    generic, custom = rows[0]
    # PostgreSQL makes custom plans for a statement's first five runs, then keeps the
    # generic one where it is costed no worse.
    assert custom <= 5 and generic >= 10, rows
