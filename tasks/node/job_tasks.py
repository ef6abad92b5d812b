"""The job preparation and release tasks an agent runs on its node (tasks.node.agent calls
`JobTasks.tend` at every pass of its loop).

Before the node claims a job's tasks the job's preparation runs here once (the claim
leaves the job's tasks alone until it lets them: tasks.operations.job_preparation); when
the job ends, its release runs here once the job's tasks on this node have ended. Both run
as the pool's non-admin auto-user unless their userIdentity says otherwise, in
`workitems/<job>/job-1/jobpreparation` and `.../jobrelease` (stdout.txt, stderr.txt, wd/),
after their resourceFiles are downloaded, with the job's commonEnvironmentSettings and
their own environmentSettings. Every state change goes through the rules layer; this
module only runs the processes and reports how they ended.

Crash safety: the records say what ran. An agent that dies mid-preparation restarts as a
new boot of the node, on which the record no longer stands, so the preparation runs again
before the job's next task here (as Batch reruns one a reboot interrupted); a release
interrupted that way runs again too (releases_due). A node that is removed takes its
records with it, and an offline one is not waited for (job_ends.releases_pending).
A database error leaves the process running: its end is reported at a later pass.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import time
from dataclasses import dataclass

from django.db import DatabaseError

from tasks.models import Job, JobPreparation
from tasks.nodehost import disk, identity, layout
from tasks.nodehost.errors import LaunchError
from tasks.operations import job_ends
from tasks.operations import job_preparation as ops

from . import auto_storage, resource_files, root_turns
from .process import (
    Child,
    command_argv,
    environment,
    exit_status,
    reap,
    signal_group,
    spawn,
)
from .run_as import download_argv, own_task_dir, spawn_user, write_manifest

log = logging.getLogger("batchsite.node")
PREPARATION, RELEASE = "preparation", "release"
CHECK_SECONDS = 1.0  # the longest an agent goes without asking what it must run


def task_dir(root: str, job_id: str, kind: str) -> str:
    name = job_ends.PREPARATION_ID if kind == PREPARATION else job_ends.RELEASE_ID
    return layout.task_dir(root, job_id, name)


def task_variables(job: Job, root: str) -> dict[str, str]:
    """AZ_BATCH_JOB_PREP_DIR and AZ_BATCH_JOB_PREP_WORKING_DIR, which Batch gives the tasks
    of a job with a preparation task (not the preparation itself)."""
    if job_ends.PREPARATION not in job.spec:
        return {}
    prep = task_dir(root, job.job_id, PREPARATION)
    return {
        "AZ_BATCH_JOB_PREP_DIR": prep,
        "AZ_BATCH_JOB_PREP_WORKING_DIR": f"{prep}/{layout.WORKING_DIR}",
    }


@dataclass
class JobTaskRun:
    kind: str
    record_pk: int
    job_pk: int
    job_id: str
    spec: dict
    task_dir: str
    key: str
    env: dict
    user: identity.Identity | None = None
    child: Child | None = None
    downloading: bool = False
    manifest: str = ""
    limit: float | None = None
    started: float = 0.0
    timed_out: bool = False
    turn: int | None = None  # the descriptor holding its turn at running as root (root_turns)

    @property
    def cwd(self) -> str:
        return f"{self.task_dir}/{layout.WORKING_DIR}"


class JobTasks:
    """The preparation and release runs of one agent."""

    def __init__(self, agent) -> None:
        self.agent = agent
        self.runs: dict[tuple[str, int], JobTaskRun] = {}
        self.ended: list[
            tuple[JobTaskRun, int | None, str, str]
        ] = []  # to report (retried on database errors)
        self.next_check = 0.0
        # What wake-ups asked to look for before the next check: a job with a preparation
        # task got active tasks (`work` for it); a job may have ended (`node`).
        self.woken_preparations = self.woken_releases = False

    def busy_jobs(self) -> set[int]:
        return {run.job_pk for run in self.runs.values()}

    def tend(self) -> None:
        """See which runs ended (no database), report them, and every CHECK_SECONDS (or when
        woken for it) start what is due."""
        self._collect()
        self._report()
        if time.monotonic() >= self.next_check:
            # A query each for preparations and releases: both at most once a second (the
            # safety net), and one of them sooner when a wake-up says it may be due.
            self.next_check = time.monotonic() + max(self.agent.poll, CHECK_SECONDS)
            self.woken_preparations = self.woken_releases = False
            self._start_due()
        elif self.woken_preparations or self.woken_releases:
            preparations, releases = self.woken_preparations, self.woken_releases
            self.woken_preparations = self.woken_releases = False
            self._start_due(preparations=preparations, releases=releases)

    def wake(self, *, preparations: bool, releases: bool) -> None:
        """Look at the next tend, not at the next check: for preparations due (tasks were
        added to a job with a preparation task), for releases due (the node's attempts
        changed, which a job's end does). Every other wake-up (tasks added to jobs without
        a preparation task: most of them) costs no query here."""
        self.woken_preparations |= preparations
        self.woken_releases |= releases

    def waiting(self) -> bool:
        """A run to look at soon: an end not reported yet, or a process without a pidfd."""
        return bool(self.ended) or any(
            r.child is not None and r.child.pidfd is None for r in self.runs.values()
        )

    # --- starting ------------------------------------------------------------------------

    def _start_due(self, *, preparations: bool = True, releases: bool = True) -> None:
        agent = self.agent
        if agent.node is None:
            return
        if preparations and agent.accepting:
            held = frozenset(run.job_pk for run in self.runs.values() if run.kind == PREPARATION)
            for job in ops.preparations_due(agent.node, held=held):
                if job.pk in self.busy_jobs():
                    continue
                spec = job.spec.get(job_ends.PREPARATION) or {}
                turn = None
                if identity.runs_as_root(spec.get("userIdentity")):
                    # As a root start task does: another node's may be changing this host.
                    turn = root_turns.take_turn()
                    if turn is None:
                        continue  # looked at again at the next check
                record = ops.start_job_preparation(job, agent.node, held=held)
                if record is None:
                    root_turns.end_turn(turn)
                else:
                    self._begin(PREPARATION, record, job, turn=turn)
        if not releases:
            return
        running_jobs = {run.key.split("/")[-3] for run in agent.runs.values() if run.key}
        for record in ops.releases_due(agent.node):
            job = record.job
            if job.pk in self.busy_jobs() or job.job_id in running_jobs:
                continue  # the release runs after the job's tasks (and its preparation) here ended
            if ops.start_job_release(record, agent.node):
                self._begin(RELEASE, record, job)

    def _begin(
        self, kind: str, record: JobPreparation, job: Job, *, turn: int | None = None
    ) -> None:
        agent = self.agent
        spec = job.spec.get(job_ends.PREPARATION if kind == PREPARATION else job_ends.RELEASE) or {}
        directory = task_dir(str(agent.root), job.job_id, kind)
        name = job_ends.PREPARATION_ID if kind == PREPARATION else job_ends.RELEASE_ID
        run = JobTaskRun(
            kind=kind,
            record_pk=record.pk,
            job_pk=job.pk,
            job_id=job.job_id,
            spec=spec,
            task_dir=directory,
            key=layout.storage_key(agent.key, job.job_id, name),
            env={},
            limit=(
                ops.preparation_wall_clock_seconds(spec)
                if kind == PREPARATION
                else ops.release_wall_clock_seconds(spec)
            ),
            turn=turn,
        )
        self.runs[(kind, record.pk)] = run
        batch = {
            **agent.node_env,
            "AZ_BATCH_JOB_ID": job.job_id,
            "AZ_BATCH_TASK_ID": spec.get("id") or name,
            "AZ_BATCH_TASK_DIR": run.task_dir,
            "AZ_BATCH_TASK_WORKING_DIR": run.cwd,
        }
        if kind == RELEASE:
            batch.update(task_variables(job, str(agent.root)))
        try:
            run.user = identity.run_as(
                spec.get("userIdentity"),
                account=agent.pool.account.name,
                pool_id=agent.pool.pool_id,
                user_accounts=agent.pool.spec.get("userAccounts"),
                task_key=run.key,
                default_scope=identity.POOL,
            )
        except LaunchError as e:
            self._failed(run, e)
            return
        run.env = environment(
            job_settings=job.spec.get("commonEnvironmentSettings"),
            task_settings=spec.get("environmentSettings"),
            batch=batch,
            base={**agent.base_env, **run.user.environment(run.cwd)},
        )
        self._spawn(run, download=bool(spec.get("resourceFiles")))

    def _spawn(self, run: JobTaskRun, *, download: bool) -> None:
        """Start the run's resource files' download (`download`) or its command line, in its
        directory made on the way without following a link (tasks.nodehost.disk)."""
        agent = self.agent
        try:
            with disk.directory(agent.nodes, disk.parts_of(run.key), make=True) as directory:
                disk.make_below(directory, layout.WORKING_DIR)
                own_task_dir(directory, run.user)
                if download:
                    files = auto_storage.container_urls(
                        [[run.cwd, f] for f in run.spec.get("resourceFiles") or []],
                        account=agent.pool.account.name,
                    )
                    run.manifest, run.downloading = write_manifest(files, run.user), True
                    argv = download_argv(run.manifest, run.user)
                else:
                    run.downloading = False
                    argv = command_argv(run.spec.get("commandLine") or "", env=run.env, cwd=run.cwd)
                run.child = spawn(
                    argv,
                    env=run.env,
                    cwd=run.cwd,
                    stdout=layout.STDOUT,
                    stderr=layout.STDERR,
                    dir_fd=directory,
                    **spawn_user(run.user),
                )
        except Exception as e:  # noqa: BLE001 - a run that cannot start must end, not hold the job
            error = (
                e
                if isinstance(e, LaunchError)
                else LaunchError(
                    "CommandLaunchFailed",
                    f"The command could not start: {getattr(e, 'strerror', None) or e}.",
                )
            )
            self._failed(run, error)
            return
        if not run.started:
            run.started = time.monotonic()
        if run.child.pidfd is not None:
            agent.selector.register(run.child.pidfd, selectors.EVENT_READ, "jobtask")

    def _failed(self, run: JobTaskRun, error: LaunchError) -> None:
        self.agent._write_failure(run.key, error.message)
        self.ended.append((run, None, error.code, error.message))

    # --- ending --------------------------------------------------------------------------

    def _collect(self) -> None:
        for run in list(self.runs.values()):
            child = run.child
            if child is None:
                continue
            if exit_status(child) is None:
                if run.limit is not None and time.monotonic() - run.started > run.limit:
                    run.timed_out = True
                    signal_group(child, signal.SIGKILL)
                continue
            run.child = None
            self._unregister(child)
            code, _, _ = reap(child)
            if run.downloading:
                self._remove_manifest(run)
                if code == 0 and not run.timed_out:
                    self._spawn(run, download=False)
                    continue
                failure, message, _ = resource_files.failure_of(
                    code, f"{run.task_dir}/{layout.STDERR}"
                )
                self.ended.append((run, None, failure, message))
            elif run.timed_out:
                self.ended.append(
                    (
                        run,
                        code,
                        "TaskEnded",
                        "The task exceeded its maximum wall clock time and was terminated.",
                    )
                )
            else:
                self.ended.append((run, code, "", ""))
            if self.agent.publishing:
                self.agent._publish_dir(run.key)

    def _report(self) -> None:
        while self.ended:
            run, code, failure_code, message = self.ended[0]
            try:
                if run.kind == PREPARATION:
                    retry = ops.finish_job_preparation(
                        JobPreparation(pk=run.record_pk),
                        exit_code=code,
                        failure_code=failure_code,
                        failure_message=message,
                    )
                else:
                    retry = False
                    ops.finish_job_release(
                        JobPreparation(pk=run.record_pk, job_id=run.job_pk),
                        exit_code=code,
                        failure_code=failure_code,
                        failure_message=message,
                    )
            except DatabaseError:
                return  # reported again at the next pass
            self.ended.pop(0)
            if retry and not self.agent.stopping:
                run.timed_out, run.started = False, time.monotonic()
                self._spawn(run, download=bool(run.spec.get("resourceFiles")))
                continue
            self.runs.pop((run.kind, run.record_pk), None)
            root_turns.end_turn(run.turn)
            # The job's tasks may start here now.
            self.agent.next_claim = min(self.agent.next_claim, time.monotonic())

    def _unregister(self, child: Child) -> None:
        if child.pidfd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.agent.selector.unregister(child.pidfd)

    @staticmethod
    def _remove_manifest(run: JobTaskRun) -> None:
        if run.manifest:
            with contextlib.suppress(OSError):
                os.unlink(run.manifest)
            run.manifest = ""

    # --- stopping ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Kill what still runs: their records stay `running`, and the node's next boot runs
        them again (see the module's docstring)."""
        for run in self.runs.values():
            if run.child is not None:
                signal_group(run.child, signal.SIGKILL)
                self._unregister(run.child)
                reap(run.child)
                run.child = None
            self._remove_manifest(run)
            root_turns.end_turn(run.turn)
        self.runs.clear()
