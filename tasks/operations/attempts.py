"""Attempt operations: claim work for a node, start subtasks, finish attempts (the Batch
outcome rules), requeue, and the retention of task files.

An attempt is one run of a task (or of one instance of a multi-instance task) on a node.
Node agents (tasks.node) call these operations and nothing else to change state.

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
from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Max, Sum

from tasks.models import Attempt, ComputeNode, Job, SubTask, Task
from tasks.node import layout

from . import job_manager, job_preparation, sql, wakeups
from .common import new_etag, now
from .counts import CountDelta, after_counters, before_counters, one_pass, pending_tasks
from .fast_insert import new_instance
from .jobs import (
    can_terminate_job,
    complete_job_if_all_tasks_done,
    disable_locked_job,
    finish_disabling_jobs,
    terminate_job,
)

# Node states in which a node takes new work.
SCHEDULABLE_NODE_STATES = (ComputeNode.State.IDLE, ComputeNode.State.RUNNING)
# A claim looks at most this many active tasks of one job (tasks waiting on dependencies
# are skipped over, so a long blocked prefix costs a bounded scan per pass).
CLAIM_SCAN_LIMIT = 2000
LAUNCH_FAILURES = ("CommandProgramNotFound", "CommandLaunchFailed")
# Batch's pre-processing errors (the command never ran: it could not start, or a resource
# file could not be placed) and file upload errors (its outputFiles could not be uploaded):
# the exit conditions preProcessingError and fileUploadError (tasks/node/resource_files.py
# and output_files.py give these codes).
PRE_PROCESSING_FAILURES = (*LAUNCH_FAILURES, "BlobAccessDenied", "BlobDownloadMiscError", "BlobDownloadTimedOut",
                           "BlobNotFound", "ResourceFileCreateFailed", "ResourceFileWriteFailed",
                           "ResourceContainerNotFound", "ResourceContainerAccessDenied",
                           "ResourceContainerListTimedOut", "ResourceContainerListMiscError")
FILE_UPLOAD_FAILURES = ("FileUploadAccessDenied", "FileUploadContainerNotFound", "FileUploadConflict",
                        "FileUploadTimedOut", "FileUploadMiscError")
FAILURE_EXIT_MESSAGE = "The task exited with an exit code representing a failure"


def _locked(qs):
    """Rows another writer holds are skipped, never waited for (PostgreSQL; SQLite
    serializes writers and ignores this)."""
    return qs.select_for_update(skip_locked=True, of=("self",))


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
    node before the next (see _Placement). A job's job manager task starts before its
    other tasks, on a node it may hold whole (runExclusive), never on a low-priority node
    with allowLowPriorityNode false (job_manager.ClaimRule).

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
        row = _node_for_claim(node.pk, fresh)
        if row is None:
            return []
        state, enabled, slots, used, others_capacity = row
        if state not in SCHEDULABLE_NODE_STATES or not enabled or slots - used <= 0:
            return []
        me, free = node, slots - used
        me.state, me.slots = state, slots
        pool = me.pool
        # The job counters make jobs with nothing to run cost nothing here.
        jobs = sql.select_models(Job, _CLAIM_JOB_FIELDS,
                    "{account_id} = %s AND {state} = %s AND LOWER({pool_id}) = %s AND {active_count} > 0",
                    [pool.account_id, Job.State.ACTIVE, pool.pool_id.lower()],
                    order="{priority} DESC, {creation_time}, {id}", lock=sql.KEY_SHARE)
        jobs = job_preparation.claimable_jobs(me, jobs)  # a job preparation must have run here first
        placement = None
        # With at least as many active tasks as the whole pool has slots, every slot fills
        # whatever the fill type: only less work than that needs placing (and the query).
        if jobs and others_capacity and sum(j.active_count for j in jobs) < free + others_capacity:
            placement = _Placement(fill_type(pool), me, slots, _other_nodes(me, fresh))
        claim = _Claim(me, t=t, free=free, limit=limit, placement=placement)
        for job in jobs:
            if claim.full():
                break
            claim.from_job(job)
    return claim.attempts


# What a claim and the agent starting the work read (every claim of every agent).
_CLAIM_JOB_FIELDS = ["job_id", "state", "priority", "creation_time", "max_parallel_tasks", "running_count", "spec",
                     "active_count"]
_CLAIM_TASK_FIELDS = ["job_id", "task_id", "command_line", "spec", "required_slots", "number_of_instances",
                      "max_wall_clock_time", "state", "result", "previous_state", "state_transition_time",
                      "creation_time"]


def _node_for_claim(node_pk: int, fresh: datetime) -> tuple[str, bool, int, int, int] | None:
    """The node's state, scheduling flag, slots, slots held by its running attempts, and
    the slots of the pool's other nodes that take work (heartbeat since `fresh`), in one
    statement that locks the node row on PostgreSQL (so claims that reserve slots on it,
    its own and multi-instance ones, take turns). Hand-written: it runs on every claim of
    every agent."""
    c = sql.conn()
    statements = sql.cache(c)
    statement = statements.get("node_for_claim")
    if statement is None:
        qn = c.ops.quote_name
        nodes, attempts = qn(ComputeNode._meta.db_table), qn(Attempt._meta.db_table)
        statement = (f"SELECT n.{qn('state')}, n.{qn('scheduling_enabled')}, n.{qn('slots')}, "
                     f"(SELECT COALESCE(SUM(a.{qn('slots')}), 0) FROM {attempts} a "
                     f"WHERE a.{qn('node_id')} = n.{qn('id')} AND a.{qn('outcome')} = %s), "
                     f"(SELECT COALESCE(SUM(o.{qn('slots')}), 0) FROM {nodes} o "
                     f"WHERE o.{qn('pool_id')} = n.{qn('pool_id')} AND o.{qn('id')} <> n.{qn('id')} "
                     f"AND o.{qn('state')} IN (%s, %s) AND o.{qn('scheduling_enabled')} = %s "
                     f"AND o.{qn('last_heartbeat')} >= %s) "
                     f"FROM {nodes} n WHERE n.{qn('id')} = %s")
        if sql.row_locks():
            statement += " FOR UPDATE OF n"
        statements["node_for_claim"] = statement
    rows, _ = sql.run(statement, [Attempt.Outcome.RUNNING, *SCHEDULABLE_NODE_STATES, True,
                                  c.ops.adapt_datetimefield_value(fresh), node_pk], c=c)
    if not rows:
        return None
    row = rows[0]
    return row[0], bool(row[1]), int(row[2]), int(row[3]), int(row[4])


def placement_freshness() -> timedelta:
    """How recent another node's heartbeat must be for a claim to leave work to it (spread,
    pack): a few heartbeats, so a node that just died holds nothing back for long."""
    return timedelta(seconds=max(3 * settings.BATCHSITE_NODE_HEARTBEAT_SECONDS, 3.0))


def fill_type(pool) -> str:
    """The pool's taskSchedulingPolicy.nodeFillType: spread (Batch's default) or pack."""
    return ((pool.spec.get("taskSchedulingPolicy") or {}).get("nodeFillType") or "spread").lower()


def _other_nodes(node: ComputeNode, fresh: datetime) -> list[tuple[str, int, int]]:
    """The pool's other nodes that take work: (node id, slots in use, free slots), one query."""
    others = ComputeNode.objects.filter(pool_id=node.pool_id, state__in=SCHEDULABLE_NODE_STATES,
                                        scheduling_enabled=True, last_heartbeat__gte=fresh).exclude(pk=node.pk)
    rows = list(others.values_list("pk", "node_id", "slots"))
    used = used_slots([pk for pk, _, _ in rows]) if rows else {}
    return [(node_id, used.get(pk, 0), slots - used.get(pk, 0)) for pk, node_id, slots in rows]


