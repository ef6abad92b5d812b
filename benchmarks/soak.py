"""The reliability (soak) run of issue 8: a real `manage.py serve` (gunicorn, the reconciler
with the pool local's node agents, and the sweep under the supervisor) on its own port, data dir and database, driven
by 32 client threads with a mix of Add Task Collection, Get, List ($filter), Update,
Terminate, Reactivate and Delete Task for 3 minutes while the nodes run the tasks; then an
integrity check through the API and the database; then fault runs.

Each client owns its task ids (`c07-000123`: a replayed Add is idempotent, TaskExists on a
replay is an acknowledgement) and keeps a model of what the service acknowledged: which
tasks exist, which were terminated after their last reactivation. It sends signed
requests over a keep-alive connection (benchmarks/_signed.py: every answer is seen, none
retried behind its back) and replays a request that got no answer or a 5xx, for up to
two minutes, as the SDKs' retry policies do.

The integrity check, once the load stops and every task has completed:
  * every task acknowledged exists exactly once; nothing deleted, refused or never sent
    exists (the listing, paged through `odata.nextLink`, and the rows);
  * every task completed, with the outcome its command and its terminations call for
    (`/bin/true` succeeded unless terminated; `exit 3` failed with FailureExitCode;
    terminated: TaskEnded);
  * Get Job Task Counts equals the listing; the job's maintained counters equal its rows;
    no attempt still running; no two attempts of one task that overlap in time;
  * no 5xx in the server's access log, no traceback.

Fault runs (each its own serve, load as above): SIGKILL a node agent (the reconciler
starts it again; its running tasks are requeued), SIGKILL the reconciler (the supervisor
restarts it; it must adopt the running agents, not start new ones), SIGKILL the gunicorn
master mid-burst (the clients replay what failed), and on PostgreSQL `pg_ctl restart -m
fast` of the run's own throwaway cluster (tests/service/pgcluster.py; never the shared
server), each timed until the API (the node, the reconciler) answers again.

Usage:
  make soak                                  # both databases: 32 clients x 180 s, then the fault runs
  .venv/bin/python benchmarks/soak.py --db sqlite --clients 4 --seconds 20 --fault-seconds 30   # a quick look
  .venv/bin/python benchmarks/soak.py --db postgres --faults none
Options: --db sqlite,postgres  --clients 32  --seconds 180  --faults agent,reconciler,web,postgres|none
         --fault-seconds 90  --nodes 2  --slots 4  --jobs 4  --seed 8  --json PATH  --keep
Exit status 0 when every target holds (no 5xx outside a fault, nothing lost or duplicated).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import psutil
from _common import ROOT, free_port
from _nodes import percentile
from _signed import Answer, Connection

from batchsite.env import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from tests.service.pgcluster import Cluster, unavailable_reason

MANAGE = str(ROOT / "manage.py")
OPERATIONS = ("add", "get", "list", "update", "terminate", "reactivate", "delete")
WEIGHTS = (10, 30, 15, 10, 12, 15, 8)
# What each operation may answer besides success (the Batch refusals of the mix).
EXPECTED = {
    "add": {200: ""},
    "get": {200: ""},
    "list": {200: ""},
    "update": {200: "", 409: "TaskCompleted"},
    "terminate": {204: "", 409: "TaskCompleted"},
    "reactivate": {204: "", 409: "TaskNotCompleted|TaskSucceeded"},
    "delete": {200: ""},
}
COMMANDS = {"ok": "/bin/true", "sleep": "/bin/sleep 0.5", "fail": "/bin/sh -c 'exit 3'"}
REPLAY_WINDOW = 120.0
# Faults the API is not expected to notice: their time back is their own process's.
PROCESS_FAULTS = ("agent", "reconciler")
JOB_PREFIX = "soak-"


# --- the service -----------------------------------------------------------------------


def clean_environment(**extra: str) -> dict[str, str]:
    """This environment without batchsite's settings, so the served instance never sees
    another database or account."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BATCHSITE_", "DJANGO_", "DATABASE_URL", "PORT"))
    }
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def manage(*args: str, env: dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(
        [sys.executable, MANAGE, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


class Service:
    """`manage.py serve` as `make run` starts it, in a session of its own, on a free port."""

    def __init__(self, data_dir: Path, env: dict[str, str], *, nodes: int, slots: int) -> None:
        self.data_dir, self.env, self.nodes = data_dir, env, nodes
        self.port = free_port()
        self.log_path = data_dir / "serve.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    MANAGE,
                    "serve",
                    "--port",
                    str(self.port),
                    "--nodes",
                    str(nodes),
                    "--slots",
                    str(slots),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def connection(self, timeout: float = 60) -> Connection:
        return Connection(self.port, account=DEV_ACCOUNT_NAME, key=DEV_ACCOUNT_KEY, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 180) -> None:
        conn = self.connection(timeout=5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited:\n{self.log()[-3000:]}")
            answer = conn.call("GET", "/pools/local/nodes")
            if (
                answer.status == 200
                and sum(n["state"] == "idle" for n in answer.json()["value"]) >= self.nodes
            ):
                return
            time.sleep(0.3)
        raise RuntimeError(f"serve did not get ready:\n{self.log()[-3000:]}")

    def child(self, role: str) -> psutil.Process | None:
        """The supervised process of this role: "web" (gunicorn's master), "reconciler" or
        "sweep"."""
        for proc in psutil.Process(self.proc.pid).children():
            try:
                cmd = proc.cmdline()
            except psutil.Error:
                continue
            if {
                "web": "gunicorn" in cmd,
                "reconciler": "reconcile" in cmd,
                "sweep": "sweep" in cmd,
            }.get(role):
                return proc
        return None

    def agents(self) -> dict[str, psutil.Process]:
        """The node agents of this instance by node id. Read from the process table (as
        the reconciler does), not from serve's tree: agents run in sessions of their own
        and outlive a killed reconciler, whose successor adopts them."""
        found = {}
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info["cmdline"] or []
            if "runnode" not in cmd or "--node-id" not in cmd:
                continue
            try:
                if (
                    proc.environ().get("BATCHSITE_DATA_DIR") == str(self.data_dir)
                    and proc.status() != psutil.STATUS_ZOMBIE
                ):
                    found[cmd[cmd.index("--node-id") + 1]] = proc
            except psutil.Error:
                continue
        return found

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            tree = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            tree = []
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for proc in tree:
            try:
                proc.kill()
            except psutil.Error:
                pass


# --- the clients -----------------------------------------------------------------------


@dataclass
class Known:
    """What the service acknowledged about one task."""

    kind: str  # "ok" | "sleep" | "fail": its command
    exists: bool | None = True  # None: an add or a delete whose answer never came
    terminated: bool | None = False  # since its last reactivation; None: perhaps (a replay)


@dataclass
class Exchange:
    op: str
    status: int  # 0: no answer
    seconds: float
    sent_at: float
    code: str = ""  # the Batch error code, or the exception's name without an answer
    replay: bool = False


@dataclass
class Finding:
    what: str
    op: str = ""
    task: str = ""
    detail: str = ""
    at: float = 0.0


class Client(threading.Thread):
    """One client: a job of the run, task ids of its own, a model of what was acknowledged."""

    def __init__(self, index: int, run: Run) -> None:
        super().__init__(name=f"client-{index}", daemon=True)
        self.run_ = run
        self.rng = random.Random(run.seed * 1000 + index)
        self.conn = run.service.connection(timeout=60)
        self.job = run.jobs[index % len(run.jobs)]
        self.prefix = f"c{index:02d}-"
        self.counter = 0
        self.tasks: dict[str, Known] = {}
        self.alive: list[str] = []  # ids known to exist, for random choice
        self.recent: list[str] = []  # the last ids added (likely still active or running)
        self.sent: set[str] = set()
        self.exchanges: list[Exchange] = []
        self.findings: list[Finding] = []
        self.ops = Counter()

    # the loop

    def run(self) -> None:
        stop = self.run_.stop
        while not stop.is_set():
            op = "add" if len(self.alive) < 10 else self.rng.choices(OPERATIONS, WEIGHTS)[0]
            try:
                getattr(self, f"_{op}")()
                self.ops[op] += 1
            except Exception as e:  # noqa: BLE001 - a client bug is reported, not hidden
                self.findings.append(
                    Finding("client error", op, detail=repr(e), at=time.monotonic())
                )

    def _send(
        self, op: str, method: str, path: str, *, params=None, body=None
    ) -> tuple[Answer | None, bool]:
        """Send until an answer below 500; replay after no answer or a 5xx (with backoff,
        for up to REPLAY_WINDOW). Returns the answer (None: gave up) and whether it came
        from a replay."""
        first = time.monotonic()
        replays = 0
        while True:
            answer = self.conn.call(method, path, params=params, body=body)
            code = answer.error or (answer.code if answer.status >= 400 else "")
            self.exchanges.append(
                Exchange(op, answer.status, answer.seconds, answer.sent_at, code, replays > 0)
            )
            if 0 < answer.status < 500:
                return answer, replays > 0
            if time.monotonic() - first > REPLAY_WINDOW:
                self.findings.append(
                    Finding("gave up", op, detail=f"{answer.status} {code}", at=time.monotonic())
                )
                return None, True
            replays += 1
            time.sleep(min(2.0, 0.05 * 2 ** min(replays, 6)))

    def _unexpected(self, op: str, answer: Answer, task: str = "") -> None:
        self.findings.append(
            Finding(
                "unexpected answer",
                op,
                task,
                f"{answer.status} {answer.code} {answer.body[:200]!r}",
                answer.sent_at,
            )
        )

    def _expected(self, op: str, answer: Answer) -> bool:
        allowed = EXPECTED[op].get(answer.status)
        return allowed is not None and (allowed == "" or answer.code in allowed.split("|"))

    def _pick(self, pool: list[str] | None = None) -> str:
        pool = pool or self.alive
        return pool[self.rng.randrange(len(pool))]

    def _forget(self, task_id: str) -> None:
        # O(n) in the client's own tasks, a few thousand at most: cheap beside a request.
        if task_id in self.alive:
            self.alive.remove(task_id)
        if task_id in self.recent:
            self.recent.remove(task_id)

    def _task_path(self, task_id: str) -> str:
        return f"/jobs/{self.job}/tasks/{task_id}"

    # the operations

    def _add(self) -> None:
        count = self.rng.randint(5, 25)
        specs = []
        for _ in range(count):
            task_id = f"{self.prefix}{self.counter:06d}"
            self.counter += 1
            kind = self.rng.choices(("ok", "sleep", "fail"), (80, 8, 12))[0]
            self.tasks[task_id] = Known(kind, exists=None)
            self.sent.add(task_id)
            specs.append(
                {
                    "id": task_id,
                    "commandLine": COMMANDS[kind],
                    "constraints": {"maxTaskRetryCount": self.rng.choice((0, 0, 0, 1))},
                }
            )
        answer, replayed = self._send(
            "add", "POST", f"/jobs/{self.job}/addtaskcollection", body={"value": specs}
        )
        if answer is None:
            return  # they may or may not exist: exists stays None
        if answer.status != 200:
            self._unexpected("add", answer)
            for spec in specs:
                self.tasks[spec["id"]].exists = False  # refused whole: none of them may exist
            return
        results = {r.get("taskId"): r for r in answer.json().get("value", [])}
        for spec in specs:
            task_id, result = spec["id"], results.get(spec["id"])
            known = self.tasks[task_id]
            if result is None:
                self.findings.append(
                    Finding("add result missing", "add", task_id, at=answer.sent_at)
                )
                continue
            code = (result.get("error") or {}).get("code", "")
            if result.get("status") == "success" or (replayed and code == "TaskExists"):
                known.exists = True
                self.alive.append(task_id)
                self.recent = (self.recent + [task_id])[-30:]
            else:
                known.exists = False
                self.findings.append(
                    Finding(
                        "add refused a task",
                        "add",
                        task_id,
                        json.dumps(result)[:300],
                        answer.sent_at,
                    )
                )

    def _get(self) -> None:
        task_id = self._pick()
        answer, _ = self._send("get", "GET", self._task_path(task_id))
        if answer is None:
            return
        if answer.status == 404:
            self.findings.append(
                Finding("lost (Get answered 404)", "get", task_id, answer.code, answer.sent_at)
            )
        elif answer.status != 200 or answer.json().get("id") != task_id:
            self._unexpected("get", answer, task_id)

    def _list(self) -> None:
        choice = self.rng.randrange(4)
        where = (
            f"startswith(id,'{self.prefix}')",
            "state eq 'active'",
            "state eq 'running'",
            "state eq 'completed' and executionInfo/result eq 'failure'",
        )[choice]
        answer, _ = self._send(
            "list",
            "GET",
            f"/jobs/{self.job}/tasks",
            params={"$filter": where, "maxresults": "100", "$select": "id,state,executionInfo"},
        )
        if answer is None:
            return
        if answer.status != 200:
            self._unexpected("list", answer)
            return
        items = answer.json().get("value", [])
        if choice == 0 and any(not t["id"].startswith(self.prefix) for t in items):
            self.findings.append(
                Finding("list ignored its filter", "list", detail=where, at=answer.sent_at)
            )

    def _update(self) -> None:
        task_id = self._pick()
        answer, _ = self._send(
            "update",
            "PUT",
            self._task_path(task_id),
            body={"constraints": {"maxTaskRetryCount": self.rng.choice((0, 1))}},
        )
        if answer is not None and not self._expected("update", answer):
            self._lost_or_unexpected("update", answer, task_id)

    def _terminate(self) -> None:
        task_id = self._pick(self.recent if self.recent and self.rng.random() < 0.6 else None)
        answer, replayed = self._send("terminate", "POST", f"{self._task_path(task_id)}/terminate")
        if answer is None:
            self.tasks[task_id].terminated = None if not self.tasks[task_id].terminated else True
            return
        known = self.tasks[task_id]
        if answer.status == 204:
            known.terminated = True
        elif self._expected("terminate", answer):
            if replayed and not known.terminated:
                known.terminated = None  # the first one may have done it
        else:
            self._lost_or_unexpected("terminate", answer, task_id)

    def _reactivate(self) -> None:
        pool = [t for t in self.recent if self.tasks[t].terminated is not False] or None
        if pool is None and self.rng.random() < 0.5:
            fails = [t for t in self.alive[-200:] if self.tasks[t].kind == "fail"]
            pool = fails or None
        task_id = self._pick(pool)
        answer, replayed = self._send(
            "reactivate", "POST", f"{self._task_path(task_id)}/reactivate"
        )
        known = self.tasks[task_id]
        if answer is None:
            known.terminated = None if known.terminated else False
            return
        if answer.status == 204:
            known.terminated = False
        elif self._expected("reactivate", answer):
            if known.terminated is True and not replayed:
                self.findings.append(
                    Finding(
                        "reactivate refused a terminated task",
                        "reactivate",
                        task_id,
                        answer.code,
                        answer.sent_at,
                    )
                )
            # Not completed-failed now: not terminated since (or reactivated by our first try).
            known.terminated = False
        else:
            self._lost_or_unexpected("reactivate", answer, task_id)

    def _delete(self) -> None:
        task_id = self._pick()
        answer, replayed = self._send("delete", "DELETE", self._task_path(task_id))
        known = self.tasks[task_id]
        self._forget(task_id)
        if answer is None:
            known.exists = None
        elif answer.status == 200 or (replayed and answer.status == 404):
            known.exists = False
        else:
            known.exists = None
            self._lost_or_unexpected("delete", answer, task_id)

    def _lost_or_unexpected(self, op: str, answer: Answer, task_id: str) -> None:
        if answer.status == 404 and answer.code == "TaskNotFound":
            self.findings.append(
                Finding(f"lost ({op} answered 404)", op, task_id, answer.code, answer.sent_at)
            )
        else:
            self._unexpected(op, answer, task_id)


class Probe(threading.Thread):
    """Get Job every 50 ms on a connection of its own: when the API stops and starts
    answering."""

    def __init__(self, run: Run) -> None:
        super().__init__(name="probe", daemon=True)
        self.run_ = run
        self.conn = run.service.connection(timeout=5)
        self.answers: list[tuple[float, float, int]] = []  # (sent, answered, status)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            answer = self.conn.call("GET", f"/jobs/{self.run_.jobs[0]}")
            self.answers.append((answer.sent_at, answer.sent_at + answer.seconds, answer.status))
            time.sleep(0.05)

    def back_after(self, t: float, limit: float = 180) -> tuple[float | None, float | None]:
        """(seconds from t until the first failed probe, seconds from t until the API
        answered again after it); (None, None) if no probe sent after t failed."""
        failed = next((a for a in self.answers if t <= a[0] <= t + limit and a[2] != 200), None)
        if failed is None:
            return None, None
        back = next((a for a in self.answers if a[0] > failed[0] and a[2] == 200), None)
        return failed[0] - t, (back[1] - t if back else None)


# --- one run ----------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str
    at: float = 0.0  # monotonic
    offset: float = 0.0  # seconds into the load
    first_failure: float | None = None
    clients_back: float | None = (
        None  # seconds until the clients' first answer after their last failure
    )
    failed_per_second: dict = field(
        default_factory=dict
    )  # second after the fault: failed requests ended
    answered_per_second: dict = field(default_factory=dict)
    back: float | None = (
        None  # seconds until the API answered again (PROCESS_FAULTS: see their functions)
    )
    note: str = ""


@dataclass
class Run:
    db: str
    clients: int
    seconds: float
    faults: list[str]
    nodes: int
    slots: int
    jobs: list[str]
    seed: int
    keep: bool = False
    service: Service | None = None
    cluster: Cluster | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    fault_log: list[Fault] = field(default_factory=list)
    fault_problems: list[str] = field(default_factory=list)


def start_run(run: Run) -> tuple[Path, dict[str, str]]:
    data_dir = Path(
        tempfile.mkdtemp(prefix="bs-soak-")
    )  # short: gunicorn's control socket lives here
    env = clean_environment(BATCHSITE_DATA_DIR=str(data_dir), HOME=str(data_dir / "home"))
    if run.db == "postgres":
        run.cluster = Cluster()
        run.cluster.start()
        env["DATABASE_URL"] = run.cluster.url
    manage("migrate", "--noinput", "-v0", env=env)
    run.service = Service(data_dir, env, nodes=run.nodes, slots=run.slots)
    run.service.wait_ready()
    conn = run.service.connection()
    for job_id in run.jobs:
        answer = conn.call("POST", "/jobs", body={"id": job_id, "poolInfo": {"poolId": "local"}})
        if answer.status != 201:
            raise RuntimeError(f"Add Job {job_id}: {answer.status} {answer.body[:300]!r}")
    return data_dir, env


def inject_faults(run: Run, started: float, probe: Probe) -> None:
    """The faults of the run, spread over the load: each at its share of the duration."""
    kinds = run.faults
    for i, kind in enumerate(kinds):
        offset = run.seconds * (i + 1) / (len(kinds) + 1)
        if run.stop.wait(max(0.0, started + offset - time.monotonic())):
            return
        fault = Fault(kind, at=time.monotonic(), offset=time.monotonic() - started)
        run.fault_log.append(fault)
        try:
            if kind == "agent":
                _kill_agent(run, fault)
            elif kind == "reconciler":
                _kill_reconciler(run, fault)
            elif kind == "web":
                web = run.service.child("web")
                fault.note = f"gunicorn master pid {web.pid}"
                fault.at = time.monotonic()
                os.kill(web.pid, signal.SIGKILL)
            elif kind == "postgres":
                fault.at = time.monotonic()
                run.cluster.restart()
                fault.note = f"pg_ctl restart -m fast took {time.monotonic() - fault.at:.1f} s"
        except Exception as e:  # noqa: BLE001 - reported with the figures
            fault.note += f" (fault failed: {e!r})"


def _kill_agent(run: Run, fault: Fault) -> None:
    """SIGKILL one node agent; back: the reconciler started it again and it registered
    (its lastBootTime changed)."""
    conn = run.service.connection(timeout=10)
    node_id, agent = sorted(run.service.agents().items())[0]
    path = f"/pools/local/nodes/{node_id}"
    before = conn.call("GET", path).json()
    fault.at = time.monotonic()
    os.kill(agent.pid, signal.SIGKILL)
    fault.note = f"agent of {node_id} pid {agent.pid}, {before.get('runningTasksCount', '?')} tasks running on it"
    deadline = fault.at + 120
    while time.monotonic() < deadline:
        node = conn.call("GET", path).json()
        if node.get("lastBootTime") not in (None, before.get("lastBootTime")) and node.get(
            "state"
        ) in ("idle", "running"):
            fault.back = time.monotonic() - fault.at
            return
        time.sleep(0.1)


def _kill_reconciler(run: Run, fault: Fault) -> None:
    """SIGKILL the reconciler; back: the supervisor started another one. Its successor
    must adopt the running agents (same pids), not start new ones."""
    agents = {node_id: proc.pid for node_id, proc in run.service.agents().items()}
    reconciler = run.service.child("reconciler")
    fault.at = time.monotonic()
    os.kill(reconciler.pid, signal.SIGKILL)
    deadline = fault.at + 120
    while time.monotonic() < deadline:
        now = run.service.child("reconciler")
        if now is not None and now.pid != reconciler.pid:
            fault.back = time.monotonic() - fault.at
            break
        time.sleep(0.1)
    # A few of its passes, then the agents must be the same processes.
    time.sleep(10)
    after = {node_id: proc.pid for node_id, proc in run.service.agents().items()}
    fault.note = (
        f"reconciler pid {reconciler.pid}; agents "
        f"{'adopted (same pids)' if after == agents else f'CHANGED {agents} -> {after}'}"
    )
    if after != agents:
        run.fault_problems.append(
            f"the reconciler's successor did not adopt the agents: {agents} -> {after}"
        )


def list_all(conn: Connection, job_id: str) -> tuple[list[dict], list[str]]:
    """Every task of the job through List Tasks, following odata.nextLink; and the
    problems met on the way."""
    items, problems = [], []
    path, params = (
        f"/jobs/{job_id}/tasks",
        {"maxresults": "1000", "$select": "id,state,executionInfo"},
    )
    while True:
        answer = conn.call("GET", path, params=params)
        if answer.status != 200:
            problems.append(f"List Tasks {job_id}: {answer.status} {answer.code}")
            time.sleep(1)
            continue
        body = answer.json()
        items += body["value"]
        link = body.get("odata.nextLink")
        if not link:
            return items, problems
        split = urlsplit(link)
        path, params = split.path, dict(parse_qsl(split.query))
        params.pop("api-version", None)


def wait_drained(run: Run, timeout: float) -> tuple[float | None, dict]:
    """Seconds until no task of the run is active or running (None: not within timeout)."""
    conn = run.service.connection()
    started = time.monotonic()
    counts: dict = {}
    while time.monotonic() - started < timeout:
        counts = {}
        for job_id in run.jobs:
            answer = conn.call("GET", f"/jobs/{job_id}/taskcounts")
            if answer.status == 200:
                counts[job_id] = answer.json()["taskCounts"]
        if len(counts) == len(run.jobs) and all(
            c["active"] == c["running"] == 0 for c in counts.values()
        ):
            return time.monotonic() - started, counts
        time.sleep(1)
    return None, counts


def outcome_problem(known: Known, task: dict) -> str:
    """What is wrong with a completed task's outcome, given what was acknowledged."""
    info = task.get("executionInfo") or {}
    result, exit_code = info.get("result"), info.get("exitCode")
    failure = (info.get("failureInfo") or {}).get("code")
    ended = result == "failure" and failure == "TaskEnded"
    natural = (
        (result == "success" and exit_code == 0)
        if known.kind in ("ok", "sleep")
        else (result == "failure" and failure == "FailureExitCode" and exit_code == 3)
    )
    ok = (
        ended
        if known.terminated is True
        else natural
        if known.terminated is False
        else (ended or natural)
    )
    return (
        ""
        if ok
        else f"{known.kind} terminated={known.terminated}: result {result} exit {exit_code} {failure}"
    )


def check_integrity(run: Run, clients: list[Client], env: dict[str, str]) -> dict:
    conn = run.service.connection()
    report: dict = {
        "lost": [],
        "duplicated": [],
        "never_sent": [],
        "present_but_gone": [],
        "not_completed": [],
        "wrong_outcome": [],
        "counts_differ": [],
        "db": {},
        "listing_problems": [],
    }
    listed: dict[str, dict] = {}
    for job_id in run.jobs:
        items, problems = list_all(conn, job_id)
        report["listing_problems"] += problems
        seen = Counter(t["id"] for t in items)
        report["duplicated"] += [f"{job_id}/{i}" for i, n in seen.items() if n > 1]
        tasks = {t["id"]: t for t in items}
        listed[job_id] = tasks
        counts = conn.call("GET", f"/jobs/{job_id}/taskcounts").json()["taskCounts"]
        states = Counter(t["state"] for t in items)
        results = Counter(
            (t.get("executionInfo") or {}).get("result") for t in items if t["state"] == "completed"
        )
        from_listing = {
            "active": states["active"],
            "running": states["running"] + states["preparing"],
            "completed": states["completed"],
            "succeeded": results["success"],
            "failed": results["failure"],
        }
        if any(counts[k] != v for k, v in from_listing.items()):
            report["counts_differ"].append(f"{job_id}: taskcounts {counts} listing {from_listing}")
    owners = {c.prefix: c for c in clients}
    for job_id, tasks in listed.items():
        for task_id in tasks:
            owner = owners.get(task_id[:4])
            if owner is None or task_id not in owner.sent:
                report["never_sent"].append(f"{job_id}/{task_id}")
    acknowledged = deleted = 0
    for client in clients:
        tasks = listed[client.job]
        for task_id, known in client.tasks.items():
            present = task_id in tasks
            acknowledged += known.exists is True
            deleted += known.exists is False and task_id in client.sent
            if known.exists is True and not present:
                report["lost"].append(f"{client.job}/{task_id}")
            elif known.exists is False and present:
                report["present_but_gone"].append(f"{client.job}/{task_id}")
            if present:
                task = tasks[task_id]
                if task["state"] != "completed":
                    report["not_completed"].append(f"{client.job}/{task_id} {task['state']}")
                elif problem := outcome_problem(known, task):
                    report["wrong_outcome"].append(f"{client.job}/{task_id}: {problem}")
    report["acknowledged"] = acknowledged
    report["listed"] = sum(len(t) for t in listed.values())
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "_soak_db.py"), JOB_PREFIX],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        report["db"] = {"error": proc.stderr[-2000:]}
    else:
        report["db"] = json.loads(proc.stdout)
        for job_id, facts in report["db"]["jobs"].items():
            if facts["tasks"] != len(listed.get(job_id, {})):
                report["counts_differ"].append(
                    f"{job_id}: {facts['tasks']} rows, {len(listed[job_id])} listed"
                )
    return report


ACCESS_LINE = re.compile(r'"[A-Z]+ [^"]*" (\d{3}) ')


def scan_log(text: str) -> dict:
    statuses = Counter(int(m.group(1)) for m in ACCESS_LINE.finditer(text))
    return {
        "requests": sum(statuses.values()),
        "5xx": {s: n for s, n in statuses.items() if s >= 500},
        "tracebacks": text.count("Traceback (most recent call last)"),
        "supervisor": [
            line
            for line in text.splitlines()
            if line.startswith("supervisor:") or "supervisor: " in line
        ][:40],
        "errors": [
            line
            for line in text.splitlines()
            if re.search(r"\b(ERROR|Error|error)\b", line) and "supervisor" not in line
        ][:20],
    }


def soak_once(run: Run, *, drain_timeout: float) -> dict:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    data_dir, env = start_run(run)
    try:
        clients = [Client(i, run) for i in range(run.clients)]
        probe = Probe(run)
        probe.start()
        cpu0 = time.process_time()
        started = time.monotonic()
        for client in clients:
            client.start()
        injector = threading.Thread(target=inject_faults, args=(run, started, probe), daemon=True)
        injector.start()
        time.sleep(run.seconds)
        run.stop.set()
        for client in clients:
            client.join(REPLAY_WINDOW + 90)
        elapsed = time.monotonic() - started
        client_cpu = time.process_time() - cpu0
        injector.join(60)
        load_during = os.getloadavg()
        for n, fault in enumerate(run.fault_log):
            first, back = probe.back_after(fault.at)
            fault.first_failure = first
            if fault.kind not in PROCESS_FAULTS:
                fault.back = back
                until = min([fault.at + 180] + [f.at for f in run.fault_log[n + 1 :]])
                failed = [
                    e.sent_at + e.seconds
                    for c in clients
                    for e in c.exchanges
                    if (e.status == 0 or e.status >= 500)
                    and fault.at <= e.sent_at + e.seconds <= until
                ]
                # Back: the first answer after the last failure (requests sent while the web
                # server restarts wait in the listening socket's backlog: not failures, but
                # not answered either until it is back).
                last = max(failed, default=fault.at)
                fault.clients_back = (
                    min(
                        (
                            e.sent_at + e.seconds
                            for c in clients
                            for e in c.exchanges
                            if 0 < e.status < 500 and e.sent_at + e.seconds > last
                        ),
                        default=last,
                    )
                    - fault.at
                )
                fault.failed_per_second = dict(
                    sorted(Counter(int(t - fault.at) for t in failed).items())
                )
                fault.answered_per_second = dict(
                    sorted(
                        Counter(
                            int(e.sent_at + e.seconds - fault.at)
                            for c in clients
                            for e in c.exchanges
                            if 0 < e.status < 500
                            and fault.at <= e.sent_at + e.seconds <= min(until, fault.at + 20)
                        ).items()
                    )
                )
        drained, _ = wait_drained(run, drain_timeout)
        probe.done.set()
        probe.join(10)
        integrity = check_integrity(run, clients, env)
        run.service.stop()
        log = scan_log(run.service.log())
    finally:
        if run.service is not None:
            run.service.stop()
        if run.cluster is not None:
            run.cluster.destroy()
        if run.keep:
            print(f"  kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    return summarize(
        run,
        clients,
        elapsed,
        client_cpu,
        drained,
        integrity,
        log,
        started_at=started_at,
        load=(load_before, load_during),
    )


def _in_fault(run: Run, exchange: Exchange) -> bool:
    """Whether the exchange ended within a web or database fault: from the fault until 2 s
    after the API answered again (a request sent before the fault fails when it hits)."""
    ended = exchange.sent_at + exchange.seconds
    for fault in run.fault_log:
        if fault.kind in PROCESS_FAULTS:
            continue
        end = fault.at + (fault.back if fault.back is not None else 180) + 2
        if fault.at <= ended <= end:
            return True
    return False


def summarize(
    run: Run,
    clients: list[Client],
    elapsed: float,
    client_cpu: float,
    drained: float | None,
    integrity: dict,
    log: dict,
    *,
    started_at: str,
    load,
) -> dict:
    by_op: dict[str, list[Exchange]] = defaultdict(list)
    for client in clients:
        for ex in client.exchanges:
            by_op[ex.op].append(ex)
    ops = {}
    for op in OPERATIONS:
        exchanges = by_op.get(op, [])
        answered = [e for e in exchanges if e.status]
        lat = [e.seconds * 1000 for e in answered]
        refusals = Counter(
            f"{e.status} {e.code}" for e in answered if e.status >= 400 and e.status < 500
        )
        ops[op] = {
            "requests": len(exchanges),
            "per_second": len(answered) / elapsed,
            "p50": percentile(lat, 50) if lat else None,
            "p95": percentile(lat, 95) if lat else None,
            "p99": percentile(lat, 99) if lat else None,
            "refusals": dict(refusals),
            "5xx": sum(1 for e in answered if e.status >= 500),
            "5xx_outside_faults": sum(
                1 for e in answered if e.status >= 500 and not _in_fault(run, e)
            ),
            "no_answer": sum(1 for e in exchanges if not e.status),
            "no_answer_outside_faults": sum(
                1 for e in exchanges if not e.status and not _in_fault(run, e)
            ),
            "replays": sum(1 for e in exchanges if e.replay),
        }
    every = [e for exchanges in by_op.values() for e in exchanges]
    lat = [e.seconds * 1000 for e in every if e.status]
    findings = [f for c in clients for f in c.findings]
    return {
        "db": run.db,
        "clients": run.clients,
        "seconds": run.seconds,
        "faults": [f.__dict__ for f in run.fault_log],
        "fault_problems": run.fault_problems,
        "started": started_at,
        "load": load,
        "elapsed": elapsed,
        "client_cpu_share": client_cpu / elapsed,
        "ops": ops,
        "all": {
            "requests": len(every),
            "per_second": sum(1 for e in every if e.status) / elapsed,
            "p50": percentile(lat, 50) if lat else None,
            "p95": percentile(lat, 95) if lat else None,
            "p99": percentile(lat, 99) if lat else None,
            "5xx": sum(o["5xx"] for o in ops.values()),
            "5xx_outside_faults": sum(o["5xx_outside_faults"] for o in ops.values()),
            "no_answer": sum(o["no_answer"] for o in ops.values()),
            "no_answer_outside_faults": sum(o["no_answer_outside_faults"] for o in ops.values()),
        },
        "tasks_sent": sum(len(c.sent) for c in clients),
        "drained_seconds": drained,
        "findings": [f.__dict__ for f in findings],
        "integrity": integrity,
        "server_log": log,
    }


# --- reporting --------------------------------------------------------------------------


def _ms(value) -> str:
    return f"{value:8.1f}" if value is not None else "       -"


def print_run(result: dict) -> None:
    faults = ", ".join(f["kind"] for f in result["faults"]) or "no faults"
    print(
        f"\n== {result['db']}: {result['clients']} clients x {result['seconds']:.0f} s, {faults} "
        f"(started {result['started']}; load {' '.join(f'{x:.1f}' for x in result['load'][0])} before, "
        f"{' '.join(f'{x:.1f}' for x in result['load'][1])} at the end; client CPU "
        f"{result['client_cpu_share'] * 100:.0f}% of a core)"
    )
    print(
        f"{'operation':<11}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'5xx':>6}{'no answer':>10}{'replays':>8}  refusals (expected 4xx)"
    )
    for op, o in result["ops"].items():
        refusals = ", ".join(f"{k}: {v}" for k, v in sorted(o["refusals"].items())) or "-"
        print(
            f"{op:<11}{o['requests']:>9}{o['per_second']:>8.1f}{_ms(o['p50'])} {_ms(o['p95'])} {_ms(o['p99'])}"
            f"{o['5xx']:>6}{o['no_answer']:>10}{o['replays']:>8}  {refusals}"
        )
    a = result["all"]
    print(
        f"{'all':<11}{a['requests']:>9}{a['per_second']:>8.1f}{_ms(a['p50'])} {_ms(a['p95'])} {_ms(a['p99'])}"
        f"{a['5xx']:>6}{a['no_answer']:>10}"
    )
    print(
        f"5xx outside a fault: {a['5xx_outside_faults']}; no answer outside a fault: "
        f"{a['no_answer_outside_faults']}"
    )
    for fault in result["faults"]:
        first = (
            ""
            if fault["kind"] in PROCESS_FAULTS
            else "no probe failed, "
            if fault["first_failure"] is None
            else f"first failed probe after {fault['first_failure']:.2f} s, "
        )
        back = f"{fault['back']:.1f} s" if fault["back"] is not None else "never"
        if fault["kind"] not in PROCESS_FAULTS and fault["first_failure"] is None:
            back = "- (it never stopped)"
        if fault.get("clients_back") is not None:
            back += (
                f"; the clients: {sum(fault['failed_per_second'].values())} failed requests, the first "
                f"answer after the last of them {fault['clients_back']:.1f} s after the fault"
            )
        what = {"agent": "the node registered again", "reconciler": "a new reconciler ran"}.get(
            fault["kind"], "the API answered again"
        )
        print(
            f"fault {fault['kind']} at {fault['offset']:.0f} s ({fault['note']}): {first}{what} after {back}"
        )
    i = result["integrity"]
    drained = (
        f"{result['drained_seconds']:.0f} s"
        if result["drained_seconds"] is not None
        else "NOT within the limit"
    )
    print(
        f"tasks: {i['acknowledged']} acknowledged and not deleted, {i['listed']} listed; all completed "
        f"{drained} after the load stopped"
    )
    db = i.get("db") or {}
    jobs = db.get("jobs", {})
    counters_equal = all(j["counters_equal"] for j in jobs.values()) if jobs else None
    overlaps = Counter()
    for j in jobs.values():
        for kind, found in j["overlaps"].items():
            overlaps[kind] += len(found)
    requeues = sum(j["requeues"] for j in jobs.values())
    running = sum(j["running_attempts"] for j in jobs.values())
    print(
        f"integrity: lost {len(i['lost'])}, duplicated {len(i['duplicated'])}, never sent "
        f"{len(i['never_sent'])}, present though deleted/refused {len(i['present_but_gone'])}, not completed "
        f"{len(i['not_completed'])}, wrong outcome {len(i['wrong_outcome'])}; task counts = listing: "
        f"{'yes' if not i['counts_differ'] else 'NO'}; counters = rows: "
        f"{'yes' if counters_equal else 'NO' if counters_equal is False else '?'}; attempts still running "
        f"{running}; overlapping attempts {overlaps['other']} (+{overlaps['after_cancel']} after a terminate/"
        f"delete); requeues {requeues}"
    )
    log = result["server_log"]
    print(
        f"server log: {log['requests']} requests, 5xx {log['5xx'] or 0}, tracebacks {log['tracebacks']}"
    )
    for line in log["supervisor"][:10]:
        print(f"  {line}")
    problems = integrity_problems(result)
    for problem in problems[:30]:
        print(f"  PROBLEM: {problem}")
    findings = Counter(f"{f['what']} ({f['op']}): {f['detail'][:120]}" for f in result["findings"])
    for what, n in findings.most_common(15):
        print(f"  finding x{n}: {what}")


def integrity_problems(result: dict) -> list[str]:
    i = result["integrity"]
    problems = []
    for key in (
        "lost",
        "duplicated",
        "never_sent",
        "present_but_gone",
        "not_completed",
        "wrong_outcome",
        "counts_differ",
    ):
        problems += [f"{key}: {x}" for x in i[key][:10]]
    db = i.get("db") or {}
    if "error" in db:
        problems.append(f"database check failed: {db['error'][-500:]}")
    for job_id, j in db.get("jobs", {}).items():
        if not j["counters_equal"]:
            problems.append(
                f"{job_id}: counters {j['counters_stored']} rows {j['counters_from_rows']}"
            )
        if j["duplicate_ids"]:
            problems.append(f"{job_id}: duplicate rows {j['duplicate_ids']}")
        if j["running_attempts"]:
            problems.append(f"{job_id}: {j['running_attempts']} attempts still running")
        for o in j["overlaps"]["other"][:5]:
            problems.append(f"{job_id}: overlapping attempts {o}")
    if result["drained_seconds"] is None:
        problems.append("not every task completed within the limit")
    a = result["all"]
    if a["5xx_outside_faults"] or a["no_answer_outside_faults"]:
        problems.append(
            f"{a['5xx_outside_faults']} 5xx and {a['no_answer_outside_faults']} unanswered requests "
            "outside a fault"
        )
    if result["server_log"]["tracebacks"]:
        problems.append(f"{result['server_log']['tracebacks']} tracebacks in the server log")
    problems += result["fault_problems"]
    problems += [
        f"{f['what']} ({f['op']} {f['task']}): {f['detail'][:160]}" for f in result["findings"]
    ][:20]
    return problems


def print_summary(results: list[dict]) -> None:
    print("\n== summary")
    print(
        f"{'run':<34}{'req/s':>7}{'p50':>7}{'p95':>7}{'p99':>8}{'5xx':>5}{'(out)':>6}{'lost':>5}{'dup':>5}"
        f"{'drain s':>8}  time back"
    )
    for r in results:
        name = f"{r['db']} {r['clients']}x{r['seconds']:.0f}s " + (
            "+".join(f["kind"] for f in r["faults"]) or "clean"
        )
        i, a = r["integrity"], r["all"]
        backs = (
            ", ".join(
                f"{f['kind']} {f['back'] or 0:.1f}s"
                + (
                    f" (clients {f['clients_back']:.1f}s)"
                    if f.get("clients_back") is not None
                    else ""
                )
                if f["back"] is not None or f["first_failure"] is None
                else f"{f['kind']} never"
                for f in r["faults"]
            )
            or "-"
        )
        drained = f"{r['drained_seconds']:.0f}" if r["drained_seconds"] is not None else "never"
        print(
            f"{name:<34}{a['per_second']:>7.1f}{a['p50']:>7.0f}{a['p95']:>7.0f}{a['p99']:>8.0f}{a['5xx']:>5}"
            f"{a['5xx_outside_faults']:>6}{len(i['lost']):>5}{len(i['duplicated']):>5}{drained:>8}  {backs}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument(
        "--faults", default="agent,reconciler,web,postgres", help="comma-separated, or none"
    )
    parser.add_argument("--fault-seconds", type=float, default=90)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--drain-timeout", type=float, default=900)
    parser.add_argument("--skip-clean", action="store_true", help="only the fault runs")
    parser.add_argument("--json", default="", help="write every run's figures here")
    parser.add_argument("--keep", action="store_true", help="keep each run's data dir")
    args = parser.parse_args()
    faults = [] if args.faults == "none" else [f for f in args.faults.split(",") if f]
    results = []
    for db in args.db.split(","):
        if db == "postgres" and (reason := unavailable_reason()):
            print(f"\n== postgres: skipped ({reason})")
            continue
        plans = [] if args.skip_clean else [([], args.seconds)]
        wanted = [f for f in faults if f != "postgres" or db == "postgres"]
        if wanted:
            plans.append((wanted, args.fault_seconds))
        for plan, seconds in plans:
            run = Run(
                db=db,
                clients=args.clients,
                seconds=seconds,
                faults=plan,
                nodes=args.nodes,
                slots=args.slots,
                jobs=[f"{JOB_PREFIX}{i}" for i in range(args.jobs)],
                seed=args.seed,
                keep=args.keep,
            )
            print(
                f"\n-- {db}: {args.clients} clients x {seconds:.0f} s, faults: {'+'.join(plan) or 'none'} ...",
                flush=True,
            )
            result = soak_once(run, drain_timeout=args.drain_timeout)
            results.append(result)
            print_run(result)
            sys.stdout.flush()
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    print_summary(results)
    sys.exit(1 if any(integrity_problems(r) for r in results) else 0)


if __name__ == "__main__":
    main()
