"""The predefined functions, each over doubles, doubleVecs and mixed doubleVecLists."""

from __future__ import annotations

import math

import pytest

from tasks.autoscale import DoubleVec, ListSamples, evaluate
from tests.autoscale.helpers import NOW


def value(expression: str, **kwargs):
    return evaluate(
        f"v = [1, 2, 3]; $r = {expression};", samples=ListSamples(), now=NOW, current={}, **kwargs
    ).variables["$r"]


@pytest.mark.parametrize(
    "expression, expected",
    [
        # "if v = [1,2,3], calling avg(v) is equivalent to calling avg(1,2,3); avg(v, 7) to avg(1,2,3,7)"
        ("avg(v)", 2.0),
        ("avg(1, 2, 3)", 2.0),
        ("avg(v, 7)", 3.25),
        ("avg(1, 2, 3, 7)", 3.25),
        ("len(v, 7)", 4.0),
        ("len()", 0.0),
        ("max(v, 0.5)", 3.0),
        ("min(v, 0.5)", 0.5),
        ("max(0, [])", 0.0),
        ("norm(3, 4)", 5.0),
        ("norm(v)", math.sqrt(14)),
        ("range(v, 10)", 9.0),
        ("std(2, 4, 4, 4, 5, 5, 7, 9)", math.sqrt(32 / 7)),  # the sample deviation, n - 1
        ("std(5)", 0.0),
        ("sum(v, v)", 12.0),
        ("sum()", 0.0),
        ("lg(8)", 3.0),
        ("ln(1)", 0.0),
        ("log(1000)", 3.0),
        ("lg(0)", -math.inf),
        ("ceil(1.2)", 2.0),
        ("floor(-1.2)", -2.0),
        ("round(2.5)", 3.0),
        ("round(-2.5)", -3.0),
        ("round(2.4)", 2.0),
        ("val(v, 0)", 1.0),
        ("val(v, 2)", 3.0),
        ("val(v, 1.9)", 2.0),
        ("percentile(v, 0)", 1.0),
        ("percentile(v, 50)", 2.0),
        ("percentile(v, 100)", 3.0),
        ("percentile([15, 20, 35, 40, 50], 40)", 20.0),  # nearest rank: ceil(0.4 * 5) = 2nd
        ("percentile(7, 90)", 7.0),
    ],
)
def test_scalar_results(expression, expected):
    assert value(expression) == pytest.approx(expected)


@pytest.mark.parametrize(
    "expression, expected",
    [
        # "A vec(double) must be explicitly passed ... Otherwise, the double lg(double) version is assumed."
        ("lg(v)", (0.0, 1.0, math.log2(3))),
        ("lg([8])", (3.0,)),
        ("lg(2, 4)", (1.0, 2.0)),
        ("ln([1])", (0.0,)),
        ("log(v * 10)", (1.0, math.log10(20), math.log10(30))),
        ("ceil([1.1, 2.9])", (2.0, 3.0)),
        ("floor(v / 2)", (0.0, 1.0, 1.0)),
        ("round([0.5, 1.49])", (1.0, 1.0)),
    ],
)
def test_componentwise_results(expression, expected):
    result = value(expression)
    assert isinstance(result, DoubleVec)
    assert result == pytest.approx(expected)


def test_log_of_a_negative_number_is_nan():
    assert math.isnan(value("ln(-1)"))


def test_rand_is_between_zero_and_one():
    assert 0 <= value("rand()") < 1
    assert value("rand()", rng=lambda: 0.25) == 0.25


def test_time_without_an_argument_is_the_evaluation_time():
    assert value("time()") == NOW


def test_stop_ends_the_evaluation_with_what_was_assigned():
    result = evaluate(
        "$TargetDedicatedNodes = 3; stop(); $TargetDedicatedNodes = 9; after = 1;",
        samples=ListSamples(),
        now=NOW,
        current={},
    )
    assert result.stopped
    assert result.targets.target_dedicated == 3
    assert "after" not in result.variables


def test_stop_inside_a_condition():
    formula = "$TargetDedicatedNodes = 2; x = time().weekday == 4 ? stop() : 0; $TargetDedicatedNodes = 8;"
    result = evaluate(formula, samples=ListSamples(), now=NOW, current={})  # NOW is a Thursday
    assert result.stopped and result.targets.target_dedicated == 2
