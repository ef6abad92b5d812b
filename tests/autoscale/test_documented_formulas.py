"""Every formula in Microsoft's "Create a formula to automatically scale compute nodes in a
Batch pool" (the current page and the earlier versions scripts still copy), evaluated over
known samples, with the result worked out by hand from the documented rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.autoscale import EvaluationFailed, InvalidFormula, ListSamples, evaluate
from tests.autoscale.helpers import NOW, history, samples, steady

THURSDAY_EVENING = datetime(2016, 10, 13, 19, 18, 47, 805000, tzinfo=UTC)
MONDAY_MORNING = datetime(2025, 4, 21, 10, 0, tzinfo=UTC)


def run(formula, *, sampled=None, now=NOW, **current):
    return evaluate(
        formula,
        samples=sampled or ListSamples(),
        now=now,
        current={f"${k}": v for k, v in current.items()},
    )


# --- "Sample autoscale formulas" ------------------------------------------------------------

PENDING_TASKS = """startingNumberOfVMs = 1;
maxNumberofVMs = 25;
pendingTaskSamplePercent = $PendingTasks.GetSamplePercent(180 * TimeInterval_Second);
pendingTaskSamples = pendingTaskSamplePercent < 70 ? startingNumberOfVMs : avg($PendingTasks.GetSample(180 * TimeInterval_Second));
$TargetDedicatedNodes=min(maxNumberofVMs, pendingTaskSamples);
$NodeDeallocationOption = taskcompletion;"""


def test_pending_tasks_formula_starts_a_new_pool_with_one_node():
    result = run(PENDING_TASKS)  # no samples yet: 0% of the 180 s window
    assert result.results_text == (
        "$TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;"
        "maxNumberofVMs=25;pendingTaskSamplePercent=0;pendingTaskSamples=1;startingNumberOfVMs=1"
    )


def test_pending_tasks_formula_follows_the_average_of_the_last_three_minutes():
    # six samples in 180 s: 4, 8, 12, 16, 20, 24 pending tasks, average 14
    sampled = samples(PendingTasks=history([4, 8, 12, 16, 20, 24]))
    result = run(PENDING_TASKS, sampled=sampled)
    assert result.targets.target_dedicated == 14
    assert "pendingTaskSamplePercent=100;pendingTaskSamples=14;" in result.results_text


def test_pending_tasks_formula_never_exceeds_25_nodes():
    result = run(PENDING_TASKS, sampled=samples(PendingTasks=steady(400, minutes=3)))
    assert result.targets.target_dedicated == 25


def test_pending_tasks_formula_as_a_real_pool_reported_it():
    # autoScaleRun.results of a pool running this formula with maxNumberofVMs = 2 and no
    # $NodeDeallocationOption line, idle for three minutes
    formula = PENDING_TASKS.replace("maxNumberofVMs = 25", "maxNumberofVMs = 2").replace(
        "\n$NodeDeallocationOption = taskcompletion;", ""
    )
    result = run(formula, sampled=samples(PendingTasks=steady(0, minutes=3)))
    assert result.results_text == (
        "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "maxNumberofVMs=2;pendingTaskSamplePercent=100;pendingTaskSamples=0;startingNumberOfVMs=1"
    )


PREEMPTED_NODES = """maxNumberofVMs = 25;
$TargetDedicatedNodes = min(maxNumberofVMs, $PreemptedNodeCount.GetSample(180 * TimeInterval_Second));
$TargetLowPriorityNodes = min(maxNumberofVMs , maxNumberofVMs - $TargetDedicatedNodes);
$NodeDeallocationOption = taskcompletion;"""


def test_preempted_nodes_formula_starts_with_25_low_priority_nodes():
    result = run(PREEMPTED_NODES, sampled=samples(PreemptedNodeCount=steady(0, minutes=3)))
    assert (result.targets.target_dedicated, result.targets.target_low_priority) == (0, 25)


def test_preempted_nodes_formula_replaces_each_preempted_node_with_a_dedicated_one():
    sampled = samples(PreemptedNodeCount=history([3, 3, 4, 4, 5, 5]))
    result = run(PREEMPTED_NODES, sampled=sampled)
    # min(25, 3, 3, 4, 4, 5, 5) is 3: the doubleVec is flattened into min's list
    assert (result.targets.target_dedicated, result.targets.target_low_priority) == (3, 22)
    assert result.results_text == (
        "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=22;$NodeDeallocationOption=taskcompletion;"
        "maxNumberofVMs=25"
    )


def test_preempted_nodes_formula_fails_on_a_pool_without_samples():
    with pytest.raises(EvaluationFailed) as failed:
        run(PREEMPTED_NODES)
    assert failed.value.code == "InsufficientSampleData"
    assert failed.value.detail == (
        "Line 2, Col 74: Insufficient data from data set: "
        "$PreemptedNodeCount wanted 70%, received 0%"
    )


# --- "Obtain sample data" -------------------------------------------------------------------


def test_the_last_five_minutes_of_cpu_usage():
    sampled = samples(CPUPercent=history(list(range(10, 30))))  # ten minutes, 10..29
    result = run("$cpu = $CPUPercent.GetSample(TimeInterval_Minute * 5);", sampled=sampled)
    assert result.variables["$cpu"] == tuple(float(x) for x in range(20, 30))


def test_ten_minutes_hold_twenty_samples():
    result = run(
        "n = len($CPUPercent.GetSample(TimeInterval_Minute * 10))",
        sampled=samples(CPUPercent=steady(50, minutes=10)),
    )
    assert result.variables["n"] == 20


def test_a_missing_last_minute_fails_a_95_percent_request_and_passes_an_80_percent_one():
    sampled = samples(CPUPercent=steady(50, minutes=10, missing={0, 1}))  # 18 of 20
    assert (
        run("n = len($CPUPercent.GetSample(TimeInterval_Minute * 10))", sampled=sampled).variables[
            "n"
        ]
        == 18
    )
    with pytest.raises(EvaluationFailed) as failed:
        run("s = $CPUPercent.GetSample(TimeInterval_Minute * 10, 95)", sampled=sampled)
    assert failed.value.detail.endswith("$CPUPercent wanted 95%, received 90%")
    assert (
        len(
            run(
                "s = $CPUPercent.GetSample(TimeInterval_Minute * 10, 80)", sampled=sampled
            ).variables["s"]
        )
        == 18
    )


def test_running_tasks_between_one_and_six_minutes_ago():
    sampled = samples(RunningTasks=steady(1, minutes=10))
    result = run(
        "$runningTasksSample = $RunningTasks.GetSample(1 * TimeInterval_Minute, "
        "6 * TimeInterval_Minute);",
        sampled=sampled,
    )
    # the documentation's "$runningTasksSample=[1,1,1,1,1,1,1,1,1,1]"
    assert result.results_text.endswith(";$runningTasksSample=[1,1,1,1,1,1,1,1,1,1]")


def test_a_required_percentage_as_third_parameter():
    formula = (
        "$runningTasksSample = $RunningTasks.GetSample(60 * TimeInterval_Second, "
        "120 * TimeInterval_Second, 75);"
    )
    # the window holds 2 samples; one is missing: 50% < 75%
    with pytest.raises(EvaluationFailed) as failed:
        run(formula, sampled=samples(RunningTasks=steady(2, minutes=10, missing={3})))
    assert failed.value.detail == (
        "Line 1, Col 46: Insufficient data from data set: $RunningTasks wanted 75%, received 50%"
    )
    assert run(formula, sampled=samples(RunningTasks=steady(2, minutes=10))).variables[
        "$runningTasksSample"
    ] == (2.0, 2.0)


# --- "Write an autoscale formula" -----------------------------------------------------------

CPU_FORMULA = """$totalDedicatedNodes =
    (min($CPUPercent.GetSample(TimeInterval_Minute * 10)) > 0.7) ?
    ($CurrentDedicatedNodes * 1.1) : $CurrentDedicatedNodes;
