"""The job page's "blocked" filter at --big tasks in a job vs --small (issue 12's read gap;
target ratio <= 1.5 when the tasks with a dependsOn are as many in both), with the query
plans: EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL (with a DATABASE_URL).

Each job holds mostly plain tasks (completed, a tenth of them failed, or active), plus
--waiting active tasks that have a dependsOn: half of them depend on a failed task (so they
are blocked, and a chain of them blocks its tail too), half on a succeeded one. Measured:
tasks.queries.dependencies.blocked_task_pks and the job page filtered by blocked=1 (the
whole Django stack, signed in), each the median of --repeat runs after a warm-up. Before
the partial index task_job_state_depends the filter read every active task's row (the
(job, state) index) and every failed one; the plans printed show which index serves it.

Usage: .venv/bin/python benchmarks/bench_blocked_filter.py [--big 200000] [--small 1000]
       [--waiting 200] [--repeat 9]
"""

from __future__ import annotations

import argparse

from _common import describe_run, median_ms, setup_django, timed


def make_job(account, name: str, count: int, waiting: int):
    from datetime import timedelta

    from django.utils import timezone

    from tasks.models import Task
    from tasks.operations.counts import recount_job
    from tests.factories import JobFactory

    now = timezone.now()
    job = JobFactory(account=account, job_id=name, uses_task_dependencies=True)

    def task(task_id: str, **values) -> Task:
        return Task(
            job=job,
            task_id=task_id,
            id_key=task_id,
            command_line="/bin/true",
            retention_time=timedelta(days=7),
            etag="0x1",
            state_transition_time=now,
            creation_time=now,
            last_modified=now,
            **values,
        )

    rows = []
    for i in range(count):
        done = i % 3 != 0
        failed = done and i % 10 == 1
        rows.append(
            task(
                f"t{i:07d}",
                state="completed" if done else "active",
                result=("failure" if failed else "success") if done else "",
                exit_code=(1 if failed else 0) if done else None,
                failure_info={"code": "FailureExitCode"} if failed else None,
            )
        )
    for j in range(waiting):
        # Even ones wait on a failed task (t...1), odd ones on a succeeded one (t...2);
        # every tenth waits on the one before it: a chain.
        base = 30 * (j % (count // 30))
        target = f"w{j - 1:05d}" if j % 10 == 9 else f"t{base + (1 if j % 2 == 0 else 2):07d}"
        rows.append(task(f"w{j:05d}", spec={"dependsOn": {"taskIds": [target]}}))
    Task.objects.bulk_create(rows, batch_size=5000)
    recount_job(job)
    return job


def explain(qs) -> str:
    from django.db import connection, transaction

    sql, params = qs.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE tasks_task")
            cursor.execute("EXPLAIN " + sql, params)
            return "\n".join(f"    {row[0]}" for row in cursor.fetchall())
        cursor.execute("ANALYZE")
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(f"    {row[-1]}" for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--waiting", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    setup_django("blocked")

    from django.contrib.auth import get_user_model
    from django.test import Client

    from tasks.models import Task
    from tasks.queries.dependencies import WAITS_ON_OTHERS, blocked_task_pks
    from tests.factories import AccountFactory

    print(describe_run())
    account = AccountFactory(name="bench")
    jobs = {
        "small": make_job(account, "small", args.small, args.waiting),
        "big": make_job(account, "big", args.big, args.waiting),
    }
    big = jobs["big"]
    active = Task.objects.filter(job=big, state=Task.State.ACTIVE)
    print("plan, the active tasks that have a dependsOn (the filter's query):")
    print(explain(active.filter(WAITS_ON_OTHERS).values_list("pk", "id_key", "spec__dependsOn")))
    print(
        "plan, the same with Django's has_key (a parameter: SQLite matches it to no partial index):"
    )
    print(explain(active.filter(spec__has_key="dependsOn").values_list("pk", "id_key")))
    from tasks.queries.task_list import TaskFilter

    blocked = TaskFilter.from_params({"blocked": "1"})
    print("plan, the job page's first page of blocked tasks by id (by pk, then sorted):")
    print(explain(blocked.queryset(big).order_by("id_key")[:51]))
    failed = Task.objects.filter(job=big, state="completed", result="failure")
    print("plan, the failed ones among the dependencies (by id):")
    print(explain(failed.filter(id_key__in=["t0000001", "t0000031"]).values("id_key")))

    User = get_user_model()
    User.objects.create_superuser("bench", "", "bench-password")
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    expected = {label: len(blocked_task_pks(job)) for label, job in jobs.items()}
    assert expected["small"] == expected["big"] > 0, expected
    figures = {}
    for label, job in jobs.items():
        url = f"/web/bench/jobs/{job.job_id}/?blocked=1"
        assert client.get(url).status_code == 200
        figures[label] = (
            median_ms(timed(lambda j=job: blocked_task_pks(j), args.repeat)),
            median_ms(timed(lambda u=url: client.get(u), args.repeat)),
        )
    print(f"blocked tasks in each job: {expected['big']} ({args.waiting} with a dependsOn)")
    for i, name in enumerate(("blocked_task_pks", "job page, blocked=1")):
        small, large = figures["small"][i], figures["big"][i]
        print(
            f"{name:24} {args.small:>9,} tasks {small:8.2f} ms   {args.big:>9,} tasks "
            f"{large:8.2f} ms   ratio {large / small:.2f}"
        )


if __name__ == "__main__":
    main()
