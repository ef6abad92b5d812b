"""The attempt lifecycle's storage: every statement the agents' hot path runs (claim,
finish, requeue), each behind a named call, with the SQLite/PostgreSQL differences inside.

On PostgreSQL an agent never waits for a task or attempt row another writer holds: rows
are taken `FOR UPDATE SKIP LOCKED` (or a weaker mode) and the rest left for the next
pass; on SQLite, transactions are IMMEDIATE (one writer at a time) and the same calls
rely on the conditional UPDATE. The statements the hot path runs on every claim and
report are hand-written and cached per connection (tasks/sql.py): through the
ORM, compiling them costs more than running them. The decisions are not here
(tasks/operations/attempt_rules.py); tasks/operations/attempts.py composes the two.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max, Sum

from tasks import sql
from tasks.exit_conditions import satisfies_dependency
from tasks.models import Attempt, ComputeNode, Job, SubTask, Task

from . import attempt_rules as rules


def skip_locked(qs):
    """Rows another writer holds are skipped, never waited for (PostgreSQL; SQLite
    serializes writers and ignores this)."""
    return qs.select_for_update(skip_locked=True, of=("self",))


# --- claim -------------------------------------------------------------------------------

# What a claim and the agent starting the work read (every claim of every agent).
CLAIM_JOB_FIELDS = [
    "job_id",
    "state",
    "priority",
    "creation_time",
    "max_parallel_tasks",
    "running_count",
    "spec",
    "active_count",
]
CLAIM_TASK_FIELDS = [
    "job_id",
    "task_id",
    "command_line",
    "spec",
    "required_slots",
    "number_of_instances",
    "max_wall_clock_time",
    "state",
    "result",
    "previous_state",
    "state_transition_time",
    "creation_time",
]
# What a claim writes to a task (as attempts._mark_claimed sets it: its state move and
# where it runs), and what it resets for a task that ran before (executionInfo).
CLAIM_SET = [
    *Task.MOVE_FIELDS,
    "start_time",
    "node_id",
    "node_name",
    "pool_id",
    "affinity_id",
    "task_root_directory",
    "wait_time",
]
CLAIM_RESET = [*Task.OUTCOME_FIELDS, "files_cleaned"]


def lock_node_for_claim(node_pk: int, fresh: datetime) -> tuple[str, bool, int, int, int] | None:
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
        statement = (
            f"SELECT n.{qn('state')}, n.{qn('scheduling_enabled')}, n.{qn('slots')}, "
            f"(SELECT COALESCE(SUM(a.{qn('slots')}), 0) FROM {attempts} a "
            f"WHERE a.{qn('node_id')} = n.{qn('id')} "
            f"AND a.{qn('outcome')} = {sql.literal(Attempt.Outcome.RUNNING.value)}), "
            f"(SELECT COALESCE(SUM(o.{qn('slots')}), 0) FROM {nodes} o "
            f"WHERE o.{qn('pool_id')} = n.{qn('pool_id')} AND o.{qn('id')} <> n.{qn('id')} "
            f"AND o.{qn('state')} IN ({', '.join(sql.literal(s.value) for s in rules.SCHEDULABLE_NODE_STATES)}) "
            f"AND o.{qn('scheduling_enabled')} AND o.{qn('last_heartbeat')} >= %s) "
            f"FROM {nodes} n WHERE n.{qn('id')} = %s"
        )
        if sql.row_locks():
            statement += " FOR UPDATE OF n"
        statements["node_for_claim"] = statement
    params = [c.ops.adapt_datetimefield_value(fresh), node_pk]
    rows, _ = sql.run(statement, params, c=c)
    if not rows:
        return None
    row = rows[0]
    return row[0], bool(row[1]), int(row[2]), int(row[3]), int(row[4])


def claimable_jobs(pool) -> list[Job]:
    """The pool's active jobs that have active tasks, in claim order (priority, then age),
    under FOR KEY SHARE on PostgreSQL (shared with other agents and adds; excluding the
    job's own operations), skipping jobs another writer holds."""
    return sql.select_models(
        Job,
        CLAIM_JOB_FIELDS,
        "{account_id} = %s AND {state} = %s AND LOWER({pool_id}) = %s AND {active_count} > 0",
        [pool.account_id, Job.State.ACTIVE, pool.pool_id.lower()],
        order="{priority} DESC, {creation_time}, {id}",
        lock=sql.KEY_SHARE,
    )


def lock_job_running(job: Job) -> Job | None:
    """The job re-read FOR NO KEY UPDATE on PostgreSQL, so that claims of a job with
    maxParallelTasks take turns on its running count (None: another writer holds it, or it
    is no longer active). SQLite serializes claims: the job as read."""
    if not sql.row_locks():
        return job
    found = sql.select_models(
        Job,
        CLAIM_JOB_FIELDS,
        "{id} = %s AND {state} = %s",
        [job.pk, Job.State.ACTIVE],
        lock=sql.NO_KEY_UPDATE,
    )
    return found[0] if found else None


def _working_nodes(node: ComputeNode, fresh: datetime):
    return ComputeNode.objects.filter(
        pool_id=node.pool_id,
        state__in=rules.SCHEDULABLE_NODE_STATES,
        scheduling_enabled=True,
        last_heartbeat__gte=fresh,
    ).exclude(pk=node.pk)


def other_nodes_load(node: ComputeNode, fresh: datetime) -> list[tuple[str, int, int]]:
    """The pool's other nodes that take work (heartbeat since `fresh`): (node id, slots in
    use, free slots). Two queries."""
    rows = list(_working_nodes(node, fresh).values_list("pk", "node_id", "slots"))
    used = used_slots([pk for pk, _, _ in rows]) if rows else {}
    return [(node_id, used.get(pk, 0), slots - used.get(pk, 0)) for pk, node_id, slots in rows]


def lock_other_nodes(node: ComputeNode, fresh: datetime) -> tuple[list[ComputeNode], dict]:
    """The pool's other nodes that take work, locked (skipping those another writer
    holds), in node id order, and the free slots of each by pk. Two queries."""
    others = list(skip_locked(_working_nodes(node, fresh)).order_by("node_id"))
    used = used_slots([n.pk for n in others])
    return others, {n.pk: n.slots - used.get(n.pk, 0) for n in others}


def used_slots(node_pks: list[int]) -> dict[int, int]:
    """Slots held on each node by its running attempts (one query)."""
    rows = (
        Attempt.objects.filter(node_id__in=node_pks, outcome=Attempt.Outcome.RUNNING)
        .values("node_id")
        .annotate(slots=Sum("slots"))
    )
    return {row["node_id"]: row["slots"] or 0 for row in rows}


_CANDIDATES = (
    f"{{job_id}} = %s AND {{state}} = {sql.literal(Task.State.ACTIVE.value)} "
    "AND NOT {lifetime_expired}"
)
_AFTER = " AND ({creation_time} > %s OR ({creation_time} = %s AND {id} > %s))"
# PostgreSQL: a row comparison is an index condition on (job, state, creation_time, id),
# so a later page starts at its row instead of filtering every row before it.
_AFTER_ROW = " AND ({creation_time}, {id}) > (%s, %s)"


def candidate_tasks(job: Job, after: tuple[datetime, int] | None, page: int) -> list[Task]:
    """One page of the job's active tasks whose lifetime has not expired, in claim order
    (oldest first), after the task at `after` (creation time, pk) when given, locked
    FOR UPDATE SKIP LOCKED on PostgreSQL. Index-backed keyset scan, one statement."""
    params = [job.pk]
    where = _CANDIDATES
    if after is not None:
        at = sql.conn().ops.adapt_datetimefield_value(after[0])
        if sql.conn().vendor == "postgresql":
            where += _AFTER_ROW
            params += [at, after[1]]
        else:
            where += _AFTER
            params += [at, at, after[1]]
    return sql.select_models(
        Task,
        CLAIM_TASK_FIELDS,
        where,
        params,
        order="{creation_time}, {id}",
        limit=page,
        lock=True,
    )


def satisfied_dependencies(job: Job, keys: list[str]) -> set[str]:
    """Of the job's task ids (lower-cased) `keys`, those of completed tasks that satisfy
    their dependents (exit_conditions.satisfies_dependency). One query per 500 ids."""
    satisfied: set[str] = set()
    keys = sorted(set(keys))
    for i in range(0, len(keys), 500):
        rows = Task.objects.filter(
            job=job, id_key__in=keys[i : i + 500], state=Task.State.COMPLETED
        ).values_list("id_key", "result", "spec", "exit_code", "failure_info")
        for key, result, spec, exit_code, failure_info in rows:
            if satisfies_dependency(result, spec, exit_code, failure_info):
                satisfied.add(key)
    return satisfied


def mark_claimed(first_runs: list[tuple[int, list]], reruns: list[tuple[int, list]]) -> int:
    """Write the claim of tasks that were still active: (pk, CLAIM_SET values) for tasks
    never started, (pk, CLAIM_SET + CLAIM_RESET values) for tasks that ran before (a task
    that never ran has its execution fields at their defaults: leaving them out of its
    UPDATE leaves the indexes on them alone). Returns the rows updated."""
    only_if = ("state", Task.State.ACTIVE)
    return sql.update_rows(Task, CLAIM_SET, first_runs, only_if=only_if) + sql.update_rows(
        Task, CLAIM_SET + CLAIM_RESET, reruns, only_if=only_if
    )


def last_attempt_numbers(task_pks: list[int]) -> dict[int, int]:
    """The number of each task's last attempt (one query; none for an empty list)."""
    if not task_pks:
        return {}
    return dict(
        Attempt.objects.filter(task_id__in=task_pks)
        .values("task_id")
        .annotate(n=Max("number"))
        .values_list("task_id", "n")
    )


def insert_attempts(attempts: list[Attempt]) -> None:
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
        statement = (
            f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
            f"VALUES {', '.join([row] * len(attempts))} "
            f"RETURNING {qn(meta.pk.column)}, {qn(meta.get_field('task').column)}, "
            f"{qn(meta.get_field('subtask_id').column)}"
        )
        names = [f.attname for f in fields]
        preps = list(zip(names, sql.preparers(Attempt, [f.name for f in fields]), strict=True))
        entry = statements[key] = (statement, preps)
    statement, preps = entry
    params = [prep(getattr(a, name)) for a in attempts for name, prep in preps]
    rows, _ = sql.run(statement, params, c=conn)
    pks = {(task_id, subtask_id): pk for pk, task_id, subtask_id in rows}
    for a in attempts:
        a.pk = pks[(a.task_id, a.subtask_id)]
        a._state.adding, a._state.db = False, conn.alias


def replace_subtasks(task_pks: list[int], subtasks: list[SubTask]) -> None:
    """A new run's instances replace the last run's subtasks."""
    if task_pks:
        SubTask.objects.filter(task_id__in=task_pks).delete()
    if subtasks:
        SubTask.objects.bulk_create(subtasks)


# --- finish ------------------------------------------------------------------------------

# What finishing an attempt reads (the rest of a task, its spec above all, is loaded only
# when a failure needs its exit conditions): this runs for every attempt of every agent.
# The fields finishing overwrites (previous state, etag, end time, exit code, failure
# information) are not read either.
FINISH_TASK_FIELDS = [
    "job_id",
    "id_key",
    "state",
    "state_transition_time",
    "start_time",
    "result",
    "retry_count",
    "max_task_retry_count",
    "required_slots",
    "number_of_instances",
    "user_cpu_time",
    "kernel_cpu_time",
    "wall_clock_time",
]
FINISH_JOB_FIELDS = ["state", "on_task_failure", "on_all_tasks_complete", "spec"]
FINISH_ATTEMPT_FIELDS = [
    "task_id",
    "job_id",
    "subtask_id",
    "outcome",
    "cancel_requested",
    "end_time",
    "exit_code",
    "failure_info",
]
_FINISH_LOCKS = (sql.NO_KEY_UPDATE, sql.NO_KEY_UPDATE)  # the attempt, its task
# What finishing writes: to an attempt; to a task (and retryCount, indexed for the
# dashboard's sort, only where it changed).
ATTEMPT_END = ["outcome", "end_time", "exit_code", "failure_info", "run_as"]
TASK_END = [
    *Task.MOVE_FIELDS,
    *Task.OUTCOME_FIELDS,
    "user_cpu_time",
    "kernel_cpu_time",
    "wall_clock_time",
]
TASK_RETRY = ["retry_count", "last_retry_time"]


def lock_reports(attempt_pks) -> tuple[list[Attempt], list[int], list[int]]:
    """The attempts, each linked to its task and job; on PostgreSQL under their locks
    (attempt and task NO KEY UPDATE, job KEY SHARE), skipping any another writer holds.
    Returns (attempts in pk order, busy pks: report again shortly, gone pks: deleted
    with their task)."""
    where, params = sql.pks_where(attempt_pks)
    locked = sql.row_locks()
    joins = [("task", FINISH_TASK_FIELDS)]
    if not locked:
        joins.append(("job", FINISH_JOB_FIELDS))
    rows = sql.select_with(
        Attempt, FINISH_ATTEMPT_FIELDS, joins, where, params, order="{id}", locks=_FINISH_LOCKS
    )
    if locked:
        # The jobs' locks in a statement of their own. Every pass of every agent writes a
        # job's row (its counters), so a lock on it inside the joined SELECT nearly always
        # met a newer version than the statement's snapshot and rechecked the whole join
        # (EvalPlanQual): 0.75 ms and 140 buffers a report with two agents, where a lock
        # by primary key rechecks one row (pg_stat_statements, bench_task_throughput.py).
        jobs = _lock_jobs_shared({attempt.job_id for attempt, _ in rows})
        rows = [(a, task, jobs[a.job_id]) for a, task in rows if a.job_id in jobs]
    for attempt, task, job in rows:
        sql.link(attempt, "task", task)
        sql.link(attempt, "job", job)
        sql.link(task, "job", job)
    found = [a for a, _, _ in rows]
    missing = set(attempt_pks) - {a.pk for a in found}
    busy: set[int] = set()
    if missing and locked:
        where, params = sql.pks_where(missing)
        busy = {a.pk for a in sql.select_models(Attempt, [], where, params)}
    return found, sorted(busy), sorted(missing - busy)


def _lock_jobs_shared(pks: set[int]) -> dict[int, Job]:
    """The jobs `pks` that no job operation holds, read under a KEY SHARE lock (the
    newest version of each: what the report's rules read), by pk."""
    if not pks:
        return {}
    where, params = sql.pks_where(sorted(pks))
    jobs = sql.select_models(Job, FINISH_JOB_FIELDS, where, params, lock=sql.KEY_SHARE)
    return {job.pk: job for job in jobs}


def finish_rows(attempts: list[Attempt], retried: list[Task], ended: list[Task]) -> None:
    """Write the ends of attempts (ATTEMPT_END), of tasks retried (TASK_END + TASK_RETRY)
    and of the other tasks whose state changed (TASK_END), in one statement."""
    parts = [(Attempt, ATTEMPT_END, attempts)]
    parts += [(Task, TASK_END + TASK_RETRY, retried), (Task, TASK_END, ended)]
    sql.update_rows_together(
        [
            (model, fields, [(obj.pk, [getattr(obj, f) for f in fields]) for obj in objs])
            for model, fields, objs in parts
        ]
    )


def end_subtask(
    task: Task, subtask_id: int, t: datetime, *, exit_code: int | None, failure: dict | None
) -> None:
    """Complete one subtask of a multi-instance task (unless it already completed)."""
    SubTask.objects.filter(task=task, subtask_id=subtask_id).exclude(
        state=SubTask.State.COMPLETED
    ).update(
        **SubTask.move_values(SubTask.State.COMPLETED, t),
        end_time=t,
        exit_code=exit_code,
        result=Task.Result.FAILURE if failure else Task.Result.SUCCESS,
        failure_info=failure,
    )


def running_instances(task: Task, except_pk: int | None):
    """The task's running attempts, but `except_pk` (a queryset)."""
    others = Attempt.objects.filter(task=task, outcome=Attempt.Outcome.RUNNING)
    return others.exclude(pk=except_pk) if except_pk is not None else others


def end_instances(others, task: Task, t: datetime, *, reason: str) -> None:
    """End the running attempts `others` of a task with `cancel_requested` = reason (their
    agents kill what is left when they see it), each with its outcome
    (attempt_rules.other_instance_outcome); and the task's subtasks that had not finished
    (attempt_rules.unfinished_subtask_end)."""
    if reason == "requeue":
        others.update(
            outcome=rules.other_instance_outcome(reason, False), end_time=t, cancel_requested=reason
        )
    else:
        succeeded = SubTask.objects.filter(
            task=task, state=SubTask.State.COMPLETED, result=Task.Result.SUCCESS
        )
        others.filter(subtask_id__in=succeeded.values("subtask_id")).update(
            outcome=rules.other_instance_outcome(reason, True), end_time=t, cancel_requested=reason
        )
        others.update(
            outcome=rules.other_instance_outcome(reason, False), end_time=t, cancel_requested=reason
        )
    if task.number_of_instances <= 1:
        return
    result, failure = rules.unfinished_subtask_end(reason)
    SubTask.objects.filter(task=task).exclude(state=SubTask.State.COMPLETED).update(
        **SubTask.move_values(SubTask.State.COMPLETED, t),
        end_time=t,
        result=result,
        failure_info=failure,
    )


def succeeded_subtasks(task_pk: int) -> int:
    """How many of a task's subtasks completed with exit code 0 and no failure."""
    return SubTask.objects.filter(
        task_id=task_pk, state=SubTask.State.COMPLETED, exit_code=0, failure_info__isnull=True
    ).count()


def mark_subtask_started(attempt: Attempt, t: datetime) -> bool:
    """Stamp a subtask attempt's start and move its subtask from preparing to running;
    False (nothing written) when the attempt ended or was cancelled meanwhile."""
    if not Attempt.objects.filter(
        pk=attempt.pk, outcome=Attempt.Outcome.RUNNING, cancel_requested=""
    ).exists():
        return False
    Attempt.objects.filter(pk=attempt.pk).update(start_time=t)
    SubTask.objects.filter(
        task_id=attempt.task_id, subtask_id=attempt.subtask_id, state=SubTask.State.PREPARING
    ).update(**SubTask.move_values(SubTask.State.RUNNING, t), start_time=t)
    return True


# --- requeue -----------------------------------------------------------------------------


def lock_running_attempts(
    attempt_pks: list[int],
) -> tuple[list[dict], dict[int, Job], dict[int, Task]]:
    """The attempts of `attempt_pks` still running (pk, task_id, job_id,
    cancel_requested), and their jobs and tasks locked, skipping rows another writer
    holds (a task whose job was skipped is not taken). Three queries."""
    heads = list(
        Attempt.objects.filter(pk__in=attempt_pks, outcome=Attempt.Outcome.RUNNING).values(
            "pk", "task_id", "job_id", "cancel_requested"
        )
    )
    jobs = {j.pk: j for j in skip_locked(Job.objects.filter(pk__in={h["job_id"] for h in heads}))}
    wanted = {h["task_id"] for h in heads if h["job_id"] in jobs}
    tasks = {t.pk: t for t in skip_locked(Task.objects.filter(pk__in=wanted)).order_by("pk")}
    for task in tasks.values():
        task.job = jobs[task.job_id]
    return heads, jobs, tasks


def end_running_attempt(pk: int, outcome: str, t: datetime) -> None:
    """End one attempt that is still running with `outcome`."""
    Attempt.objects.filter(pk=pk, outcome=Attempt.Outcome.RUNNING).update(
        outcome=outcome, end_time=t
    )
