"""Attempt operations: claim work for a node, start subtasks, finish attempts (the Batch
outcome rules). Requeueing a task (its node went away, its job was disabled) is
task_ends.py's, which the node and job operations share.

An attempt is one run of a task (or of one instance of a multi-instance task) on a node.
Node agents (tasks.node) call these operations and nothing else to change state. Each
operation composes the decisions (attempt_rules: plain functions over plain values) and
the statements (attempt_store; claim_scan reads a job's candidate tasks), and is the only
writer.

Locking, so that agents on many machines can share one PostgreSQL database: an agent
operation never waits for a task or attempt row another writer holds. It takes the rows
it needs with `FOR UPDATE SKIP LOCKED` and leaves the rest for its next pass (a claim
takes other tasks; a report is retried a moment later), so a task is never claimed
twice. A job row is taken `FOR KEY SHARE SKIP LOCKED`: agents share it with each other
and with adds, and exclude the job's own operations (terminate, disable, delete,
update: FOR UPDATE); a job with maxParallelTasks is taken `FOR NO KEY UPDATE`, so its
claims take turns on its running count. The job's counters are written once per pass,
last (counts.one_pass), the only row an agent waits for, and only for a commit. On
SQLite, transactions are IMMEDIATE (one writer at a time) and the same code relies on
the conditional UPDATE.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from tasks import sql
from tasks.models import (
    Attempt,
    ComputeNode,
    DisableJobOption,
    ExitJobAction,
    Job,
    SubTask,
    Task,
    new_etag,
)
from tasks.nodehost import layout

from . import attempt_rules as rules
from . import attempt_store as store
from . import claim_scan, job_manager, job_preparation, wakeups
from .common import now
from .counts import CountDelta, after_counters, before_counters, one_pass, pending_tasks
from .fast_insert import new_instance
from .job_ends import complete_job_if_all_tasks_done
from .jobs import (
    can_terminate_job,
    disable_locked_job,
    end_job_of_manager,
    finish_disabling_jobs,
    terminate_job,
)
from .task_ends import end_running_instances

# --- claim -------------------------------------------------------------------------------


def agent_pass():
    """The transaction of one pass of an agent (report what ended, claim work, heartbeat):
    the job counters it changes are written once at its end (counts.one_pass)."""
    return one_pass()


def claim_work(node: ComputeNode, *, limit: int) -> list[Attempt]:
    """Claim active tasks for the node's free slots and mark them running there.

    Batch rules: only tasks of active jobs whose pool is the node's pool; jobs of higher
    priority first, then older jobs, and a job's tasks oldest first; a task needs
    requiredSlots free slots on the node; a task with dependsOn waits until every task
    it depends on completed successfully (or failed with an exit option whose
    dependencyAction is satisfy) and is never run while a dependency is blocking; a job's
    maxParallelTasks caps how many of its tasks run at once; a multi-instance task takes
    one slot on numberOfInstances distinct nodes at once, or waits (no node is held for
    it); a task whose 180-day lifetime expired is never scheduled. A node takes work only
    while idle or running with its scheduling enabled. The pool's
    taskSchedulingPolicy.nodeFillType places the work when there is less of it than free
    slots: `spread` (the default) evens it out over the pool's nodes, `pack` fills one
    node before the next (attempt_rules.Placement). A job's job manager task starts before
    its other tasks, on a node it may hold whole (runExclusive), never on a low-priority
    node with allowLowPriorityNode false (job_manager.ClaimRule). However many tasks that
    cannot start are ahead of one that can, a claim reaches it within a few passes (see
    CLAIM_SCAN_LIMIT).

    Returns at most `limit` attempts for this node, each with `task` and `job` loaded.
    Subtask attempts of a multi-instance task are created on the other nodes, whose
    agents find them in the database.
    """
    if limit <= 0:
        return []
    # No savepoint when nested (an agent reports and claims in one transaction): a failure
    # rolls the whole transaction back, and the caller retries all of it.
    with transaction.atomic(savepoint=False):
        t = now()
        fresh = t - placement_freshness()
        row = store.lock_node_for_claim(node.pk, fresh)
        if row is None:
            return []
        state, enabled, slots, used, others_capacity = row
        if not rules.takes_work(state, enabled, slots - used):
            return []
        node.state, node.slots = state, slots
        pool = node.pool
        # The job counters make jobs with nothing to run cost nothing here; a job
        # preparation must have run on the node first.
        jobs = job_preparation.claimable_jobs(node, store.claimable_jobs(pool))
        placement = None
        active = sum(j.active_count for j in jobs)
        if jobs and rules.needs_placement(active, slots - used, others_capacity):
            others = store.other_nodes_load(node, fresh)
            placement = rules.Placement(rules.fill_type(pool.spec), node.node_id, slots, others)
        claim = _Claim(node, t=t, free=slots - used, limit=limit, placement=placement)
        for job in jobs:
            if claim.full():
                break
            claim.from_job(job)
    return claim.attempts


def placement_freshness() -> timedelta:
    """How recent another node's heartbeat must be for a claim to leave work to it (spread,
    pack): a few heartbeats, so a node that just died holds nothing back for long."""
    return timedelta(seconds=max(3 * settings.BATCHSITE_NODE_HEARTBEAT_SECONDS, 3.0))


class _Claim:
    """One claim transaction's bookkeeping: slots left here and on the other nodes."""

    def __init__(
        self,
        node: ComputeNode,
        *,
        t: datetime,
        free: int,
        limit: int,
        placement: rules.Placement | None = None,
    ) -> None:
        self.node, self.t, self.free, self.limit, self.placement = node, t, free, limit, placement
        self.attempts: list[Attempt] = []
        self.held: dict[int, int] = {}  # task pk -> slots it holds, where not its requiredSlots
        self._others: list[ComputeNode] | None = None
        self._others_free: dict[int, int] = {}

    def full(self) -> bool:
        return self.free <= 0 or len(self.attempts) >= self.limit

    def from_job(self, job: Job) -> None:
        locked, allowance = self._allowance(job)
        if allowance <= 0:
            return
        chosen: list[tuple[Task, list[ComputeNode]]] = []
        manager = job_manager.claim_rule(locked)
        for task in claim_scan.candidates(locked, slots=self.limit - len(self.attempts)):
            slots = rules.slots_to_take(
                task, node=self.node, free=self.free, manager=manager, placement=self.placement
            )
            if slots == rules.HOLD_BACK:
                break
            others = (
                None if slots is None else self._reserve_other_nodes(task.number_of_instances - 1)
            )
            if others is None:
                continue  # not now: too few slots here, or too few nodes for its instances
            self.free -= slots
            if slots != task.required_slots:
                self.held[task.pk] = slots
            chosen.append((task, others))
            if len(chosen) >= allowance or self.free <= 0:
                break  # before the generator reads another page
        if chosen:
            self._start(locked, chosen)

    def _allowance(self, job: Job) -> tuple[Job, int]:
        """The job to start tasks of, and how many: a job with maxParallelTasks is re-read
        under a lock that makes its claims take turns on its running count (PostgreSQL);
        any other as read, under its KEY SHARE lock."""
        left = self.limit - len(self.attempts)
        if job.max_parallel_tasks == -1:
            return job, left
        locked = store.lock_job_running(job)
        if locked is None:
            return job, 0  # changing under another writer right now; the next pass sees it
        running = locked.running_count + pending_tasks(locked.pk, "running")
        return locked, rules.parallel_allowance(left, locked.max_parallel_tasks, running)

    def _reserve_other_nodes(self, count: int) -> list[ComputeNode] | None:
        """`count` other nodes of the pool with a free slot each, or None (all or nothing:
        nothing is reserved unless every instance has a node)."""
        if count <= 0:
            return []
        if self._others is None:
            fresh = self.t - timedelta(seconds=settings.BATCHSITE_NODE_LOST_SECONDS)
            self._others, self._others_free = store.lock_other_nodes(self.node, fresh)
        picked = rules.pick_instance_nodes(self._others_free, count)
        if picked is None:
            return None
        for pk in picked:
            self._others_free[pk] -= 1
        by_pk = {n.pk: n for n in self._others}
        return [by_pk[pk] for pk in picked]

    def _start(self, job: Job, chosen: list[tuple[Task, list[ComputeNode]]]) -> None:
        # The start is stamped now that the rows are read under their locks, not when the
        # claim began: on PostgreSQL each statement sees what committed before it, so a
        # task another node's report made active again after the claim began would get
        # a startTime before its previous attempt's endTime.
        node, t = self.node, now()
        etag = new_etag()
        first_runs, reruns = [], []
        delta = CountDelta()
        for task, _ in chosen:
            old, ran_before = (task.state, task.result), bool(task.previous_state)
            _mark_claimed(task, node, t, etag)
            delta.move(old, (task.state, task.result), task.required_slots)
            fields = store.CLAIM_SET + store.CLAIM_RESET if ran_before else store.CLAIM_SET
            values = (task.pk, [getattr(task, f) for f in fields])
            (reruns if ran_before else first_runs).append(values)
        if store.mark_claimed(first_runs, reruns) != len(chosen):
            # Impossible while the rows are locked (PostgreSQL) or the database is
            # (SQLite); refuse to start anything rather than run a task twice.
            raise RuntimeError("claimed tasks changed under their lock")
        # A task never started before (no previous state) has no attempt to count.
        numbers = store.last_attempt_numbers([pk for pk, _ in reruns])
        mine: list[Attempt] = []
        theirs: list[Attempt] = []
        subtasks: list[SubTask] = []
        for task, others in chosen:
            number = (numbers.get(task.pk) or 0) + 1
            slots = self.held.get(task.pk, task.required_slots)
            mine.append(
                new_instance(
                    Attempt,
                    {"task": task, "job": job, "node": node},
                    number=number,
                    node_name=node.node_id,
                    slots=slots,
                    claimed=t,
                    start_time=t,
                    task_dir=task.task_root_directory,
                )
            )
            for i, other in enumerate(others, start=1):
                subtask, attempt = _instance_on(other, task, job, i, number, t)
                subtasks.append(subtask)
                theirs.append(attempt)
        store.insert_attempts(mine + theirs)
        store.replace_subtasks([task.pk for task, others in chosen if others], subtasks)
        if theirs:
            wakeups.wake_nodes(a.node_id for a in theirs)  # their agents start the subtasks now
        delta.apply(job.pk)
        job.running_count += len(chosen)
        self.attempts.extend(mine)


