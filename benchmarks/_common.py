"""Shared set-up for the benchmarks: a throw-away data dir and database, Django, an
account, and a signed in-process client. Every figure is printed beside a baseline
measured in the same run (the machines are shared and noisy)."""

from __future__ import annotations

import os
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
    (dropped at exit), and point the processes the benchmark starts at it too."""
    data = Path(
        os.environ.get("BENCH_DATA_DIR") or tempfile.mkdtemp(prefix=f"batchsite-bench-{name}-")
    )
    os.environ["BATCHSITE_DATA_DIR"] = str(data)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchsite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        import atexit

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