class _Placement:
    """nodeFillType for one claim, given the other nodes' load as it was when it began.

    spread: a node takes a task only while it uses no more slots than the least loaded
    other node that could take it, so four tasks on two idle 4-slot nodes run two and two.
    pack: a node takes a task only if no other node that could take it is fuller (fewer
    free slots; the lower node id on a tie), so they run four on one node. Only nodes with
    free slots for the task count: a full node holds nothing back, and neither does one
    whose heartbeat is older than placement_freshness().
    """

    def __init__(self, fill: str, node: ComputeNode, slots: int, others: list[tuple[str, int, int]]) -> None:
        self.pack = fill == "pack"
        self.node_id, self.slots, self.others = node.node_id, slots, others

    def allows(self, required_slots: int, free: int) -> bool:
        able = [(node_id, used, left) for node_id, used, left in self.others if left >= required_slots]
        if not able:
            return True
        if self.pack:
            return not any(left < free or (left == free and node_id < self.node_id) for node_id, _, left in able)
        return self.slots - free <= min(used for _, used, _ in able)


def used_slots(node_pks: list[int]) -> dict[int, int]:
    """Slots held on each node by its running attempts (one query)."""
    rows = (
        Attempt.objects.filter(node_id__in=node_pks, outcome=Attempt.Outcome.RUNNING)
        .values("node_id")
        .annotate(slots=Sum("slots"))
    )
    return {row["node_id"]: row["slots"] or 0 for row in rows}


