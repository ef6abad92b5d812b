"""The job page's "ID contains" filter, sorted by id, walks the (job, id_key) index and
stops at a page: PostgreSQL took `id_key LIKE '%0004%'` (held by 1,300 of a 1M-task job's
ids, none of them among its histogram's 100) for one task in 10,000, and read and sorted
all million tasks instead (300 ms vs 0.2 ms)."""

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from tasks.models import Task
from tasks.queries import pager
from tasks.queries.task_list import TaskFilter
from tests.factories import JobFactory, TaskFactory

pytestmark = pytest.mark.django_db


def test_a_substring_the_statistics_miss_is_still_a_walk_of_the_id_index():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite walks the sort's index whatever the filter (no estimate)")
    job = JobFactory()
    Task.objects.bulk_create(
        TaskFactory.build(job=job, task_id=f"task-{i:05d}", id_key=f"task-{i:05d}")
        for i in range(3000)
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE tasks_task")
        cur.execute(
            "SELECT histogram_bounds::text FROM pg_stats"
            " WHERE tablename = 'tasks_task' AND attname = 'id_key'"
        )
        bounds = cur.fetchone()[0]
    # Three ids hold it (task-00347, -01347, -02347), no histogram bound does: PostgreSQL's
    # LIKE estimate is then its floor, 1 in 10,000 (one row, where a walk costs it the
    # whole index).
    text = next(f"{i:03d}" for i in range(300, 1000) if f"{i:03d}" not in bounds)
    assert Task.objects.filter(job=job, id_key__contains=text).count() == 3
    f = TaskFilter.from_params(QueryDict(f"q={text}"))
    with CaptureQueriesContext(connection) as seen:
        page = pager.page(f.queryset(job), f.order, limit=2)
    assert [t.id_key for t in page.rows] == sorted(
        Task.objects.filter(job=job, id_key__contains=text).values_list("id_key", flat=True)
    )[:2]
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + seen.captured_queries[0]["sql"])
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "Index Scan using task_id_unique_ci" in plan and "Sort" not in plan, plan


@pytest.mark.parametrize(("text", "expected"), [("_", ["a_b"]), ("%", ["c%d"]), ("A_", ["a_b"])])
def test_the_id_filter_matches_its_text_literally(text, expected):
    job = JobFactory()
    for task_id in ("a_b", "c%d", "axb", "cd"):
        TaskFactory(job=job, task_id=task_id)
    f = TaskFilter.from_params({"q": text})
    assert [t.task_id for t in f.queryset(job).order_by("id_key")] == expected
