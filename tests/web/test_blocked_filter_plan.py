"""The job page's "blocked" filter reads only the active tasks that have a dependsOn, from
the partial index task_job_state_depends, and looks their failed dependencies up by id
(benchmarks/bench_blocked_filter.py shows the plans at 100k+ tasks)."""

import pytest
from django.db import connection

from tasks.models import Task
from tasks.queries.dependencies import WAITS_ON_OTHERS, blocked_task_pks
from tests.execution import add, claim, finish, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db


def plan(qs) -> str:
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Tiny tables are read whole whatever the indexes: ask whether it can use one.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(str(row) for row in cursor.fetchall())


def test_the_waiting_tasks_come_from_the_partial_index(job):
    waiting = Task.objects.filter(job=job, state=Task.State.ACTIVE).filter(WAITS_ON_OTHERS)
    assert "task_job_state_depends" in plan(waiting.values_list("pk", "id_key"))


def test_the_partial_index_holds_only_tasks_with_a_dependson(account):
    pool = make_pool(account)
    job = make_job(account, pool, usesTaskDependencies=True)
    add(job, "plain")
    add(job, "waits", dependsOn={"taskIds": ["plain"]})
    add(job, "empty-list", dependsOn={"taskIds": []})
    found = Task.objects.filter(job=job).filter(WAITS_ON_OTHERS)
    assert sorted(found.values_list("task_id", flat=True)) == ["empty-list", "waits"]
    assert set(found) == set(Task.objects.filter(job=job, spec__has_key="dependsOn"))


def test_blocked_tasks_are_found_through_a_chain_by_id_lookups(account, django_assert_num_queries):
    pool = make_pool(account)
    node = make_node(pool, slots=1)
    job = make_job(account, pool, usesTaskDependencies=True)
    add(job, "bad", "exit 3")
    [attempt] = claim(node)
    finish(attempt, 3)
    b = add(job, "b", dependsOn={"taskIds": ["bad"]})
    c = add(job, "c", dependsOn={"taskIds": ["b"]})
    add(job, "free", dependsOn={"taskIds": ["elsewhere"]})
    with django_assert_num_queries(2):  # the waiting tasks; their failed dependencies
        assert blocked_task_pks(job) == {b.pk, c.pk}
