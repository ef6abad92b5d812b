"""A PostgreSQL restart is not an outage: a live batchsite (`manage.py serve`: gunicorn,
two node agents, the sweep) keeps its work through `pg_ctl restart -m fast` mid-load.

It runs in the suite's PostgreSQL pass, against a throwaway cluster of its own (initdb in
a temporary directory, on a free port), never the shared server the suite uses.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from glob import glob
from pathlib import Path

import pytest
from django.conf import settings

from tests.agents import wait_for
from tests.service.live import Serve, clean_environment, free_port, manage

pytestmark = pytest.mark.slow


def postgres_bindir() -> str | None:
    for candidate in ["/usr/lib/postgresql/15/bin", *sorted(glob("/usr/lib/postgresql/*/bin"), reverse=True)]:
        if os.access(f"{candidate}/initdb", os.X_OK) and os.access(f"{candidate}/pg_ctl", os.X_OK):
            return candidate
    found = shutil.which("initdb")
    return os.path.dirname(found) if found and shutil.which("pg_ctl") else None


def _skip_reason() -> str | None:
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        return "runs in the PostgreSQL pass (DATABASE_URL=postgres://...); it starts a throwaway cluster of its own"
    if postgres_bindir() is None:
        return "PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no `postgres` user to run a throwaway cluster as"
    return None


class Cluster:
    """A throwaway PostgreSQL cluster: initdb'ed in a temporary directory, on a free port,
    run as the `postgres` user when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.base = Path(tempfile.mkdtemp(prefix="bs-pg-"))
        self.data, self.log = self.base / "data", self.base / "postgres.log"
        self.port = free_port()
        self.as_user = {}
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.base, pg.pw_uid, pg.pw_gid)
            self.as_user = {"user": pg.pw_uid, "group": pg.pw_gid, "extra_groups": []}
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/batchsite"

    def run(self, program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(self.base)}
        proc = subprocess.run([f"{self.bindir}/{program}", *args], cwd=self.base, env=env, capture_output=True,
                              text=True, timeout=timeout, **self.as_user)
        assert proc.returncode == 0, f"{program} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C",
                 "--no-sync")
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "batchsite")

    def restart(self) -> None:
        # "fast": every session is ended at once, as an operator's restart or a failover does.
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([f"{self.bindir}/pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60, **self.as_user)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def cluster():
    if reason := _skip_reason():
        pytest.skip(reason)
    made = Cluster()
    try:
        made.start()
        yield made
    finally:
        made.destroy()


class Adder:
    """Adds tasks in collections of 10, one call after another, and remembers which ones
    the API acknowledged (200 with a per-task success) and every answer's time and status."""

    def __init__(self, serve: Serve, job_id: str) -> None:
        self.api, self.job_id = serve.api, job_id
        self.sent: set[str] = set()
        self.acknowledged: list[str] = []
        self.answers: list[tuple[float, int]] = []  # (when the request was sent, status; 0: no answer)
        self.batches = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            ids = [f"b{self.batches}-{i}" for i in range(10)]
            self.batches += 1
            self.sent.update(ids)
            sent_at = time.monotonic()
            try:
                status, body = self.api.call("POST", f"/jobs/{self.job_id}/addtaskcollection", {"value": [
                    {"id": task_id, "commandLine": "/bin/sh -c 'sleep 0.2'"} for task_id in ids]}, timeout=60)
            except OSError:
                status, body = 0, {}
            self.answers.append((sent_at, status))
            if status == 200:
                self.acknowledged += [r["taskId"] for r in body["value"] if r["status"] == "success"]
            time.sleep(0.05)


def test_a_postgresql_restart_mid_work_loses_no_task_and_stops_no_process(cluster, tmp_path):
    env = clean_environment(DATABASE_URL=cluster.url, BATCHSITE_NODE_HEARTBEAT_SECONDS="0.5")
    data_dir = Path(tempfile.mkdtemp(prefix="bs-"))
    manage("migrate", "--noinput", "-v0", env={**env, "BATCHSITE_DATA_DIR": str(data_dir)})
    serve = Serve(data_dir, env=env, nodes=2, slots=2, args=("--sweep-interval", "0.5"))
    adder = None
    try:
        serve.wait_ready(nodes=2)
        before = {role: p.pid for role, p in serve.children().items()}
        assert sorted(before) == ["reconciler", "sweep", "web"]
        agents_before = {node: p.pid for node, p in serve.agents().items()}
        assert len(agents_before) == 2
        api = serve.api
        assert api.call("POST", "/jobs", {"id": "j", "poolInfo": {"poolId": "local"}})[0] == 201

        adder = Adder(serve, "j")
        adder.thread.start()
        wait_for(lambda: len(adder.acknowledged) >= 40 and api.call("GET", "/jobs/j/taskcounts")[1]
                 ["taskCounts"]["running"] > 0, timeout=120, message="tasks added and running")

        restart_began = time.monotonic()
        cluster.restart()
        restarted = time.monotonic()
        wait_for(lambda: api.answers("/jobs/j"), timeout=120, interval=0.05, message="the API to answer again")
        back = time.monotonic()
        added_before = len(adder.acknowledged)
        wait_for(lambda: len(adder.acknowledged) >= added_before + 40, timeout=120, message="tasks added after")
        adder.stop.set()
        adder.thread.join(90)

        def all_completed():
            counts = api.call("GET", "/jobs/j/taskcounts")[1]["taskCounts"]
            return counts["active"] == counts["running"] == 0 and counts
        counts = wait_for(all_completed, timeout=300, interval=0.5, message="every task to complete")

        status, listing = api.call("GET", "/jobs/j/tasks", maxresults=1000)
        assert status == 200 and "odata.nextLink" not in listing
        tasks = {t["id"]: t for t in listing["value"]}
        seen = Counter(t["id"] for t in listing["value"])
        assert not [i for i, n in seen.items() if n > 1]  # none twice
        assert set(adder.acknowledged) <= set(tasks)  # no acknowledged task lost
        assert set(tasks) <= adder.sent  # nothing that was never sent
        assert {(tasks[i]["state"], tasks[i]["executionInfo"]["result"]) for i in adder.acknowledged} == {
            ("completed", "success")}
        assert counts["completed"] == counts["succeeded"] == len(tasks)  # counters equal the listing

        # Once the API answered again, no call got a server error (no stale connection).
        assert [s for at, s in adder.answers if at >= back and (s >= 500 or s == 0)] == []
        # No supervised process died, not even to be restarted: each loop survived.
        assert {role: p.pid for role, p in serve.children().items()} == before
        assert {node: p.pid for node, p in serve.agents().items()} == agents_before
        log = serve.log()
        assert "was killed by" not in log and "exited with status" not in log and "restarting" not in log
        print(f"\nPostgreSQL restart: pg_ctl took {restarted - restart_began:.1f} s; the API answered again "
              f"{back - restart_began:.1f} s after it began; {len(adder.acknowledged)} tasks acknowledged, "
              f"{sum(1 for at, s in adder.answers if restart_began <= at < back and s != 200)} calls refused "
              f"during the restart")
    finally:
        if adder is not None:
            adder.stop.set()
        serve.close()
        shutil.rmtree(data_dir, ignore_errors=True)
