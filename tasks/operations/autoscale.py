"""Autoscale operations: Enable, Disable and Evaluate AutoScale, the periodic evaluation at
autoScaleEvaluationInterval, and the pool metrics (PoolSample rows) the formulas read.

The formula language is tasks.autoscale. Batch rules kept here:
- Enable evaluates the formula at once (autoScaleRun, new targets, a resize when they
  change) and starts a new evaluation schedule from now; an invalid formula is refused
  (400 AutoScalingFormulaSyntaxError / AutoScaleFormulaTooLong); one that fails as it runs
  is enabled all the same, its autoScaleRun carrying the error and the targets unchanged.
- Evaluate needs autoscale enabled on the pool and applies nothing; a formula that fails
  as it runs is answered with an autoScaleRun holding the error, not an HTTP error.
- Disable keeps the targets as they stand.

Metrics batchsite measures, sampled every BATCHSITE_POOL_SAMPLE_SECONDS (Batch: 30 s) for
every active pool and kept for SAMPLE_HISTORY: $ActiveTasks, $RunningTasks, $PendingTasks
(the jobs' counters of active jobs on the pool), $SucceededTasks and $FailedTasks (tasks
that completed so since the previous sample), $CPUPercent and $MemoryBytes (the average
over the nodes that reported them), $SampleNodeCount, $PreemptedNodeCount (always 0). The
others ($DiskBytes, $NetworkInBytes, ...) have no samples: a formula reading them over a
window fails with InsufficientSampleData, as on a new Batch pool.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, Q, Sum

from tasks import autoscale
from tasks.errors import BatchError
from tasks.models import ComputeNode, Job, NodeDeallocationOption, Pool, PoolSample
from tasks.timefmt import format_datetime_wire

from . import pool_specs
from .common import Precondition, lock_checked, now
from .pool_nodes import counted, current_nodes

log = logging.getLogger("batchsite.autoscale")

SAMPLE_HISTORY = timedelta(hours=25)
_TOTALS = (
    "_succeeded",
    "_failed",
)  # cumulative counters kept in a sample for the next one's deltas


# --- evaluating ----------------------------------------------------------------------------


def pool_samples(pool: Pool) -> autoscale.ListSamples:
    """The pool's recorded samples, as the evaluator reads them (one query)."""
    rows = PoolSample.objects.filter(pool=pool).order_by("time").values_list("time", "values")
    # from_records leaves out keys that name no metric (the totals kept for the deltas).
    return autoscale.ListSamples.from_records(
        rows, period=timedelta(seconds=settings.BATCHSITE_POOL_SAMPLE_SECONDS)
    )


def current_variables(pool: Pool) -> dict[str, float]:
    """The service-defined variables that are not samples, as the pool stands (one query)."""
    dedicated, low = current_nodes([pool])[pool.pk]
    usable = ComputeNode.objects.filter(
        counted(), pool=pool, state__in=(ComputeNode.State.IDLE, ComputeNode.State.RUNNING)
    ).count()
    return {
        "$CurrentDedicatedNodes": dedicated,
        "$CurrentLowPriorityNodes": low,
        "$PreemptedNodeCount": 0,
        "$UsableNodeCount": usable,
        "$TaskSlotsPerNode": pool.task_slots_per_node,
        "$TargetDedicatedNodes": pool.target_dedicated_nodes,
        "$TargetLowPriorityNodes": pool.target_low_priority_nodes,
    }


def validate_formula(formula: str) -> None:
    """Refuse a formula Batch refuses (400 AutoScalingFormulaSyntaxError /
    AutoScaleFormulaTooLong), before anything is written."""
    try:
        autoscale.validate(formula)
    except autoscale.InvalidFormula as e:
        raise BatchError(e.code, e.message, 400, list(e.values)) from None


def _run(pool: Pool, formula: str, t: datetime) -> tuple[dict, autoscale.Evaluation | None]:
    """Evaluate: the AutoScaleRun wire dict and the evaluation (None when it failed as it
    ran). Raises BatchError 400 for a formula Batch refuses."""
    try:
        result = autoscale.evaluate(
            formula, samples=pool_samples(pool), now=t, current=current_variables(pool)
        )
    except autoscale.InvalidFormula as e:
        raise BatchError(e.code, e.message, 400, list(e.values)) from None
    except autoscale.EvaluationFailed as e:
        return {
            "timestamp": format_datetime_wire(t),
            "results": e.results_text,
            "error": e.run_error(),
        }, None
    return {"timestamp": format_datetime_wire(t), "results": result.results_text}, result


