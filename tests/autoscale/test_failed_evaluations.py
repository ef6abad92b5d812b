"""Formulas that parse but fail as they run: reported in autoScaleRun.error (HTTP 200), with
the targets and variables as far as evaluation got in autoScaleRun.results."""

from __future__ import annotations

import pytest

from tasks.autoscale import EvaluationFailed, ListSamples, evaluate
from tests.autoscale.helpers import NOW, samples, steady


def failure(formula: str, sampled=None, **current) -> EvaluationFailed:
    with pytest.raises(EvaluationFailed) as failed:
        evaluate(
            formula,
            samples=sampled or ListSamples(),
            now=NOW,
            current={f"${k}": v for k, v in current.items()},
        )
    return failed.value


@pytest.mark.parametrize(
    "formula, detail",
    [
        ('$a = "x" * 2;', "Line 1, Col 10: operator * does not apply to string and double"),
        ("$a = time() + 1;", "Line 1, Col 13: operator + does not apply to timestamp and double"),
        (
            "$a = TimeInterval_Hour * TimeInterval_Hour;",
            "Line 1, Col 24: operator * does not apply to timeinterval and timeinterval",
        ),
        ("$a = time() < 3;", "Line 1, Col 13: operator < does not apply to timestamp and double"),
        (
            "$a = [1, 2] < [1, 2];",
            "Line 1, Col 13: operator < does not apply to doubleVec and doubleVec",
        ),
        ("$a = [1, 2] + [1, 2, 3];", "Line 1, Col 13: doubleVec lengths differ (2 and 3)"),
        ('$a = !"x";', "Line 1, Col 6: operator ! does not apply to string"),
        ("$a = -time();", "Line 1, Col 6: operator - does not apply to timestamp"),
        ("$a = [1, 2] ? 1 : 2;", "Line 1, Col 6: a condition must be a double, not a doubleVec"),
        ("$a = (1 + 2).hour;", "Line 1, Col 13: .hour is a member of a timestamp, not of a double"),
        ('$a = avg(1, "x");', "Line 1, Col 6: avg() takes doubles and doubleVecs, not a string"),
        ("$a = [time()];", "Line 1, Col 6: a doubleVec holds doubles, not a timestamp"),
        ("$a = time(5);", "Line 1, Col 6: time() takes a string, not a double"),
        (
            '$a = time("yesterday");',
            "Line 1, Col 6: time('yesterday'): not a W3C-DTF or RFC 1123 date and time",
        ),
        (
            "$TargetDedicatedNodes = time();",
            "Line 1, Col 1: $TargetDedicatedNodes takes a double, not a timestamp",
        ),
        (
            "$TargetLowPriorityNodes = [1, 2];",
            "Line 1, Col 1: $TargetLowPriorityNodes takes a double, not a doubleVec",
        ),
        (
            "$NodeDeallocationOption = 1;",
            "Line 1, Col 1: $NodeDeallocationOption takes one of requeue, terminate, taskcompletion, "
            "retaineddata, not double",
        ),
        (
            '$NodeDeallocationOption = "drain";',
            "Line 1, Col 1: $NodeDeallocationOption takes one of requeue, terminate, taskcompletion, "
            "retaineddata, not drain",
        ),
        (
            "$a = undefinedVariable + 1;",
            "Line 1, Col 6: undefinedVariable is used before it is assigned",
        ),
        (
            "$a = val([1, 2], 2);",
            "Line 1, Col 6: val() index 2 is outside the doubleVec of length 2",
        ),
        (
            "$a = val([1, 2], -1);",
            "Line 1, Col 6: val() index -1 is outside the doubleVec of length 2",
        ),
        ("$a = avg([]);", "Line 1, Col 6: avg() of an empty doubleVecList"),
        ("$a = max();", "Line 1, Col 6: max() of an empty doubleVecList"),
        ("$a = percentile([1, 2], 101);", "Line 1, Col 6: percentile 101 is outside 0 to 100"),
        (
            "$a = $ActiveTasks.HistoryBeginTime();",
            "Line 1, Col 18: $ActiveTasks has no samples yet",
        ),
        (
            "$a = $ActiveTasks.GetSample(1, 2);",
            "Line 1, Col 18: GetSample() takes (start [, end] [, samplePercent]) with timeintervals or "
            "timestamps, not a double as argument 1",
        ),
        (
            "$a = $ActiveTasks.GetSamplePercent(TimeInterval_Minute, 50);",
            "Line 1, Col 18: GetSamplePercent() takes (start [, end]) with timeintervals or timestamps, "
            "not a double as argument 2",
        ),
        (
            "$TargetDedicatedNodes = 1 / 0;",
            "Line 1, Col 1: $TargetDedicatedNodes is inf, not a number of nodes",
        ),
        (
            "$TargetLowPriorityNodes = 0 / 0;",
            "Line 1, Col 1: $TargetLowPriorityNodes is nan, not a number of nodes",
        ),
    ],
)
def test_a_run_time_failure_is_placed_and_explained(formula, detail):
    failed = failure(formula)
    assert failed.code == "AutoScaleFormulaEvaluationError"
    assert failed.message == "Autoscale evaluation failed"
    assert failed.detail == detail


def test_the_run_error_has_the_autoscale_run_shape():
    failed = failure("$a = undefined;")
    assert failed.run_error() == {
        "code": "AutoScaleFormulaEvaluationError",
        "message": "Autoscale evaluation failed",
        "values": [
            {"name": "Message", "value": "Line 1, Col 6: undefined is used before it is assigned"}
        ],
    }


def test_results_keep_what_was_assigned_before_the_failure():
    failed = failure(
        "$TargetDedicatedNodes = 5; x = 2; y = x + time(); z = 3;", TargetDedicatedNodes=1
    )
    assert failed.results_text == (
        "$TargetDedicatedNodes=5;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;x=2"
    )


def test_an_insufficient_sample_failure_keeps_the_results_so_far():
    formula = "$n = $CPUPercent.Count(); $cpu = avg($CPUPercent.GetSample(TimeInterval_Hour));"
    failed = failure(formula, samples(CPUPercent=steady(40, minutes=10)))
    assert failed.code == "InsufficientSampleData"
    assert failed.message == "Autoscale evaluation failed due to insufficient sample data"
    assert failed.detail == (
        "Line 1, Col 59: Insufficient data from data set: $CPUPercent wanted 70%, received 16.6667%"
    )
    assert failed.results_text.endswith(";$n=20")


def test_the_failing_branch_of_a_condition_is_not_evaluated():
    formula = (
        "$a = 1 ? 2 : undefinedVariable; $b = 0 ? $ActiveTasks.GetSample(TimeInterval_Hour) : 3;"
    )
    result = evaluate(formula, samples=ListSamples(), now=NOW, current={})
    assert result.variables == {"$a": 2.0, "$b": 3.0}


def test_and_and_or_stop_at_the_first_operand_that_decides():
    formula = "$a = 0 && undefinedVariable; $b = 1 || undefinedVariable;"
    result = evaluate(formula, samples=ListSamples(), now=NOW, current={})
    assert result.variables == {"$a": 0.0, "$b": 1.0}


def test_a_target_that_is_no_number_is_reported_where_it_was_assigned():
    failed = failure("x = 0;\n$TargetDedicated = 1 / x;\ny = 2;")
    assert failed.detail == "Line 2, Col 1: $TargetDedicatedNodes is inf, not a number of nodes"
    assert failed.results_text == (
        "$TargetDedicatedNodes=inf;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "x=0;y=2"
    )
