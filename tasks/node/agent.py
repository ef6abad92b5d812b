"""The compute-node agent behind `manage.py runnode`: one process, one node, N task slots.

One loop, one thread: wait until a task process exits or the poll interval passes; report
the exits (tasks.operations.attempts.finish_attempts); every poll interval look at the
node's running attempts in the database to act on terminate, delete, requeue and subtask
assignments, enforce maxWallClockTime and remove queued directories; heartbeat; claim work
for the free slots and start it. Every state change goes through the rules layer; the
agent only runs processes and reports what happened to them.

The node's life: it registers (`starting`), runs the pool's start task in `startup/` (with
waitForSuccess the node waits in `waitingforstarttask`, and a last failure leaves it
`starttaskfailed`), then takes work. At each control pass it reads the node's orders:
reboot, reimage or leave the pool (pending_action) and disabled scheduling. The operation
that ordered it already requeued or terminated the running tasks per its option; the agent
kills what is left, waits for what the option lets finish (taskcompletion; retaineddata:
the tasks' retention too), then carries it out: a reboot or reimage (which first wipes the
node's disk) ends run() with REBOOT, and runnode restarts the process, which registers
again (lastBootTime) and runs the start task again; leaving wipes the disk, calls
leave_pool and ends run() with LEFT (runnode exits 0).

SIGTERM/SIGINT: the running tasks get SIGTERM, then SIGKILL after a grace period, and are
requeued so another node (or this one, restarted) runs them; the node goes offline.
SIGKILL: nothing can be done then; the node's heartbeat stops, another agent (or the
sweep) marks it offline and requeues its tasks, and its task processes die with it (a
parent-death signal) or, for what they started in the background, when it restarts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from tasks.models import Attempt, ComputeNode, NodeDeallocationOption, Pool
from tasks.nodehost import disk, identity, layout, storage
from tasks.nodehost.errors import LaunchError
from tasks.operations import attempts as attempt_ops
from tasks.operations import node_leaving, task_ends, task_tokens
from tasks.operations import nodes as node_ops
from tasks.operations.attempt_rules import SCHEDULABLE_NODE_STATES
from tasks.operations.attempts import AttemptReport

from . import auto_storage, job_tasks, output_files, resource_files, root_turns
from .process import (
    Child,
    command_argv,
    environment,
    exit_code_of,
    exit_status,
    kill_node_processes,
    passed_through,
    reap,
    signal_group,
    spawn,
    wait_exit,
)
from .run_as import download_argv, own_task_dir, program_argv, spawn_user, write_manifest
from .sampling import NodeSampler
from .wakeup import WAKEUP, Wakeups

log = logging.getLogger("batchsite.node")

# How run() ended: stopped (SIGTERM, or the node is gone), restart for a reboot or reimage,
# or left the pool.
STOPPED, REBOOT, LEFT = "stopped", "reboot", "left"
_KILLING_OPTIONS = (NodeDeallocationOption.REQUEUE, NodeDeallocationOption.TERMINATE)


@dataclass
class Run:
    """An attempt this agent is running."""

    attempt_pk: int
    task_pk: int
    kind: str  # "task" | "primary" | "subtask"
    phase: str  # "run" | "coordination" | "waiting" (primary) | "application" | "holding" (subtask)
    slots: int
    task_dir: str
    key: str  # the task directory's key in the task-file storage
    env: dict[str, str]
    command_line: str
    instances: int = 1
    wall_limit: float | None = None
    started: float = field(default_factory=time.monotonic)
    child: Child | None = None
    # Exited coordination commands, kept unreaped so their group (the services they
    # started) stays reachable until the task ends.
    held: list[Child] = field(default_factory=list)
    killing: str = ""  # why the agent killed it: "cancel", "gone", "wallclock", "shutdown"
    coordination_line: str = ""  # a multi-instance task's coordinationCommandLine
    manifest: str = ""  # its resource (or output) files' manifest while they transfer
    user: identity.Identity | None = None  # who its processes run as
    output_files: list = field(
        default_factory=list
    )  # the task's outputFiles (primary and task only)
    # How the command ended, kept while its outputFiles upload (phase "upload"):
    # exit code, user and kernel CPU time.
    command_result: tuple = ()

    @property
    def cwd(self) -> str:
        return f"{self.task_dir}/{layout.WORKING_DIR}"


@dataclass
class StartTask:
    """The pool's start task, run by this agent in the node's startup/ directory."""

    spec: dict
    env: dict[str, str]
    task_dir: str
    key: str
    # "due" (to start, or start again for a retry), "queued" (due, waiting for its turn at
    # running as root: root_turns), "running", "ended" (how it ended is not recorded yet),
    # "done" (no more runs on this boot).
    phase: str = "due"
    retry: bool = False
    child: Child | None = None
    ended: tuple[int | None, str, str] | None = None  # exit code, failure code, failure message
    downloading: bool = False  # the running child downloads its resource files
    manifest: str = ""
    user: identity.Identity | None = None
    turn: int | None = None  # the descriptor holding its turn at running as root

    @property
    def cwd(self) -> str:
        return f"{self.task_dir}/{layout.WORKING_DIR}"


class NodeAgent:
    def __init__(
        self, pool: Pool, *, node_id: str, slots: int, is_dedicated: bool = True, out=None
    ) -> None:
        self.pool, self.node_id, self.slots, self.is_dedicated = pool, node_id, slots, is_dedicated
        self.key = layout.node_key(pool.account.name, pool.pool_id, node_id)
        self.root = layout.node_root(settings.DATA_DIR, pool.account.name, pool.pool_id, node_id)
        # Every path the agent makes, writes or removes is walked from here without
        # following a link (tasks.nodehost.disk): tasks can plant links anywhere below.
        self.nodes = layout.nodes_dir(settings.DATA_DIR)
        self.poll = settings.BATCHSITE_NODE_POLL_SECONDS
        self.heartbeat_every = settings.BATCHSITE_NODE_HEARTBEAT_SECONDS
        self.lost_after = timedelta(seconds=settings.BATCHSITE_NODE_LOST_SECONDS)
        self.grace = settings.BATCHSITE_NODE_KILL_GRACE_SECONDS
        self.publish_every = settings.BATCHSITE_NODE_PUBLISH_SECONDS
        self.storage = storage.task_file_storage()
        # What every task's environment starts from (read once; the agent's environment
        # does not change while it runs).
        self.base_env = passed_through()
        self.node_env = {
            "AZ_BATCH_ACCOUNT_NAME": pool.account.name,
            "AZ_BATCH_POOL_ID": pool.pool_id,
            "AZ_BATCH_NODE_ID": node_id,
            "AZ_BATCH_NODE_IS_DEDICATED": "true" if is_dedicated else "false",
            "AZ_BATCH_NODE_ROOT_DIR": str(self.root),
            "AZ_BATCH_NODE_SHARED_DIR": str(self.root / layout.NODE_SHARED_DIR),
            "AZ_BATCH_NODE_STARTUP_DIR": str(self.root / layout.STARTUP_DIR),
        }
        self.publishing = not storage.is_local_to(self.storage, self.nodes)
        self.out = out
        self.node: ComputeNode | None = None
        self.runs: dict[int, Run] = {}
        self.reports: list[AttemptReport] = []
        self.totals = [0, 0]  # tasks run, succeeded: added to the node at the next heartbeat
        self.stopping = self.signalled = False
        self.outcome = STOPPED
        self.start_task: StartTask | None = None
        self.job_tasks = job_tasks.JobTasks(self)  # job preparation and release tasks
        # Whether the node takes work (idle or running, scheduling enabled, no order):
        # claims are not even tried otherwise.
        self.accepting = False
        self.leaving = False
        self.next_retention_check = 0.0
        self.sampler = NodeSampler()
        self.selector = selectors.DefaultSelector()
        self.wakeups: Wakeups | None = None
        # A wake-up asked the job tasks to look for preparations or releases due: they do
        # once the claim or the kill it was sent for is done (their queries must not come
        # first).
        self.job_tasks_woken = (False, False)
        # On SQLite, the agent's short transactions go ahead of web requests' queue for
        # the write lock (batchsite/sqlite/base.py); other backends have no such flag.
        connection.writes_first = True
        now = time.monotonic()
        self.next_control = self.next_claim = now
        self.next_heartbeat = self.next_lost_check = now + self.heartbeat_every
        self.next_publish = now + self.publish_every

    # --- life ----------------------------------------------------------------------------

    def run(self) -> str:
        """Run the node until it is stopped (SIGTERM/SIGINT, or its node is gone: STOPPED),
        must restart for a reboot or reimage (REBOOT) or has left its pool (LEFT)."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self.selector.register(wake_r, selectors.EVENT_READ, None)
        previous = signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        try:
            self._boot()
            if self.node is not None:
                # Adds, terminates, deletes and requeues wake the loop (the poll stays).
                self.wakeups = Wakeups(
                    self.selector,
                    account_pk=self.pool.account_id,
                    pool_id=self.pool.pool_id,
                    node_pk=self.node.pk,
                )
                self.wakeups.ensure()
            while not self.stopping:
                try:
                    self._iterate(wake_r)
                except DatabaseError as e:
                    # The database went away or a lock timed out: keep the processes,
                    # reconnect and carry on (reports are kept and sent again).
                    log.warning("node %s: database error, retrying: %s", self.node_id, e)
                    self._reconnect()
                except _NodeGone:
                    log.error(
                        "node %s no longer exists (it left its pool, or the pool was deleted); stopping",
                        self.node_id,
                    )
                    self.stopping = True
                except Exception:  # noqa: BLE001 - a bug here must not orphan running tasks
                    log.error("node %s: unexpected error\n%s", self.node_id, traceback.format_exc())
                    time.sleep(1.0)
        finally:
            self._shutdown()
            if self.wakeups is not None:
                self.wakeups.close()
            signal.set_wakeup_fd(previous)
            os.close(wake_r)
            os.close(wake_w)
        return self.outcome

    def _boot(self) -> None:
        """Kill what a previous run of this node left, wipe the disk if a reimage is due,
        make the node's directories, register, and start the pool's start task; retried
        while the database is unreachable."""
        while not self.stopping:
            try:
                killed = kill_node_processes(self.node_id, str(self.root))
                if killed:
                    log.warning(
                        "killed %d processes left behind by a previous run of node %s",
                        killed,
                        self.node_id,
                    )
                previous = ComputeNode.objects.filter(pool=self.pool, node_id=self.node_id).first()
                waiting = False
                if previous is not None and previous.pending_action == ComputeNode.Action.REIMAGE:
                    # The reimage is due, unless this process restarted while it still
                    # waited for the tasks' retention (retaineddata): then it waits on.
                    waiting = (
                        previous.action_option == NodeDeallocationOption.RETAINEDDATA
                        and node_ops.holds_retained_data(previous)
                    )
                    if not waiting:
                        self._wipe_disk()
                        node_leaving.node_disk_wiped(previous)
                disk_error = self._make_dirs()
                note = identity.agent_note()
                if note:
                    log.warning("node %s: %s", self.node_id, note["message"])
                self.node = node_ops.register_node(
                    self.pool,
                    node_id=self.node_id,
                    slots=self.slots,
                    hostname=socket.gethostname(),
                    ip_address=settings.BATCHSITE_NODE_IP,
                    root_dir=str(self.root),
                    agent_pid=os.getpid(),
                    is_dedicated=self.is_dedicated,
                    resume_order=waiting,
                    errors=[note] if note else None,
                )
                if disk_error:
                    node_ops.mark_node_unusable(
                        self.node, code="NodeDiskUnusable", message=disk_error
                    )
                elif self.node.state == ComputeNode.State.STARTING:
                    self._prepare_start_task()
                self.accepting = (
                    self.node.state in SCHEDULABLE_NODE_STATES
                    and self.node.scheduling_enabled
                    and not self.node.pending_action
                )
                self._say(
                    f"node {self.node_id} of pool {self.pool.pool_id}: {self.slots} slots, root {self.root}"
                )
                return
            except DatabaseError as e:
                log.warning(
                    "node %s: database error while registering, retrying: %s", self.node_id, e
                )
                self._reconnect()
                time.sleep(1.0)

    def _make_dirs(self) -> str:
        """The node's directories (workitems/, shared/, startup/), a link a task left in
        the place of one (or of the root) replaced by a real directory (tasks.nodehost.disk);
        the reason they cannot be made, if so."""
        try:
            for name in (layout.WORKITEMS_DIR, layout.NODE_SHARED_DIR, layout.STARTUP_DIR):
                disk.make_dirs(self.nodes, f"{self.key}/{name}")
            self._protect_dirs()
        except (OSError, LaunchError) as e:
            reason = getattr(e, "strerror", None) or getattr(e, "message", None) or e
            return f"The node's directories cannot be made under {self.root}: {reason}."
        return ""

    def _protect_dirs(self) -> None:
        """Others may traverse the nodes' directory and this node's (made before, or by an
        older batchsite), never list or read them; the shared directory is the pool's
        group's (setgid, sticky: each task's files stay its own); the data dir's files (the
        database, the secret key) are the agent's alone."""
        identity.protect_data_dir(str(settings.DATA_DIR))
        os.chmod(self.nodes, disk.DIR_MODE)
        parts = disk.parts_of(self.key)
        for depth in range(1, len(parts) + 1):
            with disk.directory(self.nodes, parts[:depth]) as fd:
                os.fchmod(fd, disk.DIR_MODE)
        with disk.directory(self.nodes, [*parts, layout.WORKITEMS_DIR]) as fd:
            os.fchmod(fd, disk.DIR_MODE)
        with disk.directory(self.nodes, [*parts, layout.NODE_SHARED_DIR]) as fd:
            if identity.is_root():
                disk.own(
                    fd, 0, identity.pool_gid(self.pool.account.name, self.pool.pool_id), 0o3770
                )
            else:
                os.fchmod(fd, 0o700)

    def _wipe_disk(self, *, everything: bool = False) -> None:
        """Remove what the node keeps on its disk (its root's contents, or the root itself),
        never through a link a task left, and its published copies."""
        task_keys = layout.task_keys(self.nodes, self.key)
        if everything:
            disk.remove(self.nodes, self.key)
        else:
            disk.empty(self.nodes, self.key)
        if self.publishing:
            storage.unpublish_dir(self.storage, self.key)
        self._forget_task_users(task_keys)

    def _forget_task_users(self, keys: list[str]) -> None:
        """Remove the task-scope users of task directories that are gone."""
        for key in keys:
            identity.forget_task_user(self.pool.account.name, self.pool.pool_id, key)

    def _stop(self, signum, frame) -> None:
        self.stopping = self.signalled = True

    def _say(self, text: str) -> None:
        if self.out is not None:
            self.out.write(text + "\n")
            self.out.flush()

    def _reconnect(self) -> None:
        with contextlib.suppress(Exception):
            connection.close()
        close_old_connections()
        time.sleep(min(1.0, self.poll * 2))

    # --- the loop ------------------------------------------------------------------------

    def _iterate(self, wake_r: int) -> None:
        now = time.monotonic()
        deadline = min(self.next_control, self.next_heartbeat)
        if self._wants_work():
            deadline = min(deadline, self.next_claim)
        if (
            self.reports
            or any(r.child is not None and r.child.pidfd is None for r in self.runs.values())
            or self._start_task_waiting()
            or self.job_tasks.waiting()
        ):
            # Reports to retry, or a process we cannot wait on (no pidfd): look again soon.
            deadline = min(deadline, now + 0.02)
        for key, _ in self.selector.select(max(0.0, deadline - now)):
            if key.fd == wake_r:
                with contextlib.suppress(OSError):
                    os.read(wake_r, 512)
            elif key.data == WAKEUP:
                self._woken()
        if self.stopping:
            return
        self._collect_exits()
        self.job_tasks.tend()
        if self.start_task is not None and self.start_task.phase != "done":
            self._tend_start_task()
        now = time.monotonic()
        if now >= self.next_control:
            self.next_control = now + self.poll
            self._flush_reports()
            self._control()
        if now >= self.next_heartbeat:
            self.next_heartbeat = now + self.heartbeat_every
            self._heartbeat()
        if self.publishing and now >= self.next_publish:
            self.next_publish = now + self.publish_every
            for run in list(self.runs.values()):
                self._publish(run)
            if self.start_task is not None and self.start_task.child is not None:
                self._publish_startup()
        if self._wants_work() and (self.reports or time.monotonic() >= self.next_claim):
            self._report_and_claim()
        else:
            self._flush_reports()
        if any(self.job_tasks_woken):
            preparations, releases = self.job_tasks_woken
            self.job_tasks_woken = (False, False)
            self.job_tasks.wake(preparations=preparations, releases=releases)
            self.job_tasks.tend()

    def _woken(self) -> None:
        """Work was added to the pool (claim now), or this node's attempts were changed
        (look at them now: terminate, delete, requeue, a subtask handed to it); the job
        preparation and release tasks look after that, in the same pass: for preparations
        when the work is a job's with one, for releases when the node was woken (a job's
        end wakes its nodes)."""
        work, node, preparation = self.wakeups.drain()
        now = time.monotonic()
        self.job_tasks_woken = (
            self.job_tasks_woken[0] or preparation,
            self.job_tasks_woken[1] or node,
        )
        if work:
            self.next_claim = min(self.next_claim, now)
        if node:
            self.next_control = min(self.next_control, now)

    def _free(self) -> int:
        return self.slots - sum(r.slots for r in self.runs.values())

    def _wants_work(self) -> bool:
        return self.accepting and self._free() > 0

    def _report_and_claim(self) -> None:
        """Report what ended and claim work for the free slots in one transaction (half
        the write transactions, which take turns on SQLite: batchsite/sqlite); start the
        work only once the claim is committed."""
        pending, totals = list(self.reports), list(self.totals)
        wanted = self._free()
        try:
            with attempt_ops.agent_pass():
                self._flush_reports()
                claim_due = time.monotonic() >= self.next_claim
                attempts = attempt_ops.claim_work(self.node, limit=wanted) if claim_due else []
                if not attempts and not self.runs and self.node.state == ComputeNode.State.RUNNING:
                    # The node's running -> idle (and its totalTasksRun) at once, with the last
                    # task's end when that is reported here, not at the next heartbeat.
                    self._heartbeat(sample=False)
        except DatabaseError:
            # Rolled back, reports included: send them again.
            self.reports = pending + [r for r in self.reports if r not in pending]
            self.totals = totals
            raise
        if not claim_due:
            return
        for attempt in attempts:
            self._start(attempt)
        # A full claim means more may be waiting: claim again as soon as a slot frees.
        self.next_claim = time.monotonic() + (0 if len(attempts) >= wanted else self.poll)
        if attempts and self.node.state != ComputeNode.State.RUNNING:
            # idle -> running at once; running -> idle waits for the next beat
            self._heartbeat(sample=False)

    # --- starting ------------------------------------------------------------------------

    def _start(self, attempt: Attempt) -> None:
        """Start a claimed attempt. Whatever fails on the way (but the database, whose
        failure gives the attempt back whole) completes it with CommandLaunchFailed: an
        attempt this agent holds but does not run would keep its slots forever."""
        try:
            self._begin(attempt)
        except DatabaseError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure must end the attempt, not wedge it
            log.exception("node %s: attempt %s could not start", self.node_id, attempt.pk)
            run = self.runs.get(attempt.pk) or self._bare_run(attempt)
            self.runs[attempt.pk] = run
            self._launch_failed(
                run, LaunchError("CommandLaunchFailed", f"The task could not start: {error}.")
            )

    def _bare_run(self, attempt: Attempt) -> Run:
        """The least Run that reports a failed start and frees its slots."""
        key = ""
        with contextlib.suppress(Exception):
            key = layout.storage_key(self.key, attempt.job.job_id, attempt.task.task_id)
        return Run(
            attempt_pk=attempt.pk,
            task_pk=attempt.task_id,
            kind="task",
            phase="run",
            slots=attempt.slots,
            task_dir=attempt.task_dir,
            key=key,
            env={},
            command_line="",
        )

    def _begin(self, attempt: Attempt) -> None:
        task, job = attempt.task, attempt.job
        multi = task.spec.get("multiInstanceSettings") or {}
        kind = (
            "subtask"
            if attempt.subtask_id is not None
            else ("primary" if task.number_of_instances > 1 else "task")
        )
        limit = task.max_wall_clock_time.total_seconds() if task.max_wall_clock_time else None
        run = Run(
            attempt_pk=attempt.pk,
            task_pk=task.pk,
            kind=kind,
            phase="run",
            slots=attempt.slots,
            task_dir=attempt.task_dir,
            key=layout.storage_key(self.key, job.job_id, task.task_id),
            env={},
            command_line=task.command_line,
            instances=task.number_of_instances,
            wall_limit=limit,
            coordination_line=multi.get("coordinationCommandLine") or "",
            output_files=[] if kind == "subtask" else task.spec.get("outputFiles") or [],
        )
        # The environment first: it may read the database, and if that fails the attempt
        # is not ours yet, so the next control pass gives it back (requeue) whole.
        self.runs[attempt.pk] = run
        try:
            run.user = identity.run_as(
                task.spec.get("userIdentity"),
                account=self.pool.account.name,
                pool_id=self.pool.pool_id,
                user_accounts=self.pool.spec.get("userAccounts"),
                task_key=run.key,
            )
        except LaunchError as e:
            self._launch_failed(run, e)
            return
        run.env = environment(
            job_settings=job.spec.get("commonEnvironmentSettings"),
            task_settings=task.spec.get("environmentSettings"),
            batch=self._batch_variables(attempt, run),
            base={**self.base_env, **run.user.environment(run.cwd)},
        )
        # Batch downloads a multi-instance task's commonResourceFiles on every instance's
        # node (into its shared directory, the task directory here), its resourceFiles on
        # the primary's only.
        files = (
            []
            if kind == "subtask"
            else [[run.cwd, f] for f in task.spec.get("resourceFiles") or []]
        )
        if kind != "task":
            files = [[run.task_dir, f] for f in multi.get("commonResourceFiles") or []] + files
        if files:
            files = auto_storage.container_urls(files, account=self.pool.account.name)
            run.phase, run.manifest = "download", write_manifest(files, run.user)
            self._spawn(
                run, "", append=False, argv=download_argv(run.manifest, run.user)
            )  # which makes the directories
            return
        self._run_first_command(run)

    def _run_first_command(self, run: Run) -> None:
        if run.kind == "task":
            run.phase = "run"
            self._spawn(run, run.command_line, append=False)  # which makes the directories
            return
        if run.coordination_line:
            run.phase = "coordination"
            self._spawn(run, run.coordination_line, append=False)
            return
        try:
            with disk.directory(
                self.nodes, disk.parts_of(run.key), make=True
            ) as task_dir:  # for what runs later
                disk.make_below(task_dir, layout.WORKING_DIR)
                own_task_dir(task_dir, run.user)
        except OSError as e:
            self._launch_failed(
                run, LaunchError("CommandLaunchFailed", f"The task directory cannot be made: {e}.")
            )
            return
        if run.kind == "primary":
            run.phase = "waiting"
        else:
            # A subtask without a coordination command has nothing to run: it holds its
            # node for the task and succeeds at once.
            run.phase = "holding"
            self.reports.append(AttemptReport(run.attempt_pk, exit_code=0, end_time=_now()))

    def _spawn(
        self,
        run: Run,
        command_line: str,
        *,
        append: bool,
        argv: list[str] | None = None,
        outputs: tuple[str, str] = (layout.STDOUT, layout.STDERR),
    ) -> None:
        """Start a command of the attempt (`argv`, or its command line) in its task
        directory, made (with wd/) on the way in one walk from the nodes' directory: a link
        an earlier task left in the place of the job's directory (or any other) is replaced
        by a real directory, never written through (tasks.nodehost.disk)."""
        try:
            with disk.directory(self.nodes, disk.parts_of(run.key), make=True) as task_dir:
                disk.make_below(task_dir, layout.WORKING_DIR)
                own_task_dir(task_dir, run.user)
                argv = argv or command_argv(command_line, env=run.env, cwd=run.cwd)
                run.child = spawn(
                    argv,
                    env=run.env,
                    cwd=run.cwd,
                    stdout=outputs[0],
                    stderr=outputs[1],
                    append=append,
                    dir_fd=task_dir,
                    **spawn_user(run.user),
                )
            if run.child.pidfd is not None:
                self.selector.register(run.child.pidfd, selectors.EVENT_READ, run.attempt_pk)
        except LaunchError as e:
            self._launch_failed(run, e)
        except OSError as e:  # spawn's own errors are LaunchErrors: this is the directories'
            self._launch_failed(
                run, LaunchError("CommandLaunchFailed", f"The task directory cannot be made: {e}.")
            )
        except Exception as e:  # noqa: BLE001 - a bug here must fail the attempt, not hold its slot
            log.exception("node %s: attempt %s could not start", self.node_id, run.attempt_pk)
            self._launch_failed(
                run, LaunchError("CommandLaunchFailed", f"The command could not start: {e}.")
            )

    def _launch_failed(self, run: Run, error: LaunchError) -> None:
        if run.child is not None:  # it started before the failure: it must not run on unseen
            child, run.child = run.child, None
            if child.pidfd is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(child.pidfd)
            reap(child)
        self._write_failure(run.key, error.message)
        self._end(
            run,
            AttemptReport(
                run.attempt_pk,
                failure_code=error.code,
                failure_message=error.message,
                end_time=_now(),
            ),
        )

    def _write_failure(self, key: str, message: str) -> None:
        """Say why a command could not start in the stderr.txt of the directory `key` (a
        task's, or startup/), beside an empty stdout.txt, as its output; the failure may
        come before the directories were made. Never through a link (tasks.nodehost.disk)."""
        if not key:
            return  # a start that failed before its directory was known
        with (
            contextlib.suppress(OSError, ValueError),
            disk.directory(self.nodes, disk.parts_of(key), make=True) as directory,
        ):
            disk.make_below(directory, layout.WORKING_DIR)
            os.close(disk.open_output(directory, layout.STDOUT, append=True))
            with open(disk.open_output(directory, layout.STDERR, append=True), "a") as err:
                err.write(f"batchsite: {message}\n")

    def _batch_variables(self, attempt: Attempt, run: Run) -> dict[str, str]:
        task, job = attempt.task, attempt.job
        env = {
            **self.node_env,
            "AZ_BATCH_JOB_ID": job.job_id,
            "AZ_BATCH_TASK_ID": task.task_id,
            "AZ_BATCH_TASK_DIR": run.task_dir,
            "AZ_BATCH_TASK_WORKING_DIR": run.cwd,
            **job_tasks.task_variables(job, str(self.root)),
            **task_tokens.task_environment(attempt),
        }
        if run.kind != "task":
            hosts = _instance_hosts(task.pk)
            master = hosts[0] if hosts else settings.BATCHSITE_NODE_IP
            env.update(
                {
                    "AZ_BATCH_HOST_LIST": ",".join(hosts),
                    "AZ_BATCH_NODE_LIST": ";".join(hosts),
                    "AZ_BATCH_MASTER_NODE": f"{master}:6000",
                    "AZ_BATCH_IS_CURRENT_NODE_MASTER": "true" if run.kind == "primary" else "false",
                    # The same path on every node, relative to its root: the task directory.
                    "AZ_BATCH_TASK_SHARED_DIR": run.task_dir,
                }
            )
        return env

    # --- the start task ------------------------------------------------------------------

    def _prepare_start_task(self) -> None:
        """The pool's start task is due on this (re)started node: in startup/, with the
        start task's environment (no job or task variables; AZ_BATCH_TASK_DIR is startup/,
        AZ_BATCH_TASK_WORKING_DIR its wd/)."""
        spec = self.pool.spec.get("startTask") or {}
        task_dir = str(self.root / layout.STARTUP_DIR)
        env = environment(
            job_settings=None,
            task_settings=spec.get("environmentSettings"),
            batch={
                **self.node_env,
                "AZ_BATCH_TASK_DIR": task_dir,
                "AZ_BATCH_TASK_WORKING_DIR": f"{task_dir}/{layout.WORKING_DIR}",
            },
            base=self.base_env,
        )
        self.start_task = StartTask(
            spec=spec, env=env, task_dir=task_dir, key=layout.startup_key(self.key)
        )
        self._tend_start_task()

    def _start_task_waiting(self) -> bool:
        """The start task has a step to retry soon: a start or an end not recorded yet, or a
        process that cannot be waited on."""
        st = self.start_task
        return st is not None and (
            st.phase in ("due", "ended") or (st.child is not None and st.child.pidfd is None)
        )

    def _tend_start_task(self) -> None:
        """Move the start task on: record its start and spawn it, see it exit, record how it
        ended (start_task_ended decides on a retry). Each step that writes is retried at the
        next pass when the database fails."""
        st = self.start_task
        if st.phase in ("due", "queued") and st.turn is None:
            if identity.runs_as_root(st.spec.get("userIdentity")):
                # Another node's root start task may be changing this host (installing
                # packages): this one starts when that one has ended.
                st.turn = root_turns.take_turn()
                if st.turn is None:
                    st.phase = "queued"  # tried again at the next pass, not every 20 ms
                    return
            st.phase = "due"
        if st.phase == "due":
            node_ops.start_task_started(self.node, retry=st.retry)
            st.phase = "running"
            self._spawn_start_task(st)
        if st.phase == "running" and st.child is not None and exit_status(st.child) is not None:
            child, st.child = st.child, None
            if child.pidfd is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(child.pidfd)
            code, _, _ = reap(child)
            if st.downloading:
                st.downloading = False
                _remove_manifest(st)
                if code == 0:
                    self._spawn_start_task(st, command=True)
                else:
                    failure, message, _ = resource_files.failure_of(
                        code, f"{st.task_dir}/{layout.STDERR}"
                    )
                    st.ended, st.phase = (None, failure, message), "ended"
                    self._publish_startup()
            else:
                st.ended, st.phase = (code, "", ""), "ended"
                self._publish_startup()
        if st.phase == "ended":
            root_turns.end_turn(st.turn)
            st.turn = None
            code, failure_code, failure_message = st.ended
            retry = node_ops.start_task_ended(
                self.node,
                exit_code=code,
                failure_code=failure_code,
                failure_message=failure_message,
            )
            st.ended = None
            if retry and not self.stopping:
                st.phase, st.retry = "due", True
                self._tend_start_task()
            else:
                st.phase = "done"
                self._refresh_orders()

    def _spawn_start_task(self, st: StartTask, *, command: bool = False) -> None:
        """Start the start task: its resource files' download first, if it has any (then
        `command` starts the command line once they are in place)."""
        files = [] if command else [[st.cwd, f] for f in st.spec.get("resourceFiles") or []]
        try:
            if st.user is None:
                # Batch's start task runs as a non-admin auto-user of its own unless told.
                st.user = identity.run_as(
                    st.spec.get("userIdentity"),
                    account=self.pool.account.name,
                    pool_id=self.pool.pool_id,
                    user_accounts=self.pool.spec.get("userAccounts"),
                    task_key=st.key,
                    default_scope=identity.TASK,
                )
                st.env.update(st.user.environment(st.cwd))
            # startup/ and its wd/, a link an earlier run's tasks left there replaced.
            with disk.directory(self.nodes, disk.parts_of(st.key), make=True) as startup:
                disk.make_below(startup, layout.WORKING_DIR)
                # The pool's tasks may read what the start task leaves (its group's).
                own_task_dir(startup, st.user, mode=0o750)
                if files:
                    files = auto_storage.container_urls(files, account=self.pool.account.name)
                    st.manifest, st.downloading = write_manifest(files, st.user), True
                    argv = download_argv(st.manifest, st.user)
                else:
                    argv = command_argv(st.spec.get("commandLine") or "", env=st.env, cwd=st.cwd)
                st.child = spawn(
                    argv,
                    env=st.env,
                    cwd=st.cwd,
                    stdout=layout.STDOUT,
                    stderr=layout.STDERR,
                    dir_fd=startup,
                    **spawn_user(st.user),
                )
        except Exception as e:  # noqa: BLE001 - a start task that cannot start must end, not hold the node
            error = (
                e
                if isinstance(e, LaunchError)
                else LaunchError(
                    "CommandLaunchFailed",
                    f"The start task could not start: {getattr(e, 'strerror', None) or e}.",
                )
            )
            self._write_failure(st.key, error.message)
            st.ended, st.phase = (None, error.code, error.message), "ended"
            self._publish_startup()
            return
        if st.child.pidfd is not None:
            self.selector.register(st.child.pidfd, selectors.EVENT_READ, "start")

    def _publish_startup(self) -> None:
        """The start task's directory, published like a task's (the node files API reads it)."""
        if self.publishing:
            self._publish_dir(layout.startup_key(self.key))

    def _refresh_orders(self) -> node_ops.NodeOrders:
        orders = node_ops.get_node_orders(self.node)
        if orders is None:
            raise _NodeGone()
        self.accepting = orders.accepts_work
        return orders

    # --- exits ---------------------------------------------------------------------------

    def _collect_exits(self) -> None:
        if not self._collect_once():
            return
        # Short tasks started together end together: wait a moment for the rest, so one
        # report (one write transaction) covers them all, but only until they have exited
        # (their pidfds wake the selector): a fixed sleep kept the slots empty longer.
        deadline = time.monotonic() + 0.002
        while any(
            r.child is not None and r.child.pidfd is not None and time.monotonic() - r.started < 1.0
            for r in self.runs.values()
        ):
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                break
            self._collect_once()

    def _collect_once(self) -> int:
        exited = 0
        for run in list(self.runs.values()):
            child = run.child
            if child is None or exit_status(child) is None:
                continue
            if child.pidfd is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(child.pidfd)
            run.child = None
            self._exited(run, child)
            exited += 1
        return exited

    def _exited(self, run: Run, child: Child) -> None:
        status = child.exited_status
        if run.phase == "download":
            code, _, _ = reap(child)
            _remove_manifest(run)
            if code == 0:
                self._run_first_command(run)
            else:
                failure, message, index = resource_files.failure_of(
                    code, f"{run.task_dir}/{layout.STDERR}"
                )
                details = [] if index is None else [{"name": "resourceFile", "value": str(index)}]
                self._end(
                    run,
                    AttemptReport(
                        run.attempt_pk,
                        failure_code=failure,
                        failure_message=message,
                        failure_details=details,
                        end_time=_now(),
                    ),
                )
            return
        if run.phase == "upload":
            self._uploaded(run, child)
            return
        coordination = run.phase == "coordination"
        if coordination and not run.killing and exit_code_of(status) == 0:
            # The coordination command succeeded: keep its group (services it started)
            # until the task ends, and go on.
            run.held.append(child)
            if run.kind == "primary":
                run.phase = "waiting"
            else:
                run.phase = "holding"
                self.reports.append(AttemptReport(run.attempt_pk, exit_code=0, end_time=_now()))
            return
        code, user, kernel = reap(child)
        if not run.killing and not coordination and self._upload(run, (code, user, kernel)):
            return
        self._end(
            run,
            AttemptReport(
                run.attempt_pk,
                exit_code=code,
                timed_out=run.killing == "wallclock",
                user_cpu=user,
                kernel_cpu=kernel,
                end_time=_now(),
            ),
        )

    def _upload(self, run: Run, result: tuple) -> bool:
        """Start uploading the outputFiles the command's exit code calls for, in the task's
        session (tasks/node/output_files.py): the attempt is reported when it exits. False
        when there is nothing to upload."""
        chosen = output_files.wanted(run.output_files, exit_code=result[0])
        if not chosen:
            return False
        indexed = [[i, f] for i, f in enumerate(run.output_files) if f in chosen]
        run.phase, run.command_result = "upload", result
        run.manifest = write_manifest(
            {"taskDir": run.task_dir, "workingDir": run.cwd, "outputFiles": indexed}, run.user
        )
        self._spawn(
            run,
            "",
            append=False,
            argv=program_argv(output_files, run.manifest, run.user),
            outputs=(layout.UPLOAD_OUT, layout.UPLOAD_ERR),
        )
        return True

    def _uploaded(self, run: Run, child: Child) -> None:
        """The upload ended: the attempt ends with the command's exit code, and with
        Batch's file upload failure when the upload failed (not retried)."""
        code, _, _ = reap(child)
        _remove_manifest(run)
        exit_code, user, kernel = run.command_result
        report = AttemptReport(
            run.attempt_pk,
            exit_code=exit_code,
            timed_out=run.killing == "wallclock",
            user_cpu=user,
            kernel_cpu=kernel,
            end_time=_now(),
        )
        if code != 0 and not run.killing:
            report.failure_code, report.failure_message, failed = output_files.failure_of(
                code, f"{run.task_dir}/{layout.UPLOAD_ERR}"
            )
            report.failure_details = [{"name": "outputFile", "value": str(i)} for i in failed]
        self._end(run, report)

    def _end(self, run: Run, report: AttemptReport | None) -> None:
        """The attempt is over here: release everything it holds and report it."""
        _remove_manifest(run)
        for held in run.held:
            reap(held)
        run.held = []
        self.runs.pop(run.attempt_pk, None)
        if report is not None and run.killing not in ("gone", "shutdown"):
            if run.user is not None:
                report.run_as = run.user.label
            self.reports.append(report)
        if self.publishing and run.killing != "gone":
            self._publish(run)

    def _flush_reports(self) -> None:
        if not self.reports:
            return
        pending, self.reports = self.reports, []
        try:
            result = attempt_ops.finish_attempts(pending)
        except DatabaseError:
            self.reports = pending + self.reports
            raise
        deferred = set(result.deferred)
        self.reports = [r for r in pending if r.attempt_pk in deferred] + self.reports
        self.totals[0] += result.run
        self.totals[1] += result.succeeded
        if result.run:
            # A slot came free in the database: look for work at once.
            self.next_claim = min(self.next_claim, time.monotonic())

    # --- control -------------------------------------------------------------------------

    def _control(self) -> None:
        """Act on what others changed: the node's orders (reboot, reimage, leave the pool,
        scheduling), terminate/delete/requeue of our attempts, subtasks assigned to us,
        primaries whose subtasks are ready; wall-clock limits; cleanups."""
        orders = self._refresh_orders()
        if orders.pending_action == ComputeNode.Action.REMOVE and not self.leaving:
            node_ops.start_leaving_pool(self.node)  # requeues or terminates per the option
            self.leaving = True
        elif orders.option in _KILLING_OPTIONS and self.runs:
            # What the ordering operation could not settle (rows busy then).
            node_ops.settle_node_tasks(self.node)
        # With each attempt, its task's maxWallClockTime as it is now: an Update Task
        # applies to the running attempt (measured from its start), as in Batch.
        rows = {
            pk: (cancel, subtask_id, wall)
            for pk, cancel, subtask_id, wall in Attempt.objects.filter(
                node_id=self.node.pk, outcome=Attempt.Outcome.RUNNING
            ).values_list("pk", "cancel_requested", "subtask_id", "task__max_wall_clock_time")
        }
        reported = {r.attempt_pk for r in self.reports}
        for pk, run in list(self.runs.items()):
            if pk not in rows:
                if pk not in reported:
                    self._kill(run, "gone")  # deleted, requeued, or ended with its task
            elif rows[pk][0] and not run.killing:
                self._kill(run, "cancel")  # terminate (or delete of its job)
        now = time.monotonic()
        for run in list(self.runs.values()):
            if run.attempt_pk in rows:
                wall = rows[run.attempt_pk][2]
                run.wall_limit = wall.total_seconds() if wall else None
            if (
                run.wall_limit is not None
                and not run.killing
                and now - run.started > run.wall_limit
            ):
                self._kill(run, "wallclock")
            elif run.wall_limit is not None and not run.killing:
                # Look again when it runs out, however long the poll.
                self.next_control = min(self.next_control, run.started + run.wall_limit + 0.01)
        reported = {r.attempt_pk for r in self.reports}  # the kills above report too
        unknown = [pk for pk in rows if pk not in self.runs and pk not in reported]
        strays = []
        for pk in unknown:
            if rows[pk][1] is None:
                strays.append(pk)  # a claim of ours this loop never started: give it back
                continue
            if self._free() <= 0:
                break
            attempt = Attempt.objects.select_related("task", "job").filter(pk=pk).first()
            if attempt is not None and attempt_ops.start_subtask(attempt):
                self._start(attempt)
        if strays:
            task_ends.requeue_attempts(strays)
        for run in list(self.runs.values()):
            if run.kind == "primary" and run.phase == "waiting" and not run.killing:
                if attempt_ops.subtasks_ready(run.task_pk, run.instances):
                    run.phase = "application"
                    self._spawn(run, run.command_line, append=True)
        self._cleanups()
        if orders.pending_action and not (self.runs or self.reports or rows):
            self._carry_out(orders)

    def _carry_out(self, orders: node_ops.NodeOrders) -> None:
        """Nothing runs any more: reboot, reimage or leave, once a retaineddata option's
        retention has passed too (reimage and leave take the files with them)."""
        action = orders.pending_action
        if (
            orders.option == NodeDeallocationOption.RETAINEDDATA
            and action != ComputeNode.Action.REBOOT
        ):
            if time.monotonic() < self.next_retention_check:
                return
            self.next_retention_check = time.monotonic() + self.heartbeat_every
            if node_ops.holds_retained_data(self.node):
                return
        self.outcome = LEFT if action == ComputeNode.Action.REMOVE else REBOOT
        self.stopping = True

    def _kill(self, run: Run, why: str) -> None:
        """Kill the attempt's processes and whole process groups now (SIGKILL)."""
        run.killing = why
        if run.child is not None:
            signal_group(run.child, signal.SIGKILL)
            child, run.child = run.child, None
            if child.pidfd is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(child.pidfd)
            # Seen exited, reap's own kill of the group does not walk every process on
            # the host again for strays (which the kill above already reached).
            wait_exit(child)
            code, user, kernel = reap(child)
            report = AttemptReport(
                run.attempt_pk,
                exit_code=code,
                timed_out=why == "wallclock",
                user_cpu=user,
                kernel_cpu=kernel,
                end_time=_now(),
            )
        else:
            report = AttemptReport(
                run.attempt_pk, exit_code=None, timed_out=why == "wallclock", end_time=_now()
            )
        self._end(run, report)

    def _cleanups(self) -> None:
        cleanups = node_ops.pending_cleanups(self.node)
        if not cleanups:
            return
        busy = {r.task_dir for r in self.runs.values()}
        root = self.node.root_dir.rstrip("/") + "/"  # every cleanup's directory is below it
        for cleanup in cleanups:
            if cleanup.task_dir in busy:
                continue  # the task runs here again (reactivated): its new files stay
            key = f"{self.key}/{cleanup.task_dir[len(root) :]}"
            try:
                # Walked from the nodes' directory: if a task swapped a link in for the
                # job's directory (or any above), nothing is removed through it.
                disk.remove(self.nodes, key)
            except ValueError:
                continue  # not a task directory of the layout: nothing of ours to remove
            if self.publishing:
                storage.unpublish_dir(self.storage, key)
            self._forget_task_users([key])
        node_ops.complete_cleanups([c.pk for c in cleanups])

    def _heartbeat(self, *, sample: bool = True) -> None:
        """Tell the database the node is alive, with its CPU and memory samples; without
        them (`sample` False: the node keeps its last ones) for a node's state change
        between beats, which comes right after a start or an end: the sample walks the
        host's processes (tasks.node.sampling: ~10 ms of CPU at load 5 on 2 CPUs, beside
        the process just started)."""
        run, succeeded = self.totals
        cpu, memory = self.sampler.sample() if sample else (None, None)
        node = node_ops.heartbeat_node(
            self.node,
            running=bool(self.runs),
            tasks_run=run,
            tasks_succeeded=succeeded,
            cpu_percent=cpu,
            memory_bytes=memory,
        )
        if node is None:
            raise _NodeGone()
        self.totals = [0, 0]
        if self.wakeups is not None:
            self.wakeups.ensure()  # listen again after the database came back
        if time.monotonic() >= self.next_lost_check:
            self.next_lost_check = time.monotonic() + self.heartbeat_every
            # A lost node on this host leaves its task processes here: kill them before
            # its tasks are requeued, so none runs twice at once.
            for lost in node_ops.lost_nodes(
                lost_after=self.lost_after, hostname=socket.gethostname()
            ):
                kill_node_processes(lost.node_id, lost.root_dir)
            node_ops.mark_lost_nodes_offline(lost_after=self.lost_after)

    def _publish(self, run: Run) -> None:
        if not run.key:
            return  # a start that failed before its storage key was known
        self._publish_dir(run.key)

    def _publish_dir(self, key: str) -> None:
        """Copy the directory `key` of this node's disk into the shared storage under the
        same key."""
        with contextlib.suppress(OSError):
            # Only regular files, never through a link (storage.publish_dir).
            storage.publish_dir(self.storage, self.nodes, key)

    # --- stopping ------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Stop what still runs (SIGTERM, then SIGKILL after the grace period), report what
        finished on its own, then finish as the run ended: stopped, the rest is requeued and
        the node goes offline; restarting (reboot, reimage), nothing else (the node keeps
        its state until it registers again); left, the node's disk is wiped and it leaves
        its pool."""
        if self.signalled and self.outcome == REBOOT:
            self.outcome = STOPPED  # stopped while about to restart: stop
        with contextlib.suppress(Exception):
            self._collect_exits()  # what ended before the stop is reported, not requeued
        self.job_tasks.shutdown()
        start_child = self.start_task.child if self.start_task is not None else None
        live = [r for r in self.runs.values() if r.child is not None or r.held]
        for child in [c for r in live for c in ([r.child] if r.child else []) + r.held] + [
            c for c in (start_child,) if c is not None
        ]:
            signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and (
            any(r.child and exit_status(r.child) is None for r in live)
            or (start_child is not None and exit_status(start_child) is None)
        ):
            time.sleep(0.02)
        for run in list(self.runs.values()):
            run.killing = run.killing or "shutdown"
            if run.child is not None:
                signal_group(run.child, signal.SIGKILL)
                reap(run.child)
                run.child = None
            self._end(run, None)
        if start_child is not None:
            signal_group(start_child, signal.SIGKILL)
            reap(start_child)
            self.start_task.child = None
            _remove_manifest(self.start_task)
            self._publish_startup()
        if self.node is None:
            return
        for _ in range(20):
            try:
                self._flush_reports()
                if not self.reports:
                    if self.outcome == STOPPED and not node_ops.stop_node(self.node):
                        break
                    if self.outcome == LEFT:
                        self._wipe_disk(everything=True)
                        node_leaving.leave_pool(self.node)
                    if self.outcome != STOPPED:
                        break
            except (DatabaseError, node_leaving.NodeStillBusy) as e:
                log.warning("node %s: could not finish yet: %s", self.node_id, e)
                self._reconnect()
            time.sleep(0.1)
        self._say(
            {
                STOPPED: f"node {self.node_id} stopped",
                REBOOT: f"node {self.node_id} restarting",
                LEFT: f"node {self.node_id} left pool {self.pool.pool_id}",
            }[self.outcome]
        )


class _NodeGone(Exception):
    pass


def _now():
    from django.utils import timezone

    return timezone.now()


def _remove_manifest(run: Run | StartTask) -> None:
    if run.manifest:
        with contextlib.suppress(OSError):
            os.unlink(run.manifest)
        run.manifest = ""


def _instance_hosts(task_pk: int) -> list[str]:
    """The IP addresses of a multi-instance task's nodes, the primary's first."""
    rows = Attempt.objects.filter(task_id=task_pk, outcome=Attempt.Outcome.RUNNING).values_list(
        "subtask_id", "node__ip_address"
    )
    ordered = sorted(rows, key=lambda r: -1 if r[0] is None else r[0])
    return [ip or "127.0.0.1" for _, ip in ordered]