class _Claim:
    """One claim transaction's bookkeeping: slots left here and on the other nodes."""

    def __init__(self, node: ComputeNode, *, t: datetime, free: int, limit: int,
                 placement: _Placement | None = None) -> None:
        self.node, self.t, self.free, self.limit, self.placement = node, t, free, limit, placement
        self.attempts: list[Attempt] = []
        self.held: dict[int, int] = {}  # task pk -> slots it holds, where not its requiredSlots
        self._others: list[ComputeNode] | None = None
        self._others_free: dict[int, int] = {}

    def full(self) -> bool:
        return self.free <= 0 or len(self.attempts) >= self.limit

    def from_job(self, job: Job) -> None:
        locked = job  # read under its KEY SHARE lock (PostgreSQL)
        if job.max_parallel_tasks != -1 and sql.row_locks():
            # Claims of the job take turns on its running count.
            found = sql.select_models(Job, _CLAIM_JOB_FIELDS, "{id} = %s AND {state} = %s", [job.pk, Job.State.ACTIVE],
                                      lock=sql.NO_KEY_UPDATE)
            if not found:
                return  # changing under another writer right now; the next pass sees it
            locked = found[0]
        allowance = self.limit - len(self.attempts)
        if locked.max_parallel_tasks != -1:
            running = locked.running_count + pending_tasks(locked.pk, "running")
            allowance = min(allowance, locked.max_parallel_tasks - running)
        if allowance <= 0:
            return
        chosen: list[tuple[Task, list[ComputeNode]]] = []
        manager = job_manager.claim_rule(locked)
        for task in self._candidates(locked):
            if len(chosen) >= allowance or self.free <= 0:
                break
            slots = task.required_slots if manager is None else manager.slots_for(task, self.node, self.free)
            if slots is None:  # a job manager that cannot run here, which may hold its job back
                if manager.holds_back(task):
                    break
                continue
            if slots > self.free:
                continue
            if self.placement is not None and not self.placement.allows(slots, self.free):
                continue
            others: list[ComputeNode] = []
            if task.number_of_instances > 1:
                others = self._reserve_other_nodes(task.number_of_instances - 1)
                if others is None:
                    continue
            self.free -= slots
            if slots != task.required_slots:
                self.held[task.pk] = slots
            chosen.append((task, others))
            if len(chosen) >= allowance or self.free <= 0:
                break  # before the generator reads another page
        if chosen:
            self._start(locked, chosen)

    def _candidates(self, job: Job):
        """The job's active tasks in claim order that may run now (locked, skipping rows
        another writer holds), scanning at most CLAIM_SCAN_LIMIT."""
        where = "{job_id} = %s AND {state} = %s AND {lifetime_expired} = %s"
        params = [job.pk, Task.State.ACTIVE, False]
        after: tuple[datetime, int] | None = None
        scanned = 0
        # Rows for the slots left (each row read becomes a model instance); a run of
        # tasks that cannot start yet grows the pages below.
        page = self.limit - len(self.attempts)
        while scanned < CLAIM_SCAN_LIMIT:
            if after is None:
                rows = sql.select_models(Task, _CLAIM_TASK_FIELDS, where, params, order="{creation_time}, {id}", limit=page,
                            lock=True)
            else:
                rows = sql.select_models(Task, _CLAIM_TASK_FIELDS,
                            where + " AND ({creation_time} > %s OR ({creation_time} = %s AND {id} > %s))",
                            [*params, *(connection.ops.adapt_datetimefield_value(after[0]),) * 2, after[1]], order="{creation_time}, {id}", limit=page,
                            lock=True)
            if not rows:
                return
            scanned += len(rows)
            after = (rows[-1].creation_time, rows[-1].pk)
            ready = dependencies_ready(job, [t for t in rows if (t.spec.get("dependsOn") or {})])
            for task in rows:
                if task.spec.get("dependsOn") and task.pk not in ready:
                    continue
                sql.link(task, "job", job)
                yield task
            if len(rows) < page:
                return
            page = min(page * 4, 500)  # a long run of waiting tasks: fewer, larger pages

    def _reserve_other_nodes(self, count: int) -> list[ComputeNode] | None:
        """`count` other nodes of the pool with a free slot each, or None (all or nothing:
        nothing is reserved unless every instance has a node)."""
        if self._others is None:
            fresh = self.t - timedelta(seconds=settings.BATCHSITE_NODE_LOST_SECONDS)
            self._others = list(
                _locked(ComputeNode.objects.filter(
                    pool_id=self.node.pool_id, state__in=SCHEDULABLE_NODE_STATES,
                    scheduling_enabled=True, last_heartbeat__gte=fresh,
                ).exclude(pk=self.node.pk)).order_by("node_id")
            )
            used = used_slots([n.pk for n in self._others])
            self._others_free = {n.pk: n.slots - used.get(n.pk, 0) for n in self._others}
        # The nodes with most free slots first, so instances spread over idle nodes.
        ranked = sorted((n for n in self._others if self._others_free[n.pk] > 0),
                        key=lambda n: -self._others_free[n.pk])
        if len(ranked) < count:
            return None
        picked = ranked[:count]
        for n in picked:
            self._others_free[n.pk] -= 1
        return picked

    def _start(self, job: Job, chosen: list[tuple[Task, list[ComputeNode]]]) -> None:
        # The start is stamped now that the rows are read under their locks, not when the
        # claim began: on PostgreSQL each statement sees what committed before it, so a
        # task another node's report made active again after the claim began would get
        # a startTime before its previous attempt's endTime.
        node, t = self.node, now()
        pks = [task.pk for task, _ in chosen]
        etag = new_etag()
        # A task that never ran still has its execution fields at their defaults: leaving
        # them out of its UPDATE leaves the indexes on them (end time, exit code) alone.
        fresh, again = [], []
        delta = CountDelta()
        for task, _ in chosen:
            old, ran_before = (task.state, task.result), bool(task.previous_state)
            _mark_claimed(task, node, t, etag)
            delta.move(old, (task.state, task.result), task.required_slots)
            fields = _CLAIM_SET + _CLAIM_RESET if ran_before else _CLAIM_SET
            (again if ran_before else fresh).append((task.pk, [getattr(task, f) for f in fields]))
        updated = (sql.update_rows(Task, _CLAIM_SET, fresh, only_if=("state", Task.State.ACTIVE))
                   + sql.update_rows(Task, _CLAIM_SET + _CLAIM_RESET, again, only_if=("state", Task.State.ACTIVE)))
        if updated != len(pks):
            # Impossible while the rows are locked (PostgreSQL) or the database is
            # (SQLite); refuse to start anything rather than run a task twice.
            raise RuntimeError("claimed tasks changed under their lock")
        # A task never started before (no previous state) has no attempt to count.
        numbers = dict(
            Attempt.objects.filter(task_id__in=[pk for pk, _ in again]).values("task_id").annotate(n=Max("number"))
            .values_list("task_id", "n")
        ) if again else {}
        multi = [task.pk for task, others in chosen if others]
        if multi:
            SubTask.objects.filter(task_id__in=multi).delete()  # a new run's instances replace the last
        mine: list[Attempt] = []
        theirs: list[Attempt] = []
        subtasks: list[SubTask] = []
        for task, others in chosen:
            number = (numbers.get(task.pk) or 0) + 1
            mine.append(new_instance(Attempt, {"task": task, "job": job, "node": node}, number=number,
                                     node_name=node.node_id, slots=self.held.get(task.pk, task.required_slots),
                                     claimed=t, start_time=t,
                                     task_dir=task.task_root_directory))
            for i, other in enumerate(others, start=1):
                other_dir = layout.task_dir(other.root_dir, job.job_id, task.task_id)
                subtasks.append(SubTask(task=task, subtask_id=i, state=SubTask.State.PREPARING,
                                        state_transition_time=t, node=other, node_name=other.node_id,
                                        pool_id=node.pool.pool_id, task_root_directory=other_dir))
                theirs.append(Attempt(task=task, job=job, subtask_id=i, number=number, node=other,
                                      node_name=other.node_id, slots=1, claimed=t, task_dir=other_dir))
        _insert_attempts(mine + theirs)
        if theirs:
            wakeups.wake_nodes(a.node_id for a in theirs)  # their agents start the subtasks now
        if subtasks:
            SubTask.objects.bulk_create(subtasks)
        delta.apply(job.pk)
        job.running_count += len(chosen)
        self.attempts.extend(mine)


