"""How targets come out of a formula, and how autoScaleRun.results prints what it computed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tasks.autoscale import CURRENT_VARIABLES, ListSamples, evaluate
from tests.autoscale.helpers import NOW


def run(formula: str, **current):
    return evaluate(
        formula, samples=ListSamples(), now=NOW, current={f"${k}": v for k, v in current.items()}
    )


def test_a_formula_that_sets_no_target_keeps_the_current_ones():
    result = run("x = 1;", TargetDedicatedNodes=3, TargetLowPriorityNodes=2)
    assert (result.targets.target_dedicated, result.targets.target_low_priority) == (3, 2)
    assert result.targets.node_deallocation_option is None
    assert result.results_text == (
        "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=2;$NodeDeallocationOption=requeue;x=1"
    )


def test_an_empty_formula_keeps_the_current_targets():
    assert run("", TargetDedicatedNodes=4).targets.target_dedicated == 4


def test_reading_a_target_before_assigning_it_gives_the_current_one():
    result = run("$TargetLowPriorityNodes = $TargetLowPriorityNodes + 1;", TargetLowPriorityNodes=4)
    assert result.targets.target_low_priority == 5


def test_reading_a_target_after_assigning_it_gives_the_new_one():
    result = run(
        "$TargetDedicatedNodes = 2; $TargetDedicatedNodes = $TargetDedicatedNodes * 3;",
        TargetDedicatedNodes=10,
    )
    assert result.targets.target_dedicated == 6


@pytest.mark.parametrize(
    "assigned, target",
    [
        ("2.9", 2),
        ("0.5", 0),
        ("1e9", 1_000_000_000),
        ("-3", 0),
        ("-0.5", 0),
        ("1e300", 2**31 - 1),
    ],
)
def test_a_target_drops_its_fraction_and_is_clamped(assigned, target):
    result = run(f"$TargetDedicatedNodes = {assigned};")
    assert result.targets.target_dedicated == target
    assert result.results_text.startswith(f"$TargetDedicatedNodes={target:g};")


def test_the_full_target_name_wins_over_its_alias():
    # "If both the fully named variable and its alias are set by the formula, the value
    # assigned to the fully named variable will take precedence."
    for formula in (
        "$TargetDedicatedNodes = 4; $TargetDedicated = 9;",
        "$TargetDedicated = 9; $TargetDedicatedNodes = 4;",
    ):
        assert run(formula).targets.target_dedicated == 4
    for formula in (
        "$TargetLowPriorityNodes = 4; $TargetLowPriority = 9;",
        "$TargetLowPriority = 9; $TargetLowPriorityNodes = 4;",
    ):
        assert run(formula).targets.target_low_priority == 4


def test_an_alias_alone_sets_the_target():
    result = run("$TargetLowPriority = 7;")
    assert result.targets.target_low_priority == 7
    assert result.results_text == (
        "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=7;$NodeDeallocationOption=requeue"
    )


def test_aliases_read_the_same_values():
    result = run(
        "a = $TargetDedicated; b = $CurrentDedicated; c = $CurrentLowPriority;",
        TargetDedicatedNodes=3,
        CurrentDedicatedNodes=2,
        CurrentLowPriorityNodes=1,
    )
    assert result.variables == {"a": 3.0, "b": 2.0, "c": 1.0}


def test_names_are_case_sensitive():
    # $pendingTasks and $PendingTasks side by side, as a published formula has them
    result = run(
        "$targetdedicatednodes = $CurrentDedicatedNodes + 1;",
        CurrentDedicatedNodes=2,
        TargetDedicatedNodes=1,
    )
    assert result.targets.target_dedicated == 1
    assert result.results_text == (
        "$TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "$targetdedicatednodes=3"
    )


@pytest.mark.parametrize("option", ["requeue", "terminate", "taskcompletion", "retaineddata"])
def test_each_deallocation_option(option):
    result = run(f"$NodeDeallocationOption = {option};")
    assert result.targets.node_deallocation_option == option
    assert f"$NodeDeallocationOption={option}" in result.results_text


def test_a_deallocation_option_as_a_string():
    assert (
        run('$NodeDeallocationOption = "terminate";').targets.node_deallocation_option
        == "terminate"
    )


def test_the_current_variables_and_their_defaults():
    result = run(
        "a = $CurrentDedicatedNodes; b = $CurrentLowPriorityNodes; c = $PreemptedNodeCount;"
        " d = $UsableNodeCount; e = $TaskSlotsPerNode;"
    )
    assert result.variables == {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0, "e": 1.0}
    given = run("e = $TaskSlotsPerNode * $UsableNodeCount;", TaskSlotsPerNode=4, UsableNodeCount=3)
    assert given.variables["e"] == 12
    assert set(CURRENT_VARIABLES) == {
        "$CurrentDedicatedNodes",
        "$CurrentLowPriorityNodes",
        "$PreemptedNodeCount",
        "$UsableNodeCount",
        "$TaskSlotsPerNode",
        "$TargetDedicatedNodes",
        "$TargetLowPriorityNodes",
    }


def test_an_unknown_current_variable_is_a_programming_error():
    with pytest.raises(ValueError, match="not one of"):
        evaluate("x = 1", samples=ListSamples(), now=NOW, current={"$CPUPercent": 3})


def test_variables_keep_the_order_they_were_first_assigned_in():
    result = run("zeta = 1; alpha = 2; zeta = 3; $TargetDedicatedNodes = 1;")
    assert list(result.variables) == ["zeta", "alpha", "$TargetDedicatedNodes"]
    assert result.variables["zeta"] == 3


def test_results_list_user_variables_in_ordinal_order():
    result = run("b = 1; B = 2; $a = 3; _c = 4; a1 = 5; a = 6;")
    assert result.results_text.split(";")[3:] == ["$a=3", "B=2", "_c=4", "a=6", "a1=5", "b=1"]


@pytest.mark.parametrize(
    "expression, printed",
    [
        ("3", "3"),
        ("0.5", "0.5"),
        ("29 / 30 * 100", "96.6667"),
        ("1 / 3", "0.333333"),
        ("123456789", "1.23457e+08"),
        ("0.0001", "0.0001"),
        ("-2.5", "-2.5"),
        ("1 / 0", "inf"),
        ("1 < 2", "1"),
        ("[1, 2.5, 3]", "[1,2.5,3]"),
        ("[]", "[]"),
        ('"text"', "text"),
        ("time()", "2025-04-24T11:34:37.971Z"),
        ('time("2025-01-02T03:04:05Z")', "2025-01-02T03:04:05.000Z"),
        ("TimeInterval_Minute * 90", "01:30:00"),
        ("TimeInterval_Day * 2 + TimeInterval_Second", "2.00:00:01"),
        ("-TimeInterval_Millisecond * 1500", "-00:00:01.5000000"),
        ("TimeInterval_Zero", "00:00:00"),
        ("taskcompletion", "taskcompletion"),
    ],
)
def test_how_values_are_printed(expression, printed):
    result = run(f"x = {expression};")
    assert result.results_text.endswith(f";x={printed}")


def test_time_is_utc_whatever_zone_now_is_given_in():
    from datetime import timedelta, timezone

    now = datetime(2025, 4, 24, 13, 0, tzinfo=timezone(timedelta(hours=2)))
    result = evaluate("t = time(); h = time().hour;", samples=ListSamples(), now=now, current={})
    assert result.results_text.endswith(";h=11;t=2025-04-24T11:00:00.000Z")
    assert result.variables["t"] == datetime(2025, 4, 24, 11, tzinfo=UTC)