def _instance_on(
    other: ComputeNode, task: Task, job: Job, subtask_id: int, number: int, t: datetime
) -> tuple[SubTask, Attempt]:
    """The subtask and its attempt for one other instance of a multi-instance task."""
    other_dir = layout.task_dir(other.root_dir, job.job_id, task.task_id)
    subtask = SubTask(
        task=task,
        subtask_id=subtask_id,
        state=SubTask.State.PREPARING,
        state_transition_time=t,
        node=other,
        node_name=other.node_id,
        pool_id=task.pool_id,
        task_root_directory=other_dir,
    )
    attempt = Attempt(
        task=task,
        job=job,
        subtask_id=subtask_id,
        number=number,
        node=other,
        node_name=other.node_id,
        slots=1,
        claimed=t,
        task_dir=other_dir,
    )
    return subtask, attempt


def _mark_claimed(task: Task, node: ComputeNode, t: datetime, etag: str) -> None:
    """Claim the in-memory task for the node: the values the claim's UPDATE writes
    (attempt_store.CLAIM_SET, CLAIM_RESET) and the agent then reads."""
    task.move_to(Task.State.RUNNING, t, etag=etag)
    task.clear_execution_info()
    task.start_time, task.files_cleaned = t, False
    sql.link(task, "node", node)
    task.node_name, task.pool_id, task.affinity_id = (
        node.node_id,
        node.pool.pool_id,
        f"TVM:{node.node_id}",
    )
    task.task_root_directory = layout.task_dir(node.root_dir, task.job.job_id, task.task_id)
    task.wait_time = t - task.creation_time  # waitTime: from creation to the most recent start