# What a claim writes to a task (as _mark_claimed sets it), and what it resets for a
# task that ran before.
_CLAIM_SET = ["previous_state", "previous_state_transition_time", "state", "state_transition_time", "start_time",
              "node_id", "node_name", "pool_id", "affinity_id", "task_root_directory", "wait_time", "etag",
              "last_modified"]
_CLAIM_RESET = ["end_time", "exit_code", "result", "failure_info", "files_cleaned"]


def _insert_attempts(attempts: list[Attempt]) -> None:
    """Attempt.objects.bulk_create(attempts), pks included, in one hand-written INSERT
    ... RETURNING (every claim of every agent runs it)."""
    conn = sql.conn()
    statements = sql.cache(conn)
    key = ("insert attempts", len(attempts))
    entry = statements.get(key)
    if entry is None:
        meta = Attempt._meta
        qn = conn.ops.quote_name
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        row = f"({', '.join(['%s'] * len(fields))})"
        statement = (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
                     f"VALUES {', '.join([row] * len(attempts))} "
                     f"RETURNING {qn(meta.pk.column)}, {qn(meta.get_field('task').column)}, "
                     f"{qn(meta.get_field('subtask_id').column)}")
        preps = list(zip([f.attname for f in fields], sql.preparers(Attempt, [f.name for f in fields]), strict=True))
        entry = statements[key] = (statement, preps)
    statement, preps = entry
    params = [prep(getattr(a, name)) for a in attempts for name, prep in preps]
    rows, _ = sql.run(statement, params, c=conn)
    pks = {(task_id, subtask_id): pk for pk, task_id, subtask_id in rows}
    for a in attempts:
        a.pk = pks[(a.task_id, a.subtask_id)]
        a._state.adding, a._state.db = False, conn.alias


def _mark_claimed(task: Task, node: ComputeNode, t: datetime, etag: str) -> None:
    """Claim the in-memory task for the node: the values the claim's UPDATE writes
    (_CLAIM_SET, _CLAIM_RESET) and the agent then reads."""
    task.previous_state, task.previous_state_transition_time = task.state, task.state_transition_time
    task.state, task.state_transition_time, task.start_time = Task.State.RUNNING, t, t
    task.end_time = task.exit_code = task.failure_info = None
    task.result, task.files_cleaned = "", False
    sql.link(task, "node", node)
    task.node_name, task.pool_id, task.affinity_id = node.node_id, node.pool.pool_id, f"TVM:{node.node_id}"
    task.task_root_directory = layout.task_dir(node.root_dir, task.job.job_id, task.task_id)
    task.wait_time = t - task.creation_time  # waitTime: from creation to the most recent start
    task.etag, task.last_modified = etag, t


# --- dependencies and exit options -------------------------------------------------------


def dependency_ids(depends_on: dict) -> list[str]:
    """The lower-cased ids a task's dependsOn names: taskIds, then each taskIdRanges
    entry's integers start..end inclusive (task "9".."12" for 9..12)."""
    keys = [str(i).lower() for i in depends_on.get("taskIds") or []]
    for r in depends_on.get("taskIdRanges") or []:
        keys.extend(str(i) for i in range(int(r["start"]), int(r["end"]) + 1))
    return keys


def dependencies_ready(job: Job, tasks: list[Task]) -> set[int]:
    """The pks of those tasks whose every dependency is satisfied: it exists, completed,
    and either succeeded or ended with dependencyAction satisfy. Costs one query per 500
    distinct dependency ids."""
    if not tasks:
        return set()
    wanted = {t.pk: dependency_ids(t.spec.get("dependsOn") or {}) for t in tasks}
    keys = sorted({k for ks in wanted.values() for k in ks})
    satisfied: set[str] = set()
    for i in range(0, len(keys), 500):
        rows = Task.objects.filter(job=job, id_key__in=keys[i : i + 500], state=Task.State.COMPLETED).values(
            "id_key", "result", "exit_code", "failure_info", "spec"
        )
        for row in rows:
            if satisfies_dependency(row["result"], row["spec"], row["exit_code"], row["failure_info"]):
                satisfied.add(row["id_key"])
    return {pk for pk, ks in wanted.items() if all(k in satisfied for k in ks)}


