"""Vacuuming the tables the agents churn, on PostgreSQL, as often as the churn needs.

Every claim and every report moves a task to another state, which no index of tasks_task
can take as a HOT update: each move leaves an entry in every index pointing to a dead row
version, and attempts and nodes the same. Index scans skip those only once a VACUUM has
removed them (the scans' own marking of dead entries did not keep up here, measured
below), and autovacuum looks at a database once a minute
(autovacuum_naptime) and at a table only past a fifth of its rows. Between two of its
visits, every claim read the index entries of every task claimed since the last one: on 2
agents x 2 slots the claim's task page grew from 0.03 ms (19 buffers) to 1.2 ms (144) in a
job of 2,000 tasks and 3.7 ms (415) in one of 6,000, and the run's throughput fell from
~350 to 223 tasks/s with it; with a VACUUM every second, 393 (bench_task_throughput.py).

So the sweep's frequent pass (every BATCHSITE_SCHEDULE_TICK_SECONDS) vacuums each of these
tables once the server's statistics count BATCHSITE_VACUUM_DEAD_ROWS dead rows in it, or
2 % of its rows where that is more: a VACUUM that removes index entries reads every index
whole, which in a table of millions of rows costs more than the entries it removes (the
2 % is not measured at that size yet).
VACUUM (SKIP_LOCKED) leaves a table another VACUUM holds (autovacuum's) for the next tick;
it takes no lock that rows' readers or writers wait for.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from tasks.models import Attempt, ComputeNode, Job, SubTask, Task

# The tables whose rows change with every task's start and end.
CHURNED = [Task, Attempt, Job, ComputeNode, SubTask]


def vacuum_churned_tables() -> int:
    """VACUUM each churned table whose dead rows reached the threshold (PostgreSQL, outside
    a transaction: VACUUM cannot run in one). Returns how many it vacuumed."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 0
    tables = [model._meta.db_table for model in CHURNED]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables "
            "WHERE relname = ANY(%s) AND schemaname = current_schema() "
            "AND n_dead_tup >= GREATEST(%s, n_live_tup / 50)",
            [tables, settings.BATCHSITE_VACUUM_DEAD_ROWS],
        )
        due = [name for (name,) in cursor.fetchall()]
        for name in due:
            cursor.execute(f"VACUUM (SKIP_LOCKED) {connection.ops.quote_name(name)}")
    return len(due)
