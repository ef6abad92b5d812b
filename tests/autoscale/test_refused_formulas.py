"""Formulas Batch refuses before running them: HTTP 400 with AutoScalingFormulaSyntaxError
(or AutoScaleFormulaTooLong), the place and the reason in the error's Message value."""

from __future__ import annotations

import pytest

from tasks.autoscale import InvalidFormula, ListSamples, evaluate, validate
from tests.autoscale.helpers import NOW


def refusal(formula: str) -> InvalidFormula:
    with pytest.raises(InvalidFormula) as refused:
        evaluate(formula, samples=ListSamples(), now=NOW, current={})
    # validate() refuses exactly the same formulas without running anything
    with pytest.raises(InvalidFormula) as again:
        validate(formula)
    assert again.value.values == refused.value.values
    return refused.value


@pytest.mark.parametrize(
    "formula, detail",
    [
        ("$TargetDedicatedNodes = ", "Line 1, Col 25: Syntax error: the formula ends too early"),
        (
            "$TargetDedicatedNodes = (1 + 2",
            "Line 1, Col 31: Syntax error: the formula ends too early; expected ')'",
        ),
        (
            "$a = 1 $b = 2",
            "Line 1, Col 8: Syntax error: unexpected '$b' (is a ';' missing before it?)",
        ),
        ("$a = 1 +* 2", "Line 1, Col 9: Syntax error: unexpected '*'"),
        ("$a = 1 # 2", "Line 1, Col 8: Syntax error: unexpected character '#'"),
        ("$a = 'single quotes'", 'Line 1, Col 6: Syntax error: unexpected character "\'"'),
        (
            "$TargetDedicatedNodes = {pool.CurrentDedicatedComputeNodes};",
            "Line 1, Col 25: Syntax error: unexpected character '{'",
        ),
        ("$a = 1;\n$b = (2 ? 3);", "Line 2, Col 12: Syntax error: unexpected ')'"),
    ],
)
def test_a_formula_that_does_not_parse(formula, detail):
    refused = refusal(formula)
    assert refused.code == "AutoScalingFormulaSyntaxError"
    assert refused.message == "The specified auto-scaling formula has a syntax error."
    assert refused.detail.startswith(detail)
    assert refused.batch_values() == [{"key": "Message", "value": refused.detail}]


@pytest.mark.parametrize(
    "formula, detail",
    [
        ("$a = average(1, 2);", "Line 1, Col 6: average is not a function"),
        ("$a = $max(1, 2);", "Line 1, Col 6: $max is not a function"),
        ("$a = val([1, 2]);", "Line 1, Col 6: val() takes 2 arguments, not 1"),
        ("$a = rand(1);", "Line 1, Col 6: rand() takes 0 arguments, not 1"),
        ('$a = time("", "");', "Line 1, Col 6: time() takes 0 to 1 arguments, not 2"),
        ("$a = lg();", "Line 1, Col 6: lg() takes at least 1 argument, not 0"),
        (
            "$a = $ActiveTasks.GetSamples(1);",
            "Line 1, Col 18: $ActiveTasks has no method GetSamples(); its methods are GetSample(), "
            "GetSamplePercent(), GetSamplePeriod(), Count(), HistoryBeginTime()",
        ),
        (
            "$a = $ActiveTasks.GetSample();",
            "Line 1, Col 18: GetSample() takes 1 to 3 arguments, not 0",
        ),
        ("$a = $ActiveTasks.Count(5);", "Line 1, Col 18: Count() takes 0 arguments, not 1"),
        (
            "$a = $CurrentDedicatedNodes.GetSample(1);",
            "Line 1, Col 28: GetSample() is a method of the sampled metrics ($CPUPercent, $ActiveTasks, ...) only",
        ),
        (
            "x = 1; $a = x.GetSample(1);",
            "Line 1, Col 14: GetSample() is a method of the sampled metrics",
        ),
        ("$a = time().hours;", "Line 1, Col 12: a timestamp has no member 'hours'"),
        (
            "$a = TimeInterval_Minutes * 5;",
            "Line 1, Col 6: TimeInterval_Minutes is not a time interval",
        ),
    ],
)
def test_a_formula_with_an_unknown_function_method_member_or_constant(formula, detail):
    refused = refusal(formula)
    assert refused.code == "AutoScalingFormulaSyntaxError"
    assert refused.detail.startswith(detail)