def satisfies_dependency(result: str, spec: dict, exit_code: int | None, failure_info: dict | None) -> bool:
    """Whether a completed task satisfies the tasks that depend on it: it succeeded, or its
    exit options' dependencyAction is satisfy (Batch's exitConditions)."""
    if result == Task.Result.SUCCESS:
        return True
    return exit_options(spec, exit_code, failure_info)["dependencyAction"] == "satisfy"


def exit_options(spec: dict, exit_code: int | None, failure_info: dict | None) -> dict[str, str]:
    """The exitOptions Batch applies to a completed task: an exitCodes entry for its code,
    else an exitCodeRanges entry, else preProcessingError for a task that could not start
    (or get its resource files), else fileUploadError for one whose outputFiles could not
    be uploaded, else `default` for anything but exit 0. Unset members take the defaults: jobAction
    none and dependencyAction satisfy for exit 0, terminate and block otherwise."""
    conditions = spec.get("exitConditions") or {}
    succeeded = exit_code == 0 and not failure_info
    chosen: dict | None = None
    if exit_code is not None:
        for entry in conditions.get("exitCodes") or []:
            if entry.get("code") == exit_code:
                chosen = entry.get("exitOptions") or {}
                break
        if chosen is None:
            for entry in conditions.get("exitCodeRanges") or []:
                if entry.get("start", 0) <= exit_code <= entry.get("end", -1):
                    chosen = entry.get("exitOptions") or {}
                    break
    elif failure_info and failure_info.get("code") in PRE_PROCESSING_FAILURES:
        chosen = conditions.get("preProcessingError")
    if chosen is None and failure_info and failure_info.get("code") in FILE_UPLOAD_FAILURES:
        chosen = conditions.get("fileUploadError")
    if chosen is None and not succeeded:
        chosen = conditions.get("default")
    chosen = chosen or {}
    return {
        "jobAction": chosen.get("jobAction") or ("none" if succeeded else "terminate"),
        "dependencyAction": chosen.get("dependencyAction") or ("satisfy" if succeeded else "block"),
    }


# --- subtasks ----------------------------------------------------------------------------


def start_subtask(attempt: Attempt) -> bool:
    """Mark a multi-instance subtask running on its node (its agent started the
    coordination command). False when the attempt was ended meanwhile."""
    with transaction.atomic():
        if not Attempt.objects.filter(pk=attempt.pk, outcome=Attempt.Outcome.RUNNING, cancel_requested="").exists():
            return False
        t = now()
        Attempt.objects.filter(pk=attempt.pk).update(start_time=t)
        SubTask.objects.filter(task_id=attempt.task_id, subtask_id=attempt.subtask_id,
                               state=SubTask.State.PREPARING).update(
            previous_state=SubTask.State.PREPARING,
            previous_state_transition_time=F("state_transition_time"),
            state=SubTask.State.RUNNING, state_transition_time=t, start_time=t,
        )
    return True


def subtasks_ready(task_pk: int, number_of_instances: int) -> bool:
    """Every subtask's coordination command succeeded: the primary may run commandLine."""
    done = SubTask.objects.filter(task_id=task_pk, state=SubTask.State.COMPLETED, exit_code=0,
                                  failure_info__isnull=True).count()
    return done >= number_of_instances - 1


# --- finish ------------------------------------------------------------------------------