# --- subtasks ----------------------------------------------------------------------------


def start_subtask(attempt: Attempt) -> bool:
    """Mark a multi-instance subtask running on its node (its agent started the
    coordination command). False when the attempt was ended meanwhile."""
    with transaction.atomic():
        return store.mark_subtask_started(attempt, now())


def subtasks_ready(task_pk: int, number_of_instances: int) -> bool:
    """Every subtask's coordination command succeeded: the primary may run commandLine."""
    return rules.subtasks_done(store.succeeded_subtasks(task_pk), number_of_instances)


# --- finish ------------------------------------------------------------------------------


@dataclass
class AttemptReport:
    """How an attempt's process ended, as its agent saw it."""

    attempt_pk: int
    exit_code: int | None = None
    failure_code: str = ""  # CommandProgramNotFound / CommandLaunchFailed: it never started
    failure_message: str = ""
    failure_details: list[dict] = field(
        default_factory=list
    )  # failureInfo.details: [{name, value}]
    timed_out: bool = False  # killed for exceeding maxWallClockTime
    user_cpu: timedelta = field(default_factory=timedelta)
    kernel_cpu: timedelta = field(default_factory=timedelta)
    end_time: datetime | None = None
    run_as: str = ""  # the user its processes ran as (tasks.nodehost.identity.Identity.label)