@pytest.mark.parametrize(
    "formula, detail",
    [
        ("$CPUPercent = 5;", "Line 1, Col 1: $CPUPercent is a read-only service-defined variable"),
        (
            "$CurrentDedicatedNodes = 5;",
            "Line 1, Col 1: $CurrentDedicatedNodes is a read-only service-defined variable",
        ),
        (
            "$CurrentDedicated = 5;",
            "Line 1, Col 1: $CurrentDedicated is a read-only service-defined variable",
        ),
        (
            "$TaskSlotsPerNode = 2;",
            "Line 1, Col 1: $TaskSlotsPerNode is a read-only service-defined variable",
        ),
        (
            "TimeInterval_Minute = 2;",
            "Line 1, Col 1: TimeInterval_Minute is a constant and cannot be assigned",
        ),
        ("requeue = 2;", "Line 1, Col 1: requeue is a constant and cannot be assigned"),
    ],
)
def test_a_formula_assigning_what_cannot_be_assigned(formula, detail):
    assert refusal(formula).detail == detail


def test_a_sampled_metric_read_without_a_method():
    refused = refusal("$TargetDedicatedNodes = $PendingTasks / 4;")
    assert refused.detail == (
        "Line 1, Col 25: $PendingTasks is a sampled metric: read it with a "
        "method such as $PendingTasks.GetSample(TimeInterval_Minute * 5)"
    )


def test_a_formula_longer_than_8_kb():
    formula = "$TargetDedicatedNodes = 1;" + " " * 8200
    refused = refusal(formula)
    assert refused.code == "AutoScaleFormulaTooLong"
    assert refused.message == "The specified auto-scaling formula exceeds lengths limit."
    assert refused.detail == "The formula is 8226 characters long; at most 8192 are allowed"


def test_a_formula_of_exactly_8192_characters_is_accepted():
    formula = "$TargetDedicatedNodes = 1;"
    formula += " " * (8192 - len(formula))
    validate(formula)


def test_a_formula_with_more_than_100_statements():
    formula = "".join(f"v{i} = {i};\n" for i in range(101))
    refused = refusal(formula)
    assert refused.detail == "Line 101, Col 1: A formula can hold at most 100 statements"
    validate("".join(f"v{i} = {i};\n" for i in range(100)))


def test_comments_line_breaks_and_empty_statements_are_accepted():
    validate("// a comment\n$a = 1;; /* a block\ncomment */ $b = $a\n;\n")
    validate("")


@pytest.mark.parametrize(
    "formula",
    [
        "$a = " + "-" * 8000 + "1",
        "$a = 1" + "+1" * 2000,
        "$a = " + "max(" * 1500 + "1" + ")" * 1500,
        "$a = " + "1 ? " * 600 + "1" + " : 1" * 600,
    ],
)
def test_expressions_nested_deeper_than_a_hundred_are_refused_not_crashed_on(formula):
    refused = refusal(formula)
    assert refused.code == "AutoScalingFormulaSyntaxError"
    assert refused.detail.endswith("Expressions are nested more than 100 deep")


def test_expressions_nested_a_hundred_deep_are_evaluated():
    result = evaluate(
        "$a = " + "max(" * 99 + "1" + ")" * 99, samples=ListSamples(), now=NOW, current={}
    )
    assert result.variables["$a"] == 1
    # parentheses alone add no depth
    assert (
        evaluate(
            "$a = " + "(" * 3000 + "2" + ")" * 3000, samples=ListSamples(), now=NOW, current={}
        ).variables["$a"]
        == 2
    )
