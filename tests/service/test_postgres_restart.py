"""A PostgreSQL restart is not an outage: a live batchsite (`manage.py serve`: gunicorn,
two node agents, the sweep) keeps its work through `pg_ctl restart -m fast` mid-load.

It runs in the suite's PostgreSQL pass, against a throwaway cluster of its own (initdb in
a temporary directory, on a free port), never the shared server the suite uses.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

from tests.agents import wait_for
from tests.service.live import Serve, clean_environment, manage
from tests.service.pgcluster import Cluster, unavailable_reason

pytestmark = pytest.mark.slow


def _skip_reason() -> str | None:
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        return "runs in the PostgreSQL pass (DATABASE_URL=postgres://...); it starts a throwaway cluster of its own"
    return unavailable_reason()


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
        self.answers: list[
            tuple[float, int]
        ] = []  # (when the request was sent, status; 0: no answer)
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
                status, body = self.api.call(
                    "POST",
                    f"/jobs/{self.job_id}/addtaskcollection",
                    {
                        "value": [
                            {"id": task_id, "commandLine": "/bin/sh -c 'sleep 0.2'"}
                            for task_id in ids
                        ]
                    },
                    timeout=60,
                )
            except OSError:
                status, body = 0, {}
            self.answers.append((sent_at, status))
            if status == 200:
                self.acknowledged += [
                    r["taskId"] for r in body["value"] if r["status"] == "success"
                ]
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
        wait_for(
            lambda: (
                len(adder.acknowledged) >= 40
                and api.call("GET", "/jobs/j/taskcounts")[1]["taskCounts"]["running"] > 0
            ),
            timeout=120,
            message="tasks added and running",
        )

        restart_began = time.monotonic()
        cluster.restart()
        restarted = time.monotonic()
        wait_for(
            lambda: api.answers("/jobs/j"),
            timeout=120,
            interval=0.05,
            message="the API to answer again",
        )
        back = time.monotonic()
        added_before = len(adder.acknowledged)
        wait_for(
            lambda: len(adder.acknowledged) >= added_before + 40,
            timeout=120,
            message="tasks added after",
        )
        adder.stop.set()
        adder.thread.join(90)

        def all_completed():
            status, body = api.call("GET", "/jobs/j/taskcounts")
            assert status == 200, (status, body)
            counts = body["taskCounts"]
            return counts["active"] == counts["running"] == 0 and counts

        counts = wait_for(
            all_completed, timeout=300, interval=0.5, message="every task to complete"
        )

        status, listing = api.call("GET", "/jobs/j/tasks", maxresults=1000)
        assert status == 200 and "odata.nextLink" not in listing
        tasks = {t["id"]: t for t in listing["value"]}
        seen = Counter(t["id"] for t in listing["value"])
        assert not [i for i, n in seen.items() if n > 1]  # none twice
        assert set(adder.acknowledged) <= set(tasks)  # no acknowledged task lost
        assert set(tasks) <= adder.sent  # nothing that was never sent
        assert {
            (tasks[i]["state"], tasks[i]["executionInfo"]["result"]) for i in adder.acknowledged
        } == {("completed", "success")}
        assert (
            counts["completed"] == counts["succeeded"] == len(tasks)
        )  # counters equal the listing

        # Once the API answered again, no call got a server error (no stale connection).
        late = [s for at, s in adder.answers if at >= back and (s >= 500 or s == 0)]
        assert late == [], [line for line in serve.log().splitlines() if "unavailable" in line]
        # No supervised process died, not even to be restarted: each loop survived.
        assert {role: p.pid for role, p in serve.children().items()} == before
        assert {node: p.pid for node, p in serve.agents().items()} == agents_before
        log = serve.log()
        assert (
            "was killed by" not in log
            and "exited with status" not in log
            and "restarting" not in log
        )
        print(
            f"\nPostgreSQL restart: pg_ctl took {restarted - restart_began:.1f} s; the API answered again "
            f"{back - restart_began:.1f} s after it began; {len(adder.acknowledged)} tasks acknowledged, "
            f"{sum(1 for at, s in adder.answers if restart_began <= at < back and s != 200)} calls refused "
            f"during the restart"
        )
    finally:
        if adder is not None:
            adder.stop.set()
        serve.close()
        shutil.rmtree(data_dir, ignore_errors=True)