$totalDedicatedNodes =
    (avg($CPUPercent.GetSample(TimeInterval_Minute * 60)) < 0.2) ?
    ($CurrentDedicatedNodes * 0.9) : $totalDedicatedNodes;
$TargetDedicatedNodes = min(400, $totalDedicatedNodes);
$NodeDeallocationOption = taskcompletion;"""


def test_cpu_formula_grows_the_pool_by_ten_percent_when_busy():
    busy = samples(CPUPercent=steady(0.9, minutes=60))
    result = run(CPU_FORMULA, sampled=busy, CurrentDedicatedNodes=20)
    assert result.variables["$totalDedicatedNodes"] == pytest.approx(22)
    assert result.targets.target_dedicated == 22  # 20 * 1.1 is 22.000000000000004 in doubles
    assert result.targets.node_deallocation_option == "taskcompletion"


def test_cpu_formula_shrinks_the_pool_by_ten_percent_when_idle():
    idle = samples(CPUPercent=steady(0.1, minutes=60))
    result = run(CPU_FORMULA, sampled=idle, CurrentDedicatedNodes=20)
    assert result.targets.target_dedicated == 18
    assert "$totalDedicatedNodes=18" in result.results_text


def test_cpu_formula_keeps_the_pool_as_it_is_in_between():
    result = run(
        CPU_FORMULA, sampled=samples(CPUPercent=steady(0.5, minutes=60)), CurrentDedicatedNodes=7
    )
    assert result.targets.target_dedicated == 7


def test_cpu_formula_never_exceeds_400_nodes():
    result = run(
        CPU_FORMULA, sampled=samples(CPUPercent=steady(0.95, minutes=60)), CurrentDedicatedNodes=390
    )
    assert result.targets.target_dedicated == 400


def test_cpu_formula_with_the_semicolon_the_2021_page_left_out_is_refused():
    # "Note that missing semicolons might result in evaluation errors."
    formula = CPU_FORMULA.replace(
        "min(400, $totalDedicatedNodes);", "min(400, $totalDedicatedNodes)"
    )
    with pytest.raises(InvalidFormula) as refused:
        run(formula, sampled=samples(CPUPercent=steady(0.5, minutes=60)))
    assert refused.value.code == "AutoScalingFormulaSyntaxError"
    assert refused.value.detail.startswith(
        "Line 8, Col 1: Syntax error: unexpected '$NodeDeallocationOption'"
    )


def test_cpu_formula_of_2019_without_a_last_semicolon():
    formula = CPU_FORMULA.replace(";\n$NodeDeallocationOption = taskcompletion;", "")
    result = run(
        formula, sampled=samples(CPUPercent=steady(0.1, minutes=60)), CurrentDedicatedNodes=10
    )
    assert result.targets.target_dedicated == 9
    assert result.targets.node_deallocation_option is None


def test_cpu_formula_of_2015_with_the_old_names():
    formula = """$TotalNodes = (min($CPUPercent.GetSample(TimeInterval_Minute*10)) > 0.7) ? ($CurrentDedicated * 1.1) : $CurrentDedicated;