@dataclass
class AttemptReport:
    """How an attempt's process ended, as its agent saw it."""

    attempt_pk: int
    exit_code: int | None = None
    failure_code: str = ""  # CommandProgramNotFound / CommandLaunchFailed: it never started
    failure_message: str = ""
    failure_details: list[dict] = field(default_factory=list)  # failureInfo.details: [{name, value}]
    timed_out: bool = False  # killed for exceeding maxWallClockTime
    user_cpu: timedelta = field(default_factory=timedelta)
    kernel_cpu: timedelta = field(default_factory=timedelta)
    end_time: datetime | None = None
    run_as: str = ""  # the user its processes ran as (tasks.node.identity.Identity.label)


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
    are deferred, not waited for.
    """
    result = FinishResult()
    if not reports:
        return result
    by_pk = {r.attempt_pk: r for r in reports}
    with transaction.atomic(savepoint=False):  # as in claim_work
        # The attempts with their tasks and jobs, in one statement; on PostgreSQL under
        # their locks (attempt and task NO KEY UPDATE, job KEY SHARE), skipping any
        # another writer holds.
        where, params = sql.pks_where(by_pk)
        rows = sql.select_with(Attempt, _FINISH_FIELDS, [("task", _TASK_FIELDS), ("job", _JOB_FIELDS)],
                               where, params, order="{id}", locks=_FINISH_LOCKS)
        found = [a for a, _, _ in rows]
        missing = set(by_pk) - {a.pk for a in found}
        if missing and sql.row_locks():
            # Skipped (their rows are busy: report again shortly) or deleted with their task.
            where, params = sql.pks_where(missing)
            busy = {a.pk for a in sql.select_models(Attempt, [], where, params)}
            result.deferred.extend(sorted(busy))
            missing -= busy
        result.done.extend(sorted(missing))
        tasks = {t.pk: t for _, t, _ in rows}
        jobs = {j.pk: j for _, _, j in rows}
        result.done.extend(a.pk for a in found)
        if not found:
            return result
        outcome = _Outcomes(jobs, tasks)
        for attempt in found:
            sql.link(attempt, "task", tasks[attempt.task_id])
            sql.link(attempt, "job", jobs[attempt.job_id])
            sql.link(attempt.task, "job", attempt.job)
            outcome.apply(attempt, by_pk[attempt.pk])
        outcome.save()
        result.run, result.succeeded = outcome.run, outcome.succeeded
    return result


# What finishing an attempt reads (the rest of a task, its spec above all, is loaded only
# when a failure needs its exit conditions): this runs for every attempt of every agent.
# The fields finishing overwrites (previous state, etag, end time, exit code, failure
# information) are not read either.
_TASK_FIELDS = ["job_id", "id_key", "state", "state_transition_time", "start_time", "result", "retry_count",
                "max_task_retry_count", "required_slots", "number_of_instances", "user_cpu_time", "kernel_cpu_time",
                "wall_clock_time"]
_JOB_FIELDS = ["state", "on_task_failure", "on_all_tasks_complete", "spec"]
_FINISH_FIELDS = ["task_id", "job_id", "subtask_id", "outcome", "cancel_requested", "end_time", "exit_code",
                  "failure_info"]
_FINISH_LOCKS = (sql.NO_KEY_UPDATE, sql.NO_KEY_UPDATE, sql.KEY_SHARE)







class _Outcomes:
    """The writes of one finish_attempts call, applied in a few statements at the end."""

    def __init__(self, jobs: dict[int, Job], tasks: dict[int, Task]) -> None:
        self.jobs, self.tasks = jobs, tasks
        self.attempts: list[Attempt] = []
        self.changed: dict[int, Task] = {}
        self.deltas: dict[int, CountDelta] = defaultdict(CountDelta)
        self.failed: list[Task] = []  # completed with failure: jobAction candidates
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
        if report.failure_code:
            attempt.failure_info = _failure(report.failure_code, report.failure_message, report.failure_details)
        self.run += 1
        current = not attempt.cancel_requested and task.state == Task.State.RUNNING
        if not current:
            # Terminated or deleted meanwhile: the task's state is what that gave it.
            attempt.outcome = (Attempt.Outcome.DELETED if attempt.cancel_requested == "delete"
                               else Attempt.Outcome.TERMINATED)
            self.attempts.append(attempt)
            if attempt.subtask_id is not None:
                _end_subtask(task, attempt.subtask_id, t, exit_code=report.exit_code,
                             failure=_failure("TaskEnded", "The task was terminated."))
            return
        if attempt.subtask_id is not None:
            self._subtask(attempt, report, t)
            return
        failure = self._failure_of(report)
        attempt.outcome = Attempt.Outcome.FAILED if failure else Attempt.Outcome.SUCCEEDED
        attempt.failure_info = attempt.failure_info or failure
        self.attempts.append(attempt)
        if not failure:
            self.succeeded += 1
        self._add_stats(task, report, t)
        retry = bool(failure) and failure["code"] == "FailureExitCode" and _may_retry(task)
        if task.number_of_instances > 1:
            _end_instances(task, t, except_pk=attempt.pk, reason="retry" if retry else "finished")
        if retry:
            self._retry(task, t)
        else:
            self._complete(task, t, exit_code=report.exit_code, failure=failure)

    def _subtask(self, attempt: Attempt, report: AttemptReport, t: datetime) -> None:
        task = attempt.task
        failure = self._failure_of(report)
        _end_subtask(task, attempt.subtask_id, t, exit_code=report.exit_code, failure=failure)
        if not failure:
            # The instance keeps its slot (and any service its coordination command
            # started) until the primary finishes; the attempt ends then.
            return
        attempt.outcome, attempt.failure_info = Attempt.Outcome.FAILED, failure
        self.attempts.append(attempt)
        # A failing subtask fails the whole multi-instance task, retried as a whole.
        retry = failure["code"] == "FailureExitCode" and _may_retry(task)
        _end_instances(task, t, except_pk=attempt.pk, reason="retry" if retry else "failed")
        if retry:
            self._retry(task, t)
        else:
            message = f"Subtask {attempt.subtask_id} failed: {failure['message']}"
            self._complete(task, t, exit_code=None, failure=_failure(failure["code"], message))

    @staticmethod
    def _failure_of(report: AttemptReport) -> dict | None:
        if report.failure_code:
            return _failure(report.failure_code, report.failure_message, report.failure_details)
        if report.timed_out:
            return _failure("TaskEnded", "The task exceeded its maximum wall clock time and was terminated.")
        if report.exit_code != 0:
            return _failure("FailureExitCode", FAILURE_EXIT_MESSAGE)
        return None

    @staticmethod
    def _add_stats(task: Task, report: AttemptReport, t: datetime) -> None:
        task.user_cpu_time = (task.user_cpu_time or timedelta()) + report.user_cpu
        task.kernel_cpu_time = (task.kernel_cpu_time or timedelta()) + report.kernel_cpu
        ran = max(t - task.start_time, timedelta()) if task.start_time else timedelta()
        task.wall_clock_time = (task.wall_clock_time or timedelta()) + ran

    def _retry(self, task: Task, t: datetime) -> None:
        old = (task.state, task.result)
        _set_task_state(task, Task.State.ACTIVE, t)
        task.retry_count += 1
        task.last_retry_time = t
        self.retried.add(task.pk)
        task.end_time = task.exit_code = task.failure_info = None
        task.result = ""
        self._changed(task, old)

    def _complete(self, task: Task, t: datetime, *, exit_code: int | None, failure: dict | None) -> None:
        old = (task.state, task.result)
        _set_task_state(task, Task.State.COMPLETED, t)
        task.end_time, task.exit_code, task.failure_info = t, exit_code, failure
        task.result = Task.Result.FAILURE if failure else Task.Result.SUCCESS
        self._changed(task, old)
        self.completed_jobs.add(task.job_id)
        if failure:
            self.failed.append(task)
        if job_manager.ends_job(self.jobs[task.job_id], task):
            self.managed_jobs.add(task.job_id)

    def _changed(self, task: Task, old: tuple[str, str]) -> None:
        self.deltas[task.job_id].move(old, (task.state, task.result), task.required_slots)
        self.changed[task.pk] = task

    def save(self) -> None:
        fields = ["outcome", "end_time", "exit_code", "failure_info", "run_as"]
        sql.update_rows(Attempt, fields, [(a.pk, [getattr(a, f) for f in fields]) for a in self.attempts])
        # retryCount only where it changed: it is indexed (the dashboard's sort).
        fields = ["state", "previous_state", "state_transition_time", "previous_state_transition_time", "etag",
                  "last_modified", "end_time", "exit_code", "result", "failure_info", "user_cpu_time",
                  "kernel_cpu_time", "wall_clock_time"]
        for extra, tasks in ((["retry_count", "last_retry_time"], [t for t in self.changed.values() if t.pk in self.retried]),
                             ([], [t for t in self.changed.values() if t.pk not in self.retried])):
            sql.update_rows(Task, fields + extra, [(t.pk, [getattr(t, f) for f in fields + extra]) for t in tasks])
        for job_pk, delta in self.deltas.items():
            delta.apply(job_pk)
        actions: dict[int, str] = {}
        for task in self.failed:
            job = self.jobs[task.job_id]
            if job.pk in actions or job.on_task_failure != Job.OnTaskFailure.PERFORMEXITOPTIONSJOBACTION:
                continue
            action = exit_options(task.spec, task.exit_code, task.failure_info)["jobAction"]
            if action != "none":
                actions[job.pk] = action
        for pk in self.managed_jobs:
            actions.setdefault(pk, "jobmanager")
        jobs = self.jobs
        # A job action locks the job FOR UPDATE: inside an agent's pass, before the pass
        # holds the counter row (another agent holding the job's KEY SHARE may wait for
        # that row); the completion check reads the counters: after they are written.
        if actions:
            before_counters(lambda: [_perform_job_action(jobs[pk], action) for pk, action in actions.items()])
        completed = [jobs[pk] for pk in sorted(self.completed_jobs) if pk not in actions]
        if completed:
            after_counters(lambda: [complete_job_if_all_tasks_done(job) for job in completed])
        # A job disabled with `wait` is disabled once its last running task ends: after
        # this transaction commits (it reads the written counters and locks the job FOR
        # UPDATE, which inside the pass could wait on another agent's KEY SHARE).
        waiting = [pk for pk, job in jobs.items() if job.state == Job.State.DISABLING]
        if waiting:
            transaction.on_commit(lambda: finish_disabling_jobs(waiting), robust=True)  # else the sweep does


def _may_retry(task: Task) -> bool:
    return task.max_task_retry_count == -1 or task.retry_count < task.max_task_retry_count


def _failure(code: str, message: str, details: list[dict] | None = None) -> dict:
    failure = {"category": "usererror", "code": code, "message": message}
    if details:
        failure["details"] = details
    return failure


def _set_task_state(task: Task, state: str, t: datetime) -> None:
    task.previous_state, task.previous_state_transition_time = task.state, task.state_transition_time
    task.state, task.state_transition_time = state, t
    task.etag, task.last_modified = new_etag(), t


def _end_subtask(task: Task, subtask_id: int, t: datetime, *, exit_code: int | None, failure: dict | None) -> None:
    SubTask.objects.filter(task=task, subtask_id=subtask_id).exclude(state=SubTask.State.COMPLETED).update(
        previous_state=F("state"), previous_state_transition_time=F("state_transition_time"),
        state=SubTask.State.COMPLETED, state_transition_time=t, end_time=t, exit_code=exit_code,
        result=Task.Result.FAILURE if failure else Task.Result.SUCCESS, failure_info=failure,
    )


def _end_instances(task: Task, t: datetime, *, except_pk: int | None, reason: str) -> None:
    """End every other running instance of a task: their agents kill what is left (the
    process, or a subtask's coordination services) when they see `cancel_requested`.
    Subtasks that had not finished end too; with TaskEnded unless the task finished."""
    others = Attempt.objects.filter(task=task, outcome=Attempt.Outcome.RUNNING)
    if except_pk is not None:
        others = others.exclude(pk=except_pk)
    wakeups.wake_attempt_nodes(others)  # their agents kill what is left now
    if reason == "requeue":
        others.update(outcome=Attempt.Outcome.REQUEUED, end_time=t, cancel_requested=reason)
    else:
        succeeded = SubTask.objects.filter(task=task, state=SubTask.State.COMPLETED, result=Task.Result.SUCCESS)
        others.filter(subtask_id__in=succeeded.values("subtask_id")).update(
            outcome=Attempt.Outcome.SUCCEEDED, end_time=t, cancel_requested=reason)
        others.update(outcome=Attempt.Outcome.TERMINATED, end_time=t, cancel_requested=reason)
    if task.number_of_instances <= 1:
        return
    message = {
        "retry": "Another instance of the task failed; the task is retried.",
        "failed": "Another instance of the task failed.",
        "requeue": "The task was requeued.",
    }.get(reason)
    SubTask.objects.filter(task=task).exclude(state=SubTask.State.COMPLETED).update(
        previous_state=F("state"), previous_state_transition_time=F("state_transition_time"),
        state=SubTask.State.COMPLETED, state_transition_time=t, end_time=t,
        # A subtask still running when the primary finished has no result of its own.
        result=Task.Result.FAILURE if message else "",
        failure_info=_failure("TaskEnded", message) if message else None,
    )


def _perform_job_action(job: Job, action: str) -> None:
    """A failed task's exit option jobAction: terminate (reason TaskFailed) or disable
    (Disable Job with requeue: running tasks go back to active); or `jobmanager`, the job
    manager's killJobOnCompletion (terminate, reason JMComplete)."""
    if action == "terminate":
        if can_terminate_job(job) is None:
            terminate_job(job, reason="TaskFailed")
    elif action == "jobmanager":
        job_manager.end_job_of_manager(job)
    elif action == "disable" and job.state == Job.State.ACTIVE:
        disable_locked_job(job, disable_tasks="requeue", skip_locked=True)


# --- requeue -----------------------------------------------------------------------------


def requeue_locked_task(task: Task, delta: CountDelta, t: datetime) -> None:
    """Put a locked running task back to active because its node went away or its job was
    disabled: its running attempts end (their agents kill what is left), requeueCount and
    lastRequeueTime count it, and it is scheduled again, anywhere in the pool."""
    _end_instances(task, t, except_pk=None, reason="requeue")
    if task.state not in (Task.State.PREPARING, Task.State.RUNNING):
        return
    old = (task.state, task.result)
    _set_task_state(task, Task.State.ACTIVE, t)
    task.requeue_count += 1
    task.last_requeue_time = t
    task.end_time = task.exit_code = task.failure_info = None
    task.result = ""
    task.save(update_fields=[
        "state", "previous_state", "state_transition_time", "previous_state_transition_time", "etag",
        "last_modified", "requeue_count", "last_requeue_time", "end_time", "exit_code", "failure_info", "result",
    ])
    delta.move(old, (task.state, task.result), task.required_slots)
    if task.job.state == Job.State.ACTIVE:
        wakeups.wake_pool(task.job.account_id, task.job.pool_id)


def requeue_attempts(attempt_pks: list[int]) -> list[int]:
    """Requeue the tasks of these running attempts (a node stopping or lost). Attempts
    whose task was terminated or deleted meanwhile just end. Returns the pks that are
    settled; the others' rows were busy and must be requeued again."""
    if not attempt_pks:
        return []
    with transaction.atomic():
        heads = list(Attempt.objects.filter(pk__in=attempt_pks, outcome=Attempt.Outcome.RUNNING)
                     .values("pk", "task_id", "job_id", "cancel_requested"))
        settled = set(attempt_pks) - {h["pk"] for h in heads}
        jobs = {j.pk: j for j in _locked(Job.objects.filter(pk__in={h["job_id"] for h in heads}))}
        tasks = {t.pk: t for t in _locked(Task.objects.filter(
            pk__in={h["task_id"] for h in heads if h["job_id"] in jobs})).order_by("pk")}
        t = now()
        deltas: dict[int, CountDelta] = defaultdict(CountDelta)
        for head in heads:
            task = tasks.get(head["task_id"])
            if task is None:
                continue
            settled.add(head["pk"])
            if head["cancel_requested"]:
                outcome = Attempt.Outcome.DELETED if head["cancel_requested"] == "delete" else Attempt.Outcome.TERMINATED
                Attempt.objects.filter(pk=head["pk"], outcome=Attempt.Outcome.RUNNING).update(outcome=outcome, end_time=t)
                continue
            task.job = jobs[task.job_id]
            requeue_locked_task(task, deltas[task.job_id], t)
        for job_pk, delta in deltas.items():
            delta.apply(job_pk)
    return sorted(settled)


# --- task files --------------------------------------------------------------------------


def can_read_task_files(task: Task):
    """The task-file calls answer 409 TaskFilesUnavailable for a task that never ran on a
    node, and 409 TaskFilesCleanedup once its directory was removed (retentionTime passed)."""
    from tasks.errors import BatchError

    if task.files_cleaned:
        return BatchError.task_files_cleaned_up()
    if not task.node_name or not task.task_root_directory:
        return BatchError.task_files_unavailable()
    return None


def expire_task_retention(*, batch: int = 1000) -> int:
    """retentionTime: once it has passed since a task completed, the task's directory is
    removed from every node it ran on (each node removes its own), and the task-file calls
    answer TaskFilesCleanedup. Returns how many tasks it expired."""
    from .tasks import queue_task_cleanup

    t = now()
    expired = 0
    while True:
        with transaction.atomic():
            pks = list(
                _locked(Task.objects.filter(state=Task.State.COMPLETED, files_cleaned=False,
                                            end_time__isnull=False, retention_time__isnull=False)
                        .alias(expiry=ExpressionWrapper(F("end_time") + F("retention_time"),
                                                        output_field=DateTimeField()))
                        .filter(expiry__lte=t))
                .values_list("pk", flat=True)[:batch]
            )
            if not pks:
                return expired
            queue_task_cleanup(pks, reason="retention")
            expired += Task.objects.filter(pk__in=pks).update(files_cleaned=True)