@dataclass
class FinishResult:
    done: list[int] = field(default_factory=list)  # recorded (or nothing left to record)
    deferred: list[int] = field(default_factory=list)  # rows busy: report again shortly
    succeeded: int = 0  # finished task runs, for the node's totals
    run: int = 0


def finish_attempt(attempt: Attempt, *, exit_code: int | None, **kwargs) -> FinishResult:
    """Finish one attempt (see finish_attempts)."""
    return finish_attempts([AttemptReport(attempt.pk, exit_code=exit_code, **kwargs)])


def finish_attempts(reports: list[AttemptReport]) -> FinishResult:
    """Record how attempts ended and apply the Batch outcome rules to their tasks.

    Exit code 0 completes the task with result success. A non-zero exit code is a failure
    (failureInfo FailureExitCode) that is retried while retryCount < maxTaskRetryCount
    (-1: without limit): the task becomes active again with retryCount + 1 and
    lastRetryTime. A command that could not start (CommandProgramNotFound /
    CommandLaunchFailed) and a task killed for exceeding maxWallClockTime (TaskEnded)
    fail without retry. A completed task gets endTime, exitCode, the statistics of
    $expand=stats; a failed one triggers its exit options' jobAction when the job's
    onTaskFailure is performexitoptionsjobaction (terminate: the job ends with
    TaskFailed; disable: the job is disabled and its running tasks requeued), and the job
    ends when onAllTasksComplete is terminatejob and no task is left.

    An attempt whose task was terminated or deleted meanwhile only gets its own outcome:
    the task keeps the state the terminate gave it. A multi-instance subtask completes
    with its coordination command's exit code; a failing subtask fails (or retries) the
    whole task and stops its other instances. Attempts whose rows another writer holds
    are deferred, not waited for. The rules are attempt_rules.exit_of and job_action.
    """
    result = FinishResult()
    if not reports:
        return result
    by_pk = {r.attempt_pk: r for r in reports}
    with transaction.atomic(savepoint=False):  # as in claim_work
        found, busy, gone = store.lock_reports(by_pk)
        result.deferred.extend(busy)
        result.done.extend(gone)
        result.done.extend(a.pk for a in found)
        if not found:
            return result
        outcome = _Outcomes({a.job_id: a.job for a in found})
        for attempt in found:
            outcome.apply(attempt, by_pk[attempt.pk])
        outcome.save()
        result.run, result.succeeded = outcome.run, outcome.succeeded
    return result