def _apply(pool: Pool, formula: str, t: datetime) -> None:
    """Evaluate on the locked pool and apply: autoScaleRun, and new targets with a resize
    when they differ (the reconciler takes a resize already under way to the new targets)."""
    run, result = _run(pool, formula, t)
    pool.auto_scale_run = run
    if result is None:
        return
    targets = result.targets
    wanted = (targets.target_dedicated, targets.target_low_priority)
    if wanted != (pool.target_dedicated_nodes, pool.target_low_priority_nodes):
        pool.target_dedicated_nodes, pool.target_low_priority_nodes = wanted
        pool.node_deallocation_option = (
            targets.node_deallocation_option or NodeDeallocationOption.REQUEUE
        )
        pool.resize_timeout = None
        if pool.allocation_state == Pool.AllocationState.STEADY:
            pool.move_allocation_to(Pool.AllocationState.RESIZING, t)
            pool.resize_errors = []


def _lock_pool(pool: Pool, precondition: Precondition, refusal) -> Pool:
    return lock_checked(
        Pool.objects.filter(pk=pool.pk), BatchError.pool_not_found, precondition, refusal
    )


def evaluate_new_pool(pool: Pool) -> None:
    """Add Pool with enableAutoScale: the formula runs once as the pool is created (inside
    the creating transaction), as Batch evaluates it before the pool's first resize."""
    t = now()
    _apply(pool, pool.auto_scale_formula, t)
    pool.auto_scale_next = t + (
        pool.auto_scale_evaluation_interval or pool_specs.DEFAULT_EVALUATION_INTERVAL
    )
    pool.save()


# --- enable, disable, evaluate -------------------------------------------------------------


def can_enable_auto_scale(pool: Pool) -> BatchError | None:
    """Batch cannot enable autoscale on a pool being deleted (409 PoolBeingDeleted) or
    while a resize of a pool that is not autoscaled is in progress (409 PoolBeingResized);
    an autoscaled pool takes a new formula or interval any time."""
    if pool.state == Pool.State.DELETING:
        return BatchError.pool_being_deleted()
    if not pool.enable_auto_scale and pool.allocation_state != Pool.AllocationState.STEADY:
        return BatchError("PoolBeingResized", "The specified pool is being resized.", 409)
    return None


def enable_auto_scale(
    pool: Pool,
    *,
    formula: str | None = None,
    evaluation_interval: timedelta | None = None,
    precondition: Precondition = None,
) -> Pool:
    """Enable AutoScale: the formula (the pool's current one when none is given and it is
    autoscaled already) is evaluated at once and applied; the evaluation schedule restarts
    from now at the interval (given, kept, or Batch's default 15 minutes).
    Refuses what can_enable_auto_scale refuses, no formula on a pool not autoscaled yet
    (400 MissingRequiredProperty autoScaleFormula), an interval outside 5 minutes..168
    hours (400 InvalidPropertyValue), a formula Batch refuses (400
    AutoScalingFormulaSyntaxError / AutoScaleFormulaTooLong)."""
    pool_specs.check_evaluation_interval(evaluation_interval)
    if formula:
        validate_formula(formula)
    with transaction.atomic():
        locked = _lock_pool(pool, precondition, can_enable_auto_scale)
        formula = formula or (locked.auto_scale_formula if locked.enable_auto_scale else "")
        if not formula:
            raise BatchError.missing_property("autoScaleFormula")
        t = now()
        locked.enable_auto_scale = True
        locked.auto_scale_formula = formula
        if evaluation_interval is not None or not locked.auto_scale_evaluation_interval:
            locked.auto_scale_evaluation_interval = evaluation_interval
        _apply(locked, formula, t)
        locked.auto_scale_next = t + (
            locked.auto_scale_evaluation_interval or pool_specs.DEFAULT_EVALUATION_INTERVAL
        )
        locked.touch(t)
        locked.save()
    return locked


def can_disable_auto_scale(pool: Pool) -> BatchError | None:
    """A pool being deleted cannot change (409 PoolBeingDeleted)."""
    if pool.state == Pool.State.DELETING:
        return BatchError.pool_being_deleted()
    return None


def disable_auto_scale(pool: Pool, *, precondition: Precondition = None) -> Pool:
    """Disable AutoScale: the formula, interval and last run are dropped; the targets stay
    as they stand (a resize they started goes on). Refuses a pool being deleted (409
    PoolBeingDeleted)."""
    with transaction.atomic():
        locked = _lock_pool(pool, precondition, can_disable_auto_scale)
        locked.enable_auto_scale = False
        locked.auto_scale_formula = ""
        locked.auto_scale_evaluation_interval = None
        locked.auto_scale_run = None
        locked.auto_scale_next = None
        locked.touch(now())
        locked.save()
    return locked


def can_evaluate_auto_scale(pool: Pool) -> BatchError | None:
    """Evaluate needs autoscale enabled on the pool (409 OperationNotValidOnPool) and a pool
    not being deleted (409 PoolBeingDeleted)."""
    if pool.state == Pool.State.DELETING:
        return BatchError.pool_being_deleted()
    if not pool.enable_auto_scale:
        return BatchError(
            "OperationNotValidOnPool",
            "The pool must have automatic scaling enabled to evaluate a formula.",
            409,
        )
    return None


