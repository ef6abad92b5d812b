"""The claim reads a job's active tasks in claim order (creation time, then pk) as a walk
of the index task_job_state_created, stopped at its page, however many tasks share a
creation time: on PostgreSQL that index ends in the pk (tasks.models.PkLastIndex). With
(job, state, creation_time) alone PostgreSQL sorted every task of one creation time for a
page: 3 s at 667k active tasks of a bulk add (benchmarks/bench_list_tasks.py, claim page).
SQLite's index holds the rowid already: its index and plans are as they were."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tasks.operations.attempt_store import candidate_tasks
from tests.execution import add, make_job, make_pool

pytestmark = pytest.mark.django_db


def index_columns(name: str) -> list[str]:
    with connection.cursor() as cursor:
        return [
            c["columns"]
            for n, c in connection.introspection.get_constraints(cursor, "tasks_task").items()
            if n == name
        ][0]


def claim_plan(job, after) -> str:
    with CaptureQueriesContext(connection) as seen:
        candidate_tasks(job, after, 4)
    with connection.cursor() as cursor:
        # A table this small is a scan (or a sort of its few rows) either way: ask for the
        # plan an index can give.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + seen.captured_queries[-1]["sql"])
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def job(account):
    job = make_job(account, make_pool(account))
    for i in range(3):
        add(job, f"t{i}")
    return job


def test_the_claims_first_page_is_an_index_walk_without_a_sort(job):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's index ends in the rowid: (job, state, creation_time) is enough")
    with transaction.atomic():
        plan = claim_plan(job, None)
    assert "task_job_state_created" in plan and "Sort" not in plan, plan


def test_the_index_ends_in_the_pk_on_postgresql_only(job):
    columns = index_columns("task_job_state_created")
    base = ["job_id", "state", "creation_time"]
    assert columns == (base + ["id"] if connection.vendor == "postgresql" else base)


def test_a_later_claim_page_starts_at_its_row_in_the_index(job):
    """A later page of a pass (or a pass resumed where the last stopped: claim_scan) is a
    range condition of the index, not a filter of every row before it (330 ms at the
    middle of 667k active tasks sharing one creation time, 4 ms as a row comparison)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite reads the OR form as a range of its index (rowid last)")
    with transaction.atomic():
        first = candidate_tasks(job, None, 1)[0]
        plan = claim_plan(job, (first.creation_time, first.pk))
    cond = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert "ROW(creation_time, id) >" in cond and "Sort" not in plan, plan
