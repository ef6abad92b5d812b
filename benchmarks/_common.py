"""Shared set-up for the benchmarks: a throw-away data dir and database, Django, an
account, and a signed in-process client. Every figure is printed beside a baseline
measured in the same run (the machines are shared and noisy)."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def setup_django(name: str) -> Path:
    """Point batchsite at a fresh data dir and migrate its SQLite database; with a
    PostgreSQL DATABASE_URL, make a fresh `test_<database>` beside it as the tests do
    (dropped at exit), and point the processes the benchmark starts at it too. A data dir
    made here is removed at exit; BENCH_DATA_DIR's is kept."""
    import atexit

    if os.environ.get("BENCH_DATA_DIR"):
        data = Path(os.environ["BENCH_DATA_DIR"])
    else:
        data = Path(tempfile.mkdtemp(prefix=f"batchsite-bench-{name}-"))
        # Registered first, so it runs last: after the test database is dropped.
        atexit.register(shutil.rmtree, data, ignore_errors=True)
    os.environ["BATCHSITE_DATA_DIR"] = str(data)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchsite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        from tasks.providers.environment import database_url

        name = connection.settings_dict["NAME"]
        connection.creation.create_test_db(verbosity=0, autoclobber=True)
        os.environ["DATABASE_URL"] = database_url()
        atexit.register(lambda: connection.creation.destroy_test_db(name, verbosity=0))
    else:
        call_command("migrate", verbosity=0)
    return data


def setup_kept(data_dir) -> None:
    """Django on data that a benchmark keeps between runs: its own SQLite file in
    `data_dir`, or the PostgreSQL database DATABASE_URL names (not a throw-away copy)."""
    os.environ["BATCHSITE_DATA_DIR"] = str(data_dir)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        os.environ.pop("DATABASE_URL", None)  # the benchmark's own SQLite file
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchsite.settings")
    import django

    django.setup()


def analyze() -> None:
    """Fresh planner statistics after a bulk load: PostgreSQL's autovacuum would gather them
    only later, and until then plans the million-row tables as if they were empty."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(f"  ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)


def describe_run() -> str:
    """Which database was measured and how busy the machine was (the machines are shared:
    every figure is printed with it)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0].split()[0]
        database = f"PostgreSQL {version} ({connection.settings_dict['HOST']}:{connection.settings_dict['PORT']})"
    else:
        database = "SQLite"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"database: {database}; {os.cpu_count()} CPUs, load average {load}"


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    """Wait until a server listens on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


# A task row's columns as the benchmarks write them raw, with the value each takes unless a
# row says otherwise (the job's pk and the ids are every row's own).
_TASK_DEFAULTS = {
    "display_name": "",
    "command_line": "/bin/true",
    "required_slots": 1,
    "number_of_instances": 1,
    "max_task_retry_count": 0,
    "spec": "{}",
    "state": "active",
    "previous_state": "",
    "etag": "0x8D1",
    "result": "",
    "retry_count": 0,
    "requeue_count": 0,
    "node_name": "",
    "pool_id": "",
    "affinity_id": "",
    "task_root_directory": "",
    "read_iops": 0,
    "write_iops": 0,
    "read_io_gib": 0.0,
    "write_io_gib": 0.0,
    "files_cleaned": False,
    "lifetime_expired": False,
    "exit_code": None,
    "start_time": None,
    "end_time": None,
    "failure_info": None,
}


def insert_task_rows(job, rows) -> None:
    """Insert tasks into `job` fast, past the rules layer (the benchmarks' data, not a
    product path), then recount the job. `rows` yields (task_id, created, fields): fields
    are the columns that differ from _TASK_DEFAULTS; creation, transition and modification
    times are `created`."""
    from django.db import connection, transaction

    from tasks.models import Task
    from tasks.operations.counts import recount_job

    names = list(_TASK_DEFAULTS)
    cols = ["job_id", "task_id", "id_key", "retention_time", "state_transition_time"]
    cols += ["creation_time", "last_modified", *names]
    sql = (
        f"INSERT INTO {Task._meta.db_table} ({','.join(cols)}) "
        f"VALUES ({','.join(['%s'] * len(cols))})"
    )
    week = 7 * 86400 * 1_000_000 if connection.vendor == "sqlite" else "7 days"
    batch = []
    with transaction.atomic(), connection.cursor() as cur:
        for task_id, created, fields in rows:
            if not fields.keys() <= _TASK_DEFAULTS.keys():
                raise KeyError(
                    f"not a task column here: {sorted(fields.keys() - _TASK_DEFAULTS.keys())}"
                )
            values = {**_TASK_DEFAULTS, **fields}
            batch.append(
                (job.pk, task_id, task_id, week, created, created, created)
                + tuple(values[n] for n in names)
            )
            if len(batch) == 20_000:
                cur.executemany(sql, batch)
                batch.clear()
        if batch:
            cur.executemany(sql, batch)
    recount_job(job)