class _Outcomes:
    """The writes of one finish_attempts call, applied in a few statements at the end."""

    def __init__(self, jobs: dict[int, Job]) -> None:
        self.jobs = jobs
        self.attempts: list[Attempt] = []
        self.changed: dict[int, Task] = {}
        self.deltas: dict[int, CountDelta] = defaultdict(CountDelta)
        self.failed: dict[int, list[Task]] = defaultdict(list)  # by job: jobAction candidates
        self.retried: set[int] = set()
        self.completed_jobs: set[int] = set()
        self.managed_jobs: set[int] = set()  # their job manager completed: killJobOnCompletion
        self.run = self.succeeded = 0

    def apply(self, attempt: Attempt, report: AttemptReport) -> None:
        if attempt.outcome != Attempt.Outcome.RUNNING:
            return  # already ended by someone else (requeued, or its task finished)
        task = attempt.task
        t = report.end_time or now()
        attempt.end_time, attempt.exit_code = t, report.exit_code
        attempt.run_as = report.run_as[:200]
        failed = rules.failure_of(
            report.exit_code,
            failure_code=report.failure_code,
            failure_message=report.failure_message,
            failure_details=report.failure_details,
            timed_out=report.timed_out,
        )
        if report.failure_code:
            attempt.failure_info = failed
        self.run += 1
        end = rules.exit_of(
            rules.Ended(
                report.exit_code,
                failed,
                attempt.cancel_requested,
                task.state == Task.State.RUNNING,
                attempt.subtask_id,
                task.number_of_instances,
                task.retry_count,
                task.max_task_retry_count,
            )
        )
        if end.subtask:
            store.end_subtask(
                task, attempt.subtask_id, t, exit_code=report.exit_code, failure=end.subtask_failure
            )
        if not end.outcome:
            # A subtask that succeeded keeps its slot (and any service its coordination
            # command started) until the primary finishes; the attempt ends then.
            return
        attempt.outcome = end.outcome
        attempt.failure_info = attempt.failure_info or end.failure
        self.attempts.append(attempt)
        if end.stats:
            self.succeeded += end.failure is None
            _add_stats(task, report, t)
        if end.instances:
            end_running_instances(task, t, except_pk=attempt.pk, reason=end.instances)
        if end.task == "retry":
            self._retry(task, t)
        elif end.task == "complete":
            self._complete(task, t, exit_code=end.task_exit_code, failure=end.task_failure)

    def _retry(self, task: Task, t: datetime) -> None:
        old = (task.state, task.result)
        task.move_to(Task.State.ACTIVE, t)
        task.clear_execution_info()
        task.retry_count += 1
        task.last_retry_time = t
        self.retried.add(task.pk)
        self._changed(task, old)

    def _complete(
        self, task: Task, t: datetime, *, exit_code: int | None, failure: dict | None
    ) -> None:
        old = (task.state, task.result)
        task.move_to(Task.State.COMPLETED, t)
        task.end_time, task.exit_code, task.failure_info = t, exit_code, failure
        task.result = Task.Result.FAILURE if failure else Task.Result.SUCCESS
        self._changed(task, old)
        self.completed_jobs.add(task.job_id)
        if failure:
            self.failed[task.job_id].append(task)
        if job_manager.ends_job(self.jobs[task.job_id], task):
            self.managed_jobs.add(task.job_id)

    def _changed(self, task: Task, old: tuple[str, str]) -> None:
        self.deltas[task.job_id].move(old, (task.state, task.result), task.required_slots)
        self.changed[task.pk] = task

    def save(self) -> None:
        changed = self.changed.values()
        store.finish_rows(
            self.attempts,
            [t for t in changed if t.pk in self.retried],
            [t for t in changed if t.pk not in self.retried],
        )
        for job_pk, delta in self.deltas.items():
            delta.apply(job_pk)
        jobs = self.jobs
        actions: dict[int, str] = {}
        for pk in dict.fromkeys([*self.failed, *self.managed_jobs]):
            # A task's spec is read here only when the job acts on exit options.
            failed = ((t.spec, t.exit_code, t.failure_info) for t in self.failed.get(pk, ()))
            action = rules.job_action(jobs[pk].on_task_failure, failed, pk in self.managed_jobs)
            if action:
                actions[pk] = action
        # A job action locks the job FOR UPDATE: inside an agent's pass, before the pass
        # holds the counter row (another agent holding the job's KEY SHARE may wait for
        # that row); the completion check reads the counters: after they are written.
        if actions:
            before_counters(
                lambda: [_perform_job_action(jobs[pk], action) for pk, action in actions.items()]
            )
        completed = [jobs[pk] for pk in sorted(self.completed_jobs) if pk not in actions]
        if completed:
            after_counters(lambda: [complete_job_if_all_tasks_done(job) for job in completed])
        # A job disabled with `wait` is disabled once its last running task ends: after
        # this transaction commits (it reads the written counters and locks the job FOR
        # UPDATE, which inside the pass could wait on another agent's KEY SHARE).
        waiting = [pk for pk, job in jobs.items() if job.state == Job.State.DISABLING]
        if waiting:
            transaction.on_commit(
                lambda: finish_disabling_jobs(waiting), robust=True
            )  # else the sweep does


def _add_stats(task: Task, report: AttemptReport, t: datetime) -> None:
    task.user_cpu_time = (task.user_cpu_time or timedelta()) + report.user_cpu
    task.kernel_cpu_time = (task.kernel_cpu_time or timedelta()) + report.kernel_cpu
    ran = max(t - task.start_time, timedelta()) if task.start_time else timedelta()
    task.wall_clock_time = (task.wall_clock_time or timedelta()) + ran


def _perform_job_action(job: Job, action: str) -> None:
    """A failed task's exit option jobAction: terminate (reason TaskFailed) or disable
    (Disable Job with requeue: running tasks go back to active); or `jobmanager`, the job
    manager's killJobOnCompletion (terminate, reason JMComplete)."""
    if action == ExitJobAction.TERMINATE:
        if can_terminate_job(job) is None:
            terminate_job(job, reason="TaskFailed")
    elif action == "jobmanager":
        end_job_of_manager(job)
    elif action == ExitJobAction.DISABLE and job.state == Job.State.ACTIVE:
        disable_locked_job(job, disable_tasks=DisableJobOption.REQUEUE, skip_locked=True)
