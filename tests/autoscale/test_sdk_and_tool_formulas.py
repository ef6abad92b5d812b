"""Formulas the SDKs' own tests, the Azure CLI's tests and Azure's tools send."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tasks.autoscale import EvaluationFailed, ListSamples, evaluate
from tests.autoscale.helpers import NOW, history, samples, steady


def run(formula, *, sampled=None, now=NOW, **current):
    return evaluate(
        formula,
        samples=sampled or ListSamples(),
        now=now,
        current={f"${k}": v for k, v in current.items()},
    )


@pytest.mark.parametrize(
    "formula, target",
    [
        ("$TargetDedicatedNodes=2", 2),  # Python SDK: enable_pool_auto_scale
        ("$TargetDedicatedNodes=3", 3),  # Python/JS SDK and az batch pool autoscale evaluate
        ("$TargetDedicated = 1;", 1),  # Java SDK migration guide
    ],
)
def test_sdk_test_formulas(formula, target):
    result = run(formula, TargetDedicatedNodes=2)
    assert result.results_text == (
        f"$TargetDedicatedNodes={target};$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    )


@pytest.mark.parametrize("option", ["requeue", "terminate"])
def test_dotnet_sdk_formulas_evaluate_to_themselves(option):
    # the .NET SDK's TestPoolAutoscaleVerbs asserts autoScaleRun.results contains the formula
    formula = f"$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption={option}"
    assert run(formula, TargetDedicatedNodes=3).results_text == formula


def test_dotnet_sdk_evaluates_the_last_five_active_task_samples():
    result = run(
        "myActiveSamples=$ActiveTasks.GetSample(5);",
        sampled=samples(ActiveTasks=history([1, 2, 3, 4, 5, 6, 7])),
    )
    assert result.results_text.endswith(";myActiveSamples=[3,4,5,6,7]")


def test_dotnet_sdk_evaluate_of_a_new_pool_gets_what_samples_there_are():
    result = run(
        "myActiveSamples=$ActiveTasks.GetSample(5);", sampled=samples(ActiveTasks=history([0, 0]))
    )
    assert result.variables["myActiveSamples"] == (0.0, 0.0)


def test_dotnet_sdk_retaineddata_pool():
    formula = """$averageActiveTaskCount = avg($ActiveTasks.GetSample(TimeInterval_Minute * 5, 50));
                  $TargetDedicated = min(max(8, $averageActiveTaskCount / 4), 128);
                  $NodeDeallocationOption=retaineddata;"""
    result = run(formula, sampled=samples(ActiveTasks=steady(100, minutes=5)))
    assert result.targets.target_dedicated == 25
    assert result.targets.node_deallocation_option == "retaineddata"
    assert (
        run(formula, sampled=samples(ActiveTasks=steady(2, minutes=5))).targets.target_dedicated
        == 8
    )


def test_js_sdk_invalid_formula_is_a_run_time_failure_that_keeps_the_targets():
    # the JS SDK's "should fail to evaluate invalid autoscale formula": HTTP 200, and
    # autoScaleRun.results lists the targets as they stood (2, from the enabled formula)
    with pytest.raises(EvaluationFailed) as failed:
        run("something_useless", TargetDedicatedNodes=2)
    assert failed.value.results_text == (
        "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    )
    assert failed.value.code == "AutoScaleFormulaEvaluationError"
    assert failed.value.detail == "Line 1, Col 1: something_useless is used before it is assigned"


def test_doazureparallel_queue_formula_as_a_real_pool_reported_it():
    # doAzureParallel's QUEUE formula (min 2 dedicated, 5 low priority) on an idle pool:
    # "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=5;$NodeDeallocationOption=taskcompletion;
    #  $maxTasksPerNode=4;$round=3;$samples=100;$targetVMs=1;$tasks=0"
    formula = (
        "$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);"
        "$tasks = $samples < 70 ? max(0,$ActiveTasks.GetSample(1)) : "
        "max( $ActiveTasks.GetSample(1), avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));"
        "$maxTasksPerNode = 4;"
        "$round = $maxTasksPerNode - 1;"
        "$targetVMs = $tasks > 0? (($tasks + $round)/ $maxTasksPerNode) : max(0, $TargetDedicated/2) + 0.5;"
        "$TargetDedicatedNodes = max(2, min($targetVMs, 10));"
        "$TargetLowPriorityNodes = max(5, min($targetVMs, 20));"
        "$NodeDeallocationOption = taskcompletion;"
    )
    result = run(
        formula, sampled=samples(ActiveTasks=steady(0, minutes=15)), TargetDedicatedNodes=1
    )
    assert result.results_text == (
        "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=5;$NodeDeallocationOption=taskcompletion;"
        "$maxTasksPerNode=4;$round=3;$samples=100;$targetVMs=1;$tasks=0"
    )


def test_doazureparallel_queue_formula_rounds_up_tasks_per_node():
    formula = (
        "$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);"
        "$tasks = $samples < 70 ? max(0,$ActiveTasks.GetSample(1)) : "
        "max( $ActiveTasks.GetSample(1), avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));"
        "$maxTasksPerNode = 4; $round = $maxTasksPerNode - 1;"
        "$targetVMs = $tasks > 0? (($tasks + $round)/ $maxTasksPerNode) : 0;"
        "$TargetDedicatedNodes = max(0, min($targetVMs, 10));"
    )
    # 9 tasks at 4 a node: (9 + 3) / 4 = 3 nodes
    assert (
        run(formula, sampled=samples(ActiveTasks=steady(9, minutes=15))).targets.target_dedicated
        == 3
    )


def test_batch_shipyard_workday_scenario():
    formula = (
        "maxTasksPerNode = 1;\nminTargetDedicated = 1;\nminTargetLowPriority = 0;\n"
        "maxTargetDedicated = 8;\nmaxTargetLowPriority = 4;\nnow = time();\n"
        "isWorkHours = now.hour >= 8 && now.hour < 18;\n"
        "isWeekday = now.weekday >= 1 && now.weekday <= 5;\n"
        "isPeakTime = isWeekday && isWorkHours;\n"
        "$TargetDedicatedNodes = isPeakTime ? maxTargetDedicated : minTargetDedicated;\n"
        "$TargetLowPriorityNodes = isPeakTime ? maxTargetLowPriority : minTargetLowPriority;\n"
        "$NodeDeallocationOption = taskcompletion;"
    )
    monday = datetime(2025, 4, 21, 9, 30, tzinfo=UTC)
    sunday = datetime(2025, 4, 20, 9, 30, tzinfo=UTC)
    assert (
        run(formula, now=monday).targets.target_dedicated,
        run(formula, now=monday).targets.target_low_priority,
    ) == (8, 4)
    assert (
        run(formula, now=sunday).targets.target_dedicated,
        run(formula, now=sunday).targets.target_low_priority,
    ) == (1, 0)


def test_batch_shipyard_weekend_scenario_counts_sunday_as_day_seven():
    formula = "now = time(); isPeakTime = now.weekday >= 6 && now.weekday <= 7; $TargetDedicatedNodes = isPeakTime ? 4 : 0;"
    assert run(formula, now=datetime(2025, 4, 20, tzinfo=UTC)).targets.target_dedicated == 4
    assert run(formula, now=datetime(2025, 4, 21, tzinfo=UTC)).targets.target_dedicated == 0


def test_batch_shipyard_pending_tasks_scenario_after_its_fix():
    # the bias_last_sample formula as fixed for "Allow autoscale to start nodes immediately":
    # a new pool starts its minimum at once instead of failing
    formula = """maxTasksPerNode = 1;