$TotalNodes = (avg($CPUPercent.GetSample(TimeInterval_Minute*60)) < 0.2) ? ($CurrentDedicated * 0.9) : $TotalNodes;
$TargetDedicated = min(400, $TotalNodes)"""
    result = run(
        formula, sampled=samples(CPUPercent=steady(0.1, minutes=60)), CurrentDedicatedNodes=30
    )
    assert result.targets.target_dedicated == 27
    assert result.results_text.startswith("$TargetDedicatedNodes=27;")


def test_cpu_formula_fails_before_an_hour_of_history():
    with pytest.raises(EvaluationFailed) as failed:
        run(
            CPU_FORMULA,
            sampled=samples(CPUPercent=steady(0.5, minutes=20)),
            CurrentDedicatedNodes=3,
        )
    # the second statement wants 70% of 120 samples and finds 40
    assert failed.value.detail == (
        "Line 5, Col 31: Insufficient data from data set: $CPUPercent wanted 70%, received 33.3333%"
    )
    assert failed.value.results_text == (
        "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "$totalDedicatedNodes=3"
    )


# --- SDK snippets ---------------------------------------------------------------------------

MONDAYS = "$TargetDedicatedNodes = (time().weekday == 1 ? 5:1);"


def test_five_nodes_on_mondays():
    assert run(MONDAYS, now=MONDAY_MORNING).targets.target_dedicated == 5


def test_one_node_on_other_days():
    assert run(MONDAYS, now=MONDAY_MORNING + timedelta(days=1)).targets.target_dedicated == 1


def test_the_2015_mondays_formula_with_the_old_target_name():
    formula = "$TargetDedicated = (time().weekday==1?5:1);"
    assert run(formula, now=MONDAY_MORNING).targets.target_dedicated == 5


PYTHON_WORKDAY = """$curTime = time();
             $workHours = $curTime.hour >= 8 && $curTime.hour < 18;
             $isWeekday = $curTime.weekday >= 1 && $curTime.weekday <= 5;
             $isWorkingWeekdayHour = $workHours && $isWeekday;
             $TargetDedicated = $isWorkingWeekdayHour ? 20:10;"""


def test_python_workday_formula_gives_twenty_nodes_in_working_hours():
    result = run(PYTHON_WORKDAY, now=MONDAY_MORNING)
    assert result.targets.target_dedicated == 20
    assert result.results_text == (
        "$TargetDedicatedNodes=20;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "$curTime=2025-04-21T10:00:00.000Z;$isWeekday=1;$isWorkingWeekdayHour=1;$workHours=1"
    )


def test_python_workday_formula_gives_ten_nodes_on_saturday():
    assert (
        run(PYTHON_WORKDAY, now=MONDAY_MORNING - timedelta(days=2)).targets.target_dedicated == 10
    )


def test_formula_used_to_enable_autoscale_before_evaluating_another():
    assert (
        run(
            "$TargetDedicatedNodes = $CurrentDedicatedNodes;", CurrentDedicatedNodes=6
        ).targets.target_dedicated
        == 6
    )
    assert run("$TargetDedicatedNodes = 0", TargetDedicatedNodes=4).targets.target_dedicated == 0


def test_the_documented_evaluate_run_of_2015():
    formula = """
        $CurTime=time();
        $WorkHours=$CurTime.hour>=8 && $CurTime.hour<18;
        $IsWeekday=$CurTime.weekday>=1 && $CurTime.weekday<=5;
        $IsWorkingWeekdayHour=$WorkHours && $IsWeekday;
        $TargetDedicated=$IsWorkingWeekdayHour?20:10;
    """
    # its documented output: $TargetDedicated = 10; ... $CurTime = 2015-08-25T20:08:42.271Z;
    # $IsWeekday = 1; $IsWorkingWeekdayHour = 0; $WorkHours = 0 (a Tuesday evening)
    result = run(formula, now=datetime(2015, 8, 25, 20, 8, 42, 271000, tzinfo=UTC))
    assert result.results_text == (
        "$TargetDedicatedNodes=10;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "$CurTime=2015-08-25T20:08:42.271Z;$IsWeekday=1;$IsWorkingWeekdayHour=0;$WorkHours=0"
    )


def test_the_placeholder_statement_is_refused_for_its_unknown_function():
    with pytest.raises(InvalidFormula) as refused:
        run("$myNewVariable = function($ServiceDefinedVariable, $myCustomVariable);")
    assert refused.value.detail == "Line 1, Col 18: function is not a function"


# --- "Example autoscale formulas" -----------------------------------------------------------

TIME_BASED = """$curTime = time();
$workHours = $curTime.hour >= 8 && $curTime.hour < 18;
$isWeekday = $curTime.weekday >= 1 && $curTime.weekday <= 5;
$isWorkingWeekdayHour = $workHours && $isWeekday;
$TargetDedicatedNodes = $isWorkingWeekdayHour ? 20:10;
$NodeDeallocationOption = taskcompletion;"""


def test_example_1_time_based_adjustment():
    result = run(TIME_BASED, now=THURSDAY_EVENING)
    assert result.results_text == (
        "$TargetDedicatedNodes=10;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;"
        "$curTime=2016-10-13T19:18:47.805Z;$isWeekday=1;$isWorkingWeekdayHour=0;$workHours=0"
    )
    assert run(TIME_BASED, now=MONDAY_MORNING).targets.target_dedicated == 20


def test_example_1_in_mountain_daylight_time():
    formula = TIME_BASED.replace(
        "$curTime = time();", "$curTime = time() + (-6 * TimeInterval_Hour);"
    )
    # 19:18 UTC on Thursday is 13:18 MDT: working hours
    result = run(formula, now=THURSDAY_EVENING)
    assert result.targets.target_dedicated == 20
    assert "$curTime=2016-10-13T13:18:47.805Z" in result.results_text


TASK_BASED = """// Get pending tasks for the past 15 minutes.
$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 15);
// If we have fewer than 70 percent data points, we use the last sample point,
// otherwise we use the maximum of last sample point and the history average.
$tasks = $samples < 70 ? max(0,$PendingTasks.GetSample(1)) : max( $PendingTasks.GetSample(1), avg($PendingTasks.GetSample(TimeInterval_Minute * 15)));
// If number of pending tasks is not 0, set targetVM to pending tasks, otherwise
// half of current dedicated.
$targetVMs = $tasks > 0? $tasks:max(0, $TargetDedicatedNodes/2);
// The pool size is capped at 20, if target VM value is more than that, set it
// to 20. This value should be adjusted according to your use case.
$TargetDedicatedNodes = max(0, min($targetVMs, 20));
// Set node deallocation mode - let running tasks finish before removing a node
$NodeDeallocationOption = taskcompletion;"""


def test_example_2_uses_the_last_sample_while_history_is_short():
    # five minutes of history: 10 of 30 samples, 33% < 70%; the last sample is 12
    sampled = samples(PendingTasks=history([0] * 9 + [12]))
    result = run(TASK_BASED, sampled=sampled, TargetDedicatedNodes=2)
    assert result.targets.target_dedicated == 12
    assert "$samples=33.3333;$targetVMs=12;$tasks=12" in result.results_text


def test_example_2_uses_the_larger_of_the_last_sample_and_the_average():
    # fifteen minutes: 29 samples of 30 and a last one of 30: average 31
    sampled = samples(PendingTasks=history([30] * 29 + [60]))
    result = run(TASK_BASED, sampled=sampled, TargetDedicatedNodes=2)
    assert result.variables["$tasks"] == 60
    assert result.targets.target_dedicated == 20  # capped


def test_example_2_halves_the_pool_when_nothing_is_pending():
    result = run(
        TASK_BASED, sampled=samples(PendingTasks=steady(0, minutes=15)), TargetDedicatedNodes=9
    )
    assert result.variables["$targetVMs"] == 4.5
    assert result.targets.target_dedicated == 4
    assert result.results_text == (
        "$TargetDedicatedNodes=4;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;"
        "$samples=100;$targetVMs=4.5;$tasks=0"
    )


def test_example_2_on_a_pool_with_no_sample_at_all():
    # max(0, <empty doubleVec>) is 0: the documented guard works on a brand new pool
    result = run(TASK_BASED, TargetDedicatedNodes=0)
    assert result.targets.target_dedicated == 0
    assert "$samples=0;$targetVMs=0;$tasks=0" in result.results_text


PARALLEL_TASKS = """// Determine whether 70 percent of the samples have been recorded in the past
// 15 minutes; if not, use last sample
$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);
$tasks = $samples < 70 ? max(0,$ActiveTasks.GetSample(1)) : max( $ActiveTasks.GetSample(1),avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));
// Set the number of nodes to add to one-fourth the number of active tasks
// (the TaskSlotsPerNode property on this pool is set to 4, adjust
// this number for your use case)
$cores = $TargetDedicatedNodes * 4;
$extraVMs = (($tasks - $cores) + 3) / 4;
$targetVMs = ($TargetDedicatedNodes + $extraVMs);
// Attempt to grow the number of compute nodes to match the number of active
// tasks, with a maximum of 3
$TargetDedicatedNodes = max(0,min($targetVMs,3));
// Keep the nodes active until the tasks finish
$NodeDeallocationOption = taskcompletion;"""


def test_example_3_adds_a_node_per_four_active_tasks():
    # one node (4 slots), 6 active tasks: (6 - 4 + 3) / 4 = 1.25 more, 2.25 in all -> 2
    result = run(
        PARALLEL_TASKS, sampled=samples(ActiveTasks=steady(6, minutes=15)), TargetDedicatedNodes=1
    )
    assert result.variables["$extraVMs"] == 1.25
    assert result.targets.target_dedicated == 2


def test_example_3_grows_to_three_nodes_at_most():
    result = run(
        PARALLEL_TASKS, sampled=samples(ActiveTasks=steady(100, minutes=15)), TargetDedicatedNodes=1
    )
    assert result.targets.target_dedicated == 3


def test_example_3_shrinks_an_idle_pool():
    # 2 nodes, nothing active: (0 - 8 + 3) / 4 = -1.25, 0.75 in all -> 0
    result = run(
        PARALLEL_TASKS, sampled=samples(ActiveTasks=steady(0, minutes=15)), TargetDedicatedNodes=2
    )
    assert result.targets.target_dedicated == 0
    assert "$cores=8;$extraVMs=-1.25;$samples=100;$targetVMs=0.75;$tasks=0" in result.results_text


def initial_size_formula(created: datetime) -> str:
    # the C# snippet's string.Format(@"...", DateTime.UtcNow.ToString("r"), 4)
    now = created.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return f"""
    $TargetDedicatedNodes = 4;
    lifespan         = time() - time("{now}");
    span             = TimeInterval_Minute * 60;
    startup          = TimeInterval_Minute * 10;
    ratio            = 50;

    $TargetDedicatedNodes = (lifespan > startup ? (max($RunningTasks.GetSample(span, ratio), $ActiveTasks.GetSample(span, ratio)) == 0 ? 0 : $TargetDedicatedNodes) : 4);
    """


def test_example_4_keeps_four_nodes_for_the_first_ten_minutes():
    formula = initial_size_formula(NOW - timedelta(minutes=5))
    result = run(formula)  # no samples: the sample methods are in the branch not taken
    assert result.targets.target_dedicated == 4
    assert result.results_text == (
        "$TargetDedicatedNodes=4;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "lifespan=00:05:00.9710000;ratio=50;span=01:00:00;startup=00:10:00"
    )


def test_example_4_empties_a_pool_idle_for_an_hour():
    formula = initial_size_formula(NOW - timedelta(hours=2))
    idle = samples(RunningTasks=steady(0, minutes=60), ActiveTasks=steady(0, minutes=60))
    assert run(formula, sampled=idle).targets.target_dedicated == 0


def test_example_4_keeps_a_busy_pool():
    formula = initial_size_formula(NOW - timedelta(hours=2))
    busy = samples(RunningTasks=steady(3, minutes=60), ActiveTasks=steady(0, minutes=60))
    assert run(formula, sampled=busy).targets.target_dedicated == 4


def test_example_4_after_startup_wants_half_an_hour_of_samples():
    formula = initial_size_formula(NOW - timedelta(hours=2))
    short = samples(RunningTasks=steady(0, minutes=20), ActiveTasks=steady(0, minutes=60))
    with pytest.raises(EvaluationFailed) as failed:
        run(formula, sampled=short)
    assert failed.value.detail.endswith("$RunningTasks wanted 50%, received 33.3333%")


# --- Other Microsoft pages ------------------------------------------------------------------


def test_cli_sample_script_scales_to_the_active_tasks_up_to_ten():
    # "az batch pool autoscale enable" in the Batch CLI sample for Windows pools
    formula = (
        "$averageActiveTaskCount = avg($ActiveTasks.GetSample(TimeInterval_Minute * 15));"
        "$TargetDedicated = min(10, $averageActiveTaskCount);"
    )
    sampled = samples(ActiveTasks=history([6] * 15 + [7] * 15))
    result = run(formula, sampled=sampled)
    assert result.results_text == (
        "$TargetDedicatedNodes=6;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "$averageActiveTaskCount=6.5"
    )


def test_rendering_tutorial_keeps_one_node_and_at_most_eight():
    formula = (
        "$averageActiveTaskCount = avg($ActiveTasks.GetSample(TimeInterval_Minute * 5));"
        "$TargetDedicatedNodes = min(8, $averageActiveTaskCount + 1);"
    )
    assert (
        run(formula, sampled=samples(ActiveTasks=steady(0, minutes=5))).targets.target_dedicated
        == 1
    )
    assert (
        run(formula, sampled=samples(ActiveTasks=steady(50, minutes=5))).targets.target_dedicated
        == 8
    )


POWERSHELL = (
    "totalNodes=($CPUPercent.GetSamplePercent(TimeInterval_Minute*0,TimeInterval_Minute*10)"
    "<0.7?5:(min($CPUPercent.GetSample(TimeInterval_Minute*0, TimeInterval_Minute*10))>0.8"
    "?($CurrentDedicated*1.1):$CurrentDedicated));$TargetDedicated=min(100,totalNodes);"
)


def test_powershell_test_azbatchautoscale_example():
    # its documented output, "$TargetDedicated=5;$NodeDeallocationOption=requeue;totalNodes=5",
    # from an api-version before low-priority nodes
    result = run(POWERSHELL)
    assert result.results_text == (
        "$TargetDedicatedNodes=5;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "totalNodes=5"
    )


def test_powershell_example_with_a_busy_history():
    busy = samples(CPUPercent=steady(0.9, minutes=10))
    assert run(POWERSHELL, sampled=busy, CurrentDedicatedNodes=50).targets.target_dedicated == 55


def test_rest_reference_example_with_a_lower_case_variable():
    # the REST reference's request body spells $targetDedicatedNodes: names are case-sensitive,
    # so that is a variable of the formula's own and the target stays as it is
    formula = POWERSHELL.replace("$TargetDedicated=", "$targetDedicatedNodes=")
    assert run(formula, TargetDedicatedNodes=2).results_text == (
        "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "$targetDedicatedNodes=5;totalNodes=5"
    )