def evaluate_auto_scale(pool: Pool, *, formula: str) -> dict:
    """Evaluate AutoScale: the formula's AutoScaleRun wire dict {timestamp, results,
    error?} over the pool's samples and current state, applied to nothing.
    Refuses what can_evaluate_auto_scale refuses, no formula (400
    MissingRequiredProperty), a formula Batch refuses (400 AutoScalingFormulaSyntaxError /
    AutoScaleFormulaTooLong)."""
    if not formula:
        raise BatchError.missing_property("autoScaleFormula")
    fresh = Pool.objects.filter(pk=pool.pk).first()
    if fresh is None:
        raise BatchError.pool_not_found()
    error = can_evaluate_auto_scale(fresh)
    if error:
        raise error
    run, _ = _run(fresh, formula, now())
    return run


# --- periodic evaluation and samples -------------------------------------------------------


def evaluate_due_pools() -> int:
    """Evaluate each autoscaled pool whose evaluation is due and apply its formula; a
    formula that fails keeps the targets and records the failure in autoScaleRun. Returns
    how many pools it evaluated. One pool's failure never stops the others."""
    t = now()
    due = list(
        Pool.objects.filter(enable_auto_scale=True, state=Pool.State.ACTIVE)
        .filter(Q(auto_scale_next__isnull=True) | Q(auto_scale_next__lte=t))
        .values_list("pk", flat=True)
    )
    done = 0
    for pk in due:
        try:
            with transaction.atomic():
                locked = (
                    Pool.objects.select_for_update()
                    .filter(pk=pk, enable_auto_scale=True, state=Pool.State.ACTIVE)
                    .first()
                )
                if locked is None or (locked.auto_scale_next and locked.auto_scale_next > t):
                    continue
                _apply(locked, locked.auto_scale_formula, t)
                locked.auto_scale_next = t + (
                    locked.auto_scale_evaluation_interval or pool_specs.DEFAULT_EVALUATION_INTERVAL
                )
                locked.save()
                done += 1
        except BatchError as e:  # the formula became invalid (cannot happen through the API)
            log.warning("autoscale formula of pool %s refused: %s", pk, e)
            Pool.objects.filter(pk=pk).update(
                auto_scale_next=t + pool_specs.DEFAULT_EVALUATION_INTERVAL
            )
    return done


def measure(pool: Pool, previous: dict | None) -> dict:
    """One sample of the pool's metrics (a few queries), given the previous sample's
    values (for the tasks that completed since)."""
    jobs = Job.objects.filter(
        account_id=pool.account_id, pool_id__iexact=pool.pool_id, state=Job.State.ACTIVE
    ).aggregate(active=Sum("active_count"), running=Sum("running_count"))
    totals = Job.objects.filter(account_id=pool.account_id, pool_id__iexact=pool.pool_id).aggregate(
        succeeded=Sum("succeeded_count"), failed=Sum("failed_count")
    )
    nodes = ComputeNode.objects.filter(counted(), pool=pool).aggregate(
        n=Count("pk"), cpu=Avg("cpu_percent"), memory=Avg("memory_bytes")
    )
    active, running = jobs["active"] or 0, jobs["running"] or 0
    succeeded, failed = totals["succeeded"] or 0, totals["failed"] or 0
    values = {
        "ActiveTasks": active,
        "RunningTasks": running,
        "PendingTasks": active + running,
        "SampleNodeCount": nodes["n"],
        "PreemptedNodeCount": 0,
        "_succeeded": succeeded,
        "_failed": failed,
    }
    if previous is not None:
        values["SucceededTasks"] = max(0, succeeded - previous.get("_succeeded", succeeded))
        values["FailedTasks"] = max(0, failed - previous.get("_failed", failed))
    if nodes["cpu"] is not None:
        values["CPUPercent"] = round(nodes["cpu"], 3)
    if nodes["memory"] is not None:
        values["MemoryBytes"] = round(nodes["memory"])
    return values


def record_samples(*, at: datetime | None = None) -> int:
    """Record a sample for every active pool whose latest one is a sample period old, and
    drop samples older than SAMPLE_HISTORY. Returns how many it recorded."""
    t = at or now()
    period = timedelta(seconds=settings.BATCHSITE_POOL_SAMPLE_SECONDS)
    recorded = 0
    for pool in Pool.objects.filter(state=Pool.State.ACTIVE):
        last = (
            PoolSample.objects.filter(pool=pool).order_by("-time").values("time", "values").first()
        )
        if last is not None and t - last["time"] < period * 0.95:
            continue
        PoolSample.objects.create(
            pool=pool, time=t, values=measure(pool, last["values"] if last else None)
        )
        recorded += 1
    PoolSample.objects.filter(time__lt=t - SAMPLE_HISTORY).delete()
    return recorded
