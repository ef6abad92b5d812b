"""Results Batch really returned, reproduced from the same formula and samples."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tasks.autoscale import EvaluationFailed, ListSamples, evaluate
from tests.autoscale.helpers import NOW, samples, steady

# A pool's autoScaleRun as Get Pool returned it (2025-04-24): 29 of the 30 samples of the
# last 15 minutes present, no active task, the target standing at 1.
TASK_BASED = """// Get pending tasks for the past 15 minutes.
$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);
// If we have fewer than 70 percent data points, we use the last sample point, otherwise we use the maximum of last sample point and the history average.
$tasks = $samples < 70 ? max(0, $ActiveTasks.GetSample(1)) : 
max( $ActiveTasks.GetSample(1), avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));
// If number of pending tasks is not 0, set targetVM to pending tasks, otherwise half of current dedicated.
$targetVMs = $tasks > 0 ? $tasks : max(0, $TargetDedicatedNodes / 2);
// The pool size is capped at 20, if target VM value is more than that, set it to 20. This value should be adjusted according to your use case.
cappedPoolSize = 3;
$TargetDedicatedNodes = max(1, min($targetVMs, cappedPoolSize));
// Set node deallocation mode - keep nodes active only until tasks finish
$NodeDeallocationOption = taskcompletion;"""


def test_task_based_formula_gives_the_results_batch_returned():
    result = evaluate(
        TASK_BASED,
        samples=samples(ActiveTasks=steady(0, minutes=15, missing={7})),
        now=NOW,
        current={"$TargetDedicatedNodes": 1, "$CurrentDedicatedNodes": 1},
    )
    assert result.results_text == (
        "$TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;"
        "$samples=96.6667;$targetVMs=0.5;$tasks=0;cappedPoolSize=3"
    )
    assert result.targets.target_dedicated == 1
    assert result.targets.node_deallocation_option == "taskcompletion"


def test_evaluate_of_a_single_assignment_lists_the_three_service_variables():
    # the SDK tests' evaluate_pool_auto_scale("$TargetDedicatedNodes=3") on a pool at 2
    result = evaluate(
        "$TargetDedicatedNodes=3",
        samples=ListSamples(),
        now=NOW,
        current={"$TargetDedicatedNodes": 2},
    )
    assert result.results_text == (
        "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    )


def test_time_based_formula_prints_the_timestamp_and_booleans_like_the_documentation():
    formula = """
        $curTime = time();
        $workHours = $curTime.hour >= 8 && $curTime.hour < 18;
        $isWeekday = $curTime.weekday >= 1 && $curTime.weekday <= 5;
        $isWorkingWeekdayHour = $workHours && $isWeekday;
        $TargetDedicatedNodes = $isWorkingWeekdayHour ? 20:10;
    """
    # the documentation's run: Thursday 2016-10-13 19:18:47.805 UTC
    now = datetime(2016, 10, 13, 19, 18, 47, 805000, tzinfo=UTC)
    result = evaluate(formula, samples=ListSamples(), now=now, current={})
    assert result.results_text == (
        "$TargetDedicatedNodes=10;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "$curTime=2016-10-13T19:18:47.805Z;$isWeekday=1;$isWorkingWeekdayHour=0;$workHours=0"
    )


def test_a_window_without_samples_fails_where_the_service_says_it_does():
    # batch-shipyard's generated formula on a new pool: "Line 9, Col 43: Insufficient data
    # from data set: $PendingTasks wanted 70%, received 0%" (the ninth line, column of "(")
    lines = [
        "maxTasksPerNode = 1",
        "minTargetDedicated = 0",
        "minTargetLowPriority = 0",
        "maxTargetDedicated = 16777216",
        "maxTargetLowPriority = 16777216",
        "sli = TimeInterval_Second * 600",
        "samplepercent = $PendingTasks.GetSamplePercent(sli)",
        "lastsample = val($PendingTasks.GetSample(1), 0)",
        "samplevecavg = avg($PendingTasks.GetSample(sli))",
        "$TargetDedicatedNodes = samplevecavg",
    ]
    history = samples(PendingTasks=steady(0, minutes=0.5))  # one sample: the pool just started
    with pytest.raises(EvaluationFailed) as failed:
        evaluate(";\n".join(lines) + ";", samples=history, now=NOW, current={})
    error = failed.value.run_error()
    assert error == {
        "code": "InsufficientSampleData",
        "message": "Autoscale evaluation failed due to insufficient sample data",
        "values": [
            {
                "name": "Message",
                "value": "Line 9, Col 43: Insufficient data from data set: "
                "$PendingTasks wanted 70%, received 5%",
            }
        ],
    }
    assert failed.value.results_text.startswith(
        "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "lastsample=0;maxTargetDedicated=1.67772e+07;"
    )
