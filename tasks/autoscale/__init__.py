"""Batch's autoscale formula language: parse, check and evaluate a pool's formula.

Pure Python (lark for the grammar), no database. The pool operations call it for Add Pool,
Enable AutoScale, Evaluate AutoScale and the periodic evaluation:

    from tasks.autoscale import evaluate, validate, Evaluation, FormulaError, \\
        InvalidFormula, EvaluationFailed, Samples, ListSamples

    try:
        result: Evaluation = evaluate(formula, samples=samples, now=now, current={
            "$CurrentDedicatedNodes": 2, "$CurrentLowPriorityNodes": 0,
            "$TargetDedicatedNodes": pool.target_dedicated,      # as the targets stand
            "$TargetLowPriorityNodes": pool.target_low_priority,
            "$TaskSlotsPerNode": pool.task_slots_per_node,
            "$PreemptedNodeCount": 0, "$UsableNodeCount": 2,
        })
    except InvalidFormula as exc:    # refuse the request: HTTP 400
        raise BatchError(exc.code, exc.message, 400, exc.batch_values())
    except EvaluationFailed as exc:  # 200: autoScaleRun {timestamp, results, error}
        run = {"timestamp": now, "results": exc.results_text, "error": exc.run_error()}
    else:
        run = {"timestamp": now, "results": result.results_text}
        result.targets.target_dedicated         # int, >= 0
        result.targets.target_low_priority      # int, >= 0
        result.targets.node_deallocation_option # "requeue" | "terminate" | "taskcompletion"
                                                # | "retaineddata" | None (not assigned)

`validate(formula)` raises InvalidFormula without running anything (Add Pool, Enable).

What Batch answers, and so what the callers answer (evidence in the module docstrings):

- A formula that does not parse, calls a function or method that does not exist (or with the
  wrong number of arguments), assigns a read-only variable or a constant, reads a sampled
  metric without a method, or names an unknown TimeInterval_ constant: InvalidFormula, code
  `AutoScalingFormulaSyntaxError` ("The specified auto-scaling formula has a syntax error.")
  with one value ("Message", "Line L, Col C: reason"). Longer than 8192 characters:
  `AutoScaleFormulaTooLong`. Both are HTTP 400 on Add Pool, Enable AutoScale and Evaluate
  AutoScale. (Batch documents no code "InvalidAutoScaleFormula"; an auto pool whose formula
  is invalid fails its job with the scheduling error `InvalidAutoScaleFormulaInAutoPool`.
  Out-of-range evaluation intervals are `InvalidPropertyValue`; `InvalidAutoScalingSettings`
  is Batch's code for settings that do not fit together — both the callers' concern.)
- A formula that fails while it runs: EvaluationFailed. Too few samples is
  `InsufficientSampleData`, "Autoscale evaluation failed due to insufficient sample data",
  value ("Message", "Line 9, Col 43: Insufficient data from data set: $PendingTasks wanted
  70%, received 0%"), the column that of the method's "(". Anything else (operands of the
  wrong type, a variable read before it is assigned, val() out of range, a target that is not
  a finite number) is `AutoScaleFormulaEvaluationError` (Batch documents no code for these).
  Evaluate AutoScale answers these with HTTP 200 and autoScaleRun.error; `results_text` still
  holds the targets and variables as far as evaluation got. A periodic evaluation that fails
  keeps the pool's targets and records the same autoScaleRun.

results_text is Batch's autoScaleRun.results: `$TargetDedicatedNodes=N;$TargetLowPriorityNodes=
N;$NodeDeallocationOption=opt`, then every variable the formula assigned, in ordinal order of
the names as written (`$samples` sorts before `cappedPoolSize`), e.g. from a real pool:

    $TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;
    $samples=96.6667;$targetVMs=0.5;$tasks=0;cappedPoolSize=3

Doubles print with six significant digits, doubleVecs as [1,2,3], timestamps as
2016-10-13T19:18:47.805Z, timeintervals as [d.]hh:mm:ss[.fffffff], booleans as 1/0. A target
the formula leaves alone is the current one (from `current`), and so is what reading it
returns before it is assigned; $NodeDeallocationOption shows `requeue` when unassigned. A
target is the assigned double with its fraction dropped, clamped at 0 (and 2**31-1).
$TargetDedicated and $TargetLowPriority are aliases; when both names are assigned the full
name wins. Names are case-sensitive: `$pendingTasks` is the formula's own variable.

Samples: what the caller implements — `period` (a timedelta, 30 s on Batch) and
`series(metric)`, every recorded (time, value) of one metric oldest first, for the metrics
in METRICS: $CPUPercent, $WallClockSeconds, $MemoryBytes, $DiskBytes, $DiskReadBytes,
$DiskWriteBytes, $DiskReadOps, $DiskWriteOps, $NetworkInBytes, $NetworkOutBytes,
$SampleNodeCount, $ActiveTasks, $RunningTasks, $PendingTasks, $SucceededTasks, $FailedTasks,
$PreemptedNodeCount. A metric batchsite cannot measure simply has no samples: a formula
reading it over a window fails with InsufficientSampleData, as on a new Batch pool.
ListSamples is the in-memory implementation: ListSamples({"$ActiveTasks": [(time, value)]}), or
straight from PoolSample rows, ListSamples.from_records((s.time, s.values) for s in rows),
whose keys may go without `$` ("ActiveTasks") and may hold other values (left out). Samples
later than `now` are ignored.

`current`: the non-sampled variables, keys from CURRENT_VARIABLES ($CurrentDedicatedNodes,
$CurrentLowPriorityNodes, $PreemptedNodeCount, $UsableNodeCount, $TaskSlotsPerNode,
$TargetDedicatedNodes, $TargetLowPriorityNodes); a missing one is 0 ($TaskSlotsPerNode 1).
`now` must be aware; time() returns it. `rng` replaces random.random for rand().
"""

from .errors import (
    EVALUATION_ERROR,
    INSUFFICIENT_SAMPLES,
    SYNTAX_ERROR,
    TOO_LONG,
    EvaluationFailed,
    FormulaError,
    InvalidFormula,
)
from .evaluator import (
    CURRENT_VARIABLES,
    DEALLOCATION_OPTIONS,
    Evaluation,
    Targets,
    evaluate,
    validate,
)
from .samples import METRICS, SAMPLE_PERIOD, ListSamples, Samples
from .values import DoubleVec, TimeInterval

__all__ = [
    "CURRENT_VARIABLES",
    "DEALLOCATION_OPTIONS",
    "EVALUATION_ERROR",
    "INSUFFICIENT_SAMPLES",
    "METRICS",
    "SAMPLE_PERIOD",
    "SYNTAX_ERROR",
    "TOO_LONG",
    "DoubleVec",
    "Evaluation",
    "EvaluationFailed",
    "FormulaError",
    "InvalidFormula",
    "ListSamples",
    "Samples",
    "Targets",
    "TimeInterval",
    "evaluate",
    "validate",
]