minTargetDedicated = 1;
minTargetLowPriority = 0;
maxTargetDedicated = 16;
maxTargetLowPriority = 0;
sli = TimeInterval_Second * 600;
samplepercent = $PendingTasks.GetSamplePercent(sli);
lastsample = val($PendingTasks.GetSample(1), 0);
samplevecavg = samplepercent < 70 ? max(0, lastsample) : avg($PendingTasks.GetSample(sli));
PendingTaskAvg = samplepercent < 70 ? max(0, lastsample) : (lastsample < samplevecavg ? avg(lastsample, samplevecavg) : max(lastsample, samplevecavg));
reqVMs = PendingTaskAvg / maxTasksPerNode;
preemptcount = 0;
rebalance = 0 == 1;
dedicatedVMs = min(maxTargetDedicated, max(minTargetDedicated, reqVMs));
$TargetDedicatedNodes = dedicatedVMs;
$TargetLowPriorityNodes = max(minTargetLowPriority, min(maxTargetLowPriority, reqVMs - dedicatedVMs));
$NodeDeallocationOption = taskcompletion;"""
    new_pool = samples(PendingTasks=history([5]))
    assert run(formula, sampled=new_pool).targets.target_dedicated == 5
    # a last sample above the ten minutes' average (6.2) wins: 10
    busy = samples(PendingTasks=history([6] * 39 + [10]))
    result = run(formula, sampled=busy)
    assert result.variables["samplevecavg"] == pytest.approx(6.2)
    assert result.targets.target_dedicated == 10
    # one below it is averaged with it: avg(2, 5.8) = 3.9 -> 3
    easing = samples(PendingTasks=history([6] * 39 + [2]))
    assert run(formula, sampled=easing).targets.target_dedicated == 3
    assert "rebalance=0;" in result.results_text


def test_batch_shipyard_custom_formula_from_an_issue():
    formula = """maxTasksPerNode = 8;
      maxTargetLowPriority = 5000;
      pendingTasks = max($PendingTasks.GetSample(1));
      requiredNodes = pendingTasks / maxTasksPerNode;
      lowPriorityNodes = (pendingTasks > 0 && requiredNodes < 1) ? 1 : requiredNodes;
      lowPriorityNodes = min(maxTargetLowPriority, lowPriorityNodes);
      $TargetLowPriorityNodes = min($CurrentLowPriorityNodes + 25, lowPriorityNodes);
      $NodeDeallocationOption = requeue;"""
    result = run(formula, sampled=samples(PendingTasks=history([3])))
    assert result.targets.target_low_priority == 1
    result = run(formula, sampled=samples(PendingTasks=history([800])), CurrentLowPriorityNodes=40)
    assert result.targets.target_low_priority == 65


def test_nextflow_default_formula():
    # Nextflow's pool formula: time("<created>") in W3C-DTF with milliseconds
    formula = """
        $TargetDedicatedNodes = 2;
        lifespan         = time() - time("2025-04-24T10:00:00.123Z");
        span             = TimeInterval_Minute * 60;
        startup          = TimeInterval_Minute * 10;
        ratio            = 50;
        $TargetDedicatedNodes = (lifespan > startup ? (max($RunningTasks.GetSample(span, ratio), $ActiveTasks.GetSample(span, ratio)) == 0 ? 0 : $TargetDedicatedNodes) : 2);
    """
    idle = samples(RunningTasks=steady(0, minutes=60), ActiveTasks=steady(0, minutes=60))
    result = run(formula, sampled=idle)
    assert result.targets.target_dedicated == 0
    assert "lifespan=01:34:37.8480000" in result.results_text


def test_cli_style_formula_with_an_average_and_bounds():
    formula = (
        "initialNodes=0;\n    maxNodes=1;\n"
        "    demand = avg($ActiveTasks.GetSample(TimeInterval_Minute * 1));\n"
        "    $TargetDedicatedNodes = min(max(demand, initialNodes), maxNodes);"
    )
    assert run(formula, sampled=samples(ActiveTasks=history([0, 3]))).targets.target_dedicated == 1
