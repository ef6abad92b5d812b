"""A page after a cursor, in a list sorted by a key many rows share (the exit code 1 of
83k tasks in the middle of a 1M-task job), starts at the cursor's row in the (job, key,
id) index. On PostgreSQL a row comparison is the index's range condition, where the
`k >= v AND (k > v OR id > p)` form bounded the scan by the key only and read every row
of the key before the cursor's (116 ms vs 8 ms). On SQLite (no row comparison in Django's
backend, and SQLite's own bounds the walk by the key only too) the page is index ranges
walked one after the other, `k = v AND id > p` first (31-56 ms vs 8-14 ms before)."""

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from tasks.queries import pager
from tasks.queries.task_list import TaskFilter
from tests.factories import JobFactory, TaskFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("sort", ["exit_code", "-exit_code", "-retries"])
def test_a_page_after_a_cursor_starts_at_its_row_in_the_index(sort):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's Django backend has no row comparisons: the OR form, as before")
    job = JobFactory()
    tasks = [TaskFactory(job=job, state="completed", exit_code=1) for _ in range(3)]
    f = TaskFilter.from_params(QueryDict(f"sort={sort}"))
    key = f.order.segments[0].keys[0].field
    after = f.order.cursor(0, {key: getattr(tasks[1], key), "pk": tasks[1].pk})
    with CaptureQueriesContext(connection) as seen:
        pager.page(f.queryset(job), f.order, after=after, limit=50)
    with connection.cursor() as cur:
        # A table this small is a scan (or a sort of its few rows) either way: ask for the
        # plan an index can give.
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        cur.execute("SET LOCAL enable_sort = off")
        cur.execute("EXPLAIN " + seen.captured_queries[0]["sql"])
        plan = "\n".join(row[0] for row in cur.fetchall())
    cond = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert "ROW(" in cond and "Sort" not in plan, plan


def sqlite_plan(sql: str) -> str:
    with connection.cursor() as cur:
        cur.execute("EXPLAIN QUERY PLAN " + sql)
        return "\n".join(str(row[-1]) for row in cur.fetchall())


@pytest.mark.parametrize(
    ("sort", "column"),
    [
        ("exit_code", "exit_code"),
        ("-exit_code", "exit_code"),
        ("-retries", "retry_count"),
        ("started", "start_time"),
    ],
)
def test_on_sqlite_a_page_after_a_cursor_is_a_range_that_starts_at_its_row(sort, column):
    """SQLite: the page is walked as index ranges, `key = v AND id > p` first, so a page in
    the middle of 167k tasks of one exit code reads its 51 rows, not every row of the code
    before the cursor's (the `key >= v AND (key > v OR id > p)` form: `key>?` alone bounded
    the index walk)."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL pages by a row comparison (the test above)")
    job = JobFactory()
    tasks = [
        TaskFactory(job=job, state="completed", exit_code=1, start_time=job.creation_time)
        for _ in range(5)
    ]
    f = TaskFilter.from_params(QueryDict(f"sort={sort}"))
    key = f.order.segments[0].keys[0].field
    after = f.order.cursor(0, {key: getattr(tasks[2], key), "pk": tasks[2].pk})
    with CaptureQueriesContext(connection) as seen:
        page = pager.page(f.queryset(job), f.order, after=after, limit=1)
    assert len(page.rows) == 1 and page.more
    assert len(seen.captured_queries) == 1  # the page ends within the cursor's key
    # The captured SQL has its values inlined: the plan is the one with parameters.
    plan = sqlite_plan(seen.captured_queries[0]["sql"])
    assert f"{column}=? AND id" in plan, plan
