"""The sweep vacuums the tables the agents churn once they hold enough dead rows
(tasks/operations/vacuum.py), on PostgreSQL; never inside a transaction, nothing on SQLite."""

import time

import pytest
from django.db import connection, transaction

from tasks.models import Task
from tasks.operations.sweeps import run_frequent_sweeps
from tasks.operations.vacuum import vacuum_churned_tables
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite has no VACUUM of dead row versions"
)


def table_stats() -> tuple[int, int]:
    """tasks_task's dead rows and vacuum count, as the server's statistics have them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_dead_tup, vacuum_count FROM pg_stat_user_tables "
            "WHERE relname = 'tasks_task' AND schemaname = current_schema()"
        )
        return cursor.fetchone()


def wait_for(condition, what: str):
    deadline = time.monotonic() + 15
    while not (value := condition()):
        assert time.monotonic() < deadline, f"no {what} within 15 s"
        time.sleep(0.1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # read the statistics afresh
    return value


def churn(tasks: list[Task], times: int) -> None:
    """Move the tasks' rows as claims and reports do: a new row version (and index entries) each."""
    for i in range(times):
        state = Task.State.RUNNING if i % 2 == 0 else Task.State.ACTIVE
        Task.objects.filter(pk__in=[t.pk for t in tasks]).update(state=state)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")  # this session's counts, now


@postgresql_only
def test_a_table_past_the_dead_rows_threshold_is_vacuumed_by_the_frequent_sweep(settings):
    settings.BATCHSITE_VACUUM_DEAD_ROWS = 50
    tasks = TaskFactory.create_batch(20)
    _, vacuums_before = table_stats()
    churn(tasks, 6)  # 120 dead versions
    wait_for(lambda: table_stats()[0] >= 50, "dead rows counted")

    counts = run_frequent_sweeps()

    assert counts["vacuumed_tables"] >= 1
    wait_for(lambda: table_stats()[1] > vacuums_before, "vacuum counted")
    assert table_stats()[0] < 50


@postgresql_only
def test_below_the_threshold_or_inside_a_transaction_nothing_is_vacuumed(settings):
    settings.BATCHSITE_VACUUM_DEAD_ROWS = 1_000_000
    churn(TaskFactory.create_batch(5), 4)
    assert vacuum_churned_tables() == 0
    settings.BATCHSITE_VACUUM_DEAD_ROWS = 1
    wait_for(lambda: table_stats()[0] >= 1, "dead rows counted")
    with transaction.atomic():
        assert vacuum_churned_tables() == 0  # VACUUM cannot run in a transaction block


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the SQLite backend only")
def test_on_sqlite_the_sweep_vacuums_nothing(settings):
    settings.BATCHSITE_VACUUM_DEAD_ROWS = 1
    churn(TaskFactory.create_batch(3), 1)
    assert run_frequent_sweeps()["vacuumed_tables"] == 0
