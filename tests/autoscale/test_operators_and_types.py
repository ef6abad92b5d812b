"""The operations table: which operators apply to which types, with what result."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.autoscale import DoubleVec, ListSamples, TimeInterval, evaluate
from tests.autoscale.helpers import NOW


def value(expression: str, now=NOW):
    return evaluate(f"$v = {expression};", samples=ListSamples(), now=now, current={}).variables[
        "$v"
    ]


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("10 - 4 - 3", 3.0),  # left-associative
        ("12 / 4 / 3", 1.0),
        ("7 / 2", 3.5),
        ("-3 + 5", 2.0),
        ("- -3", 3.0),
        ("!0", 1.0),
        ("!2.5", 0.0),
        ("1.5e2", 150.0),
        (".25 * 4", 1.0),
        ("1 < 2", 1.0),
        ("2 <= 2", 1.0),
        ("1 == 1.0", 1.0),
        ("3 >= 4", 0.0),
        ("3 > 4", 0.0),
        ("3 != 4", 1.0),
        ("1 + 1 == 2", 1.0),  # arithmetic binds tighter than comparison
        ("1 < 2 == 1", 1.0),  # relational tighter than equality
        ("1 && 0 || 1", 1.0),  # && tighter than ||
        ("0 || 0", 0.0),
        ("2 && 3", 1.0),
        ("1 ? 2 : 3", 2.0),
        ("0 ? 2 : 0 ? 3 : 4", 4.0),  # right-associative
        ("0.5 ? 1 : 2", 1.0),  # nonzero is true
        ('"abc" < "abd"', 1.0),
        ('"a" == "a"', 1.0),
    ],
)
def test_doubles_and_strings(expression, expected):
    assert value(expression) == expected


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("[1, 2, 3] + 1", (2.0, 3.0, 4.0)),
        ("[1, 2, 3] * 2", (2.0, 4.0, 6.0)),
        ("[2, 4] / 2", (1.0, 2.0)),
        ("[1, 2] - [1, 1]", (0.0, 1.0)),
        ("[1, 2] * [3, 4]", (3.0, 8.0)),
        ("10 - [1, 2]", (9.0, 8.0)),
        ("[]", ()),
        ("[[1, 2], 3]", (1.0, 2.0, 3.0)),
    ],
)
def test_doublevecs(expression, expected):
    result = value(expression)
    assert isinstance(result, DoubleVec)
    assert result == expected


def test_timeintervals_scale_add_and_compare():
    assert value("TimeInterval_Minute * 5") == TimeInterval(300.0)
    assert value("5 * TimeInterval_Minute") == TimeInterval(300.0)
    assert value("TimeInterval_Hour / 4") == TimeInterval(900.0)
    assert value("TimeInterval_Hour - TimeInterval_Minute * 10") == TimeInterval(3000.0)
    assert value("-TimeInterval_Day") == TimeInterval(-86400.0)
    assert value("TimeInterval_Week == TimeInterval_Day * 7") == 1
    assert value("TimeInterval_Millisecond * 1000 == TimeInterval_Second") == 1
    assert value("TimeInterval_Microsecond * 1000 == TimeInterval_Millisecond") == 1
    assert value("TimeInterval_100ns * 10 < TimeInterval_Microsecond * 1.01") == 1
    assert value("TimeInterval_Year == TimeInterval_Day * 365") == 1
    assert value("TimeInterval_Zero < TimeInterval_100ns") == 1


def test_timestamps_shift_subtract_and_compare():
    assert value("time() + TimeInterval_Hour") == NOW + timedelta(hours=1)
    assert value("TimeInterval_Hour + time()") == NOW + timedelta(hours=1)
    assert value("time() - TimeInterval_Day") == NOW - timedelta(days=1)
    assert value('time() - time("2025-04-24T11:00:00Z")') == TimeInterval(34 * 60 + 37.971)
    assert value('time("2025-04-24") < time()') == 1


@pytest.mark.parametrize(
    "member, expected",
    [
        ("year", 2025.0),
        ("month", 4.0),
        ("day", 24.0),
        ("weekday", 4.0),  # a Thursday
        ("hour", 11.0),
        ("minute", 34.0),
        ("second", 37.0),
    ],
)
def test_timestamp_members(member, expected):
    assert value(f"time().{member}") == expected


def test_sunday_is_weekday_seven():
    assert value("time().weekday", now=datetime(2025, 4, 27, tzinfo=UTC)) == 7


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025-04-24T11:00:00Z", datetime(2025, 4, 24, 11, tzinfo=UTC)),
        ("2025-04-24T11:00:00.5Z", datetime(2025, 4, 24, 11, 0, 0, 500000, tzinfo=UTC)),
        ("2025-04-24T11:00:00.123Z", datetime(2025, 4, 24, 11, 0, 0, 123000, tzinfo=UTC)),
        ("2025-04-24T13:00:00+02:00", datetime(2025, 4, 24, 11, tzinfo=UTC)),
        ("2025-04-24T11:00Z", datetime(2025, 4, 24, 11, tzinfo=UTC)),
        ("2025-04-24", datetime(2025, 4, 24, tzinfo=UTC)),
        ("2025-04", datetime(2025, 4, 1, tzinfo=UTC)),
        ("2025", datetime(2025, 1, 1, tzinfo=UTC)),
        ("Thu, 24 Apr 2025 11:00:00 GMT", datetime(2025, 4, 24, 11, tzinfo=UTC)),
        ("", NOW),
    ],
)
def test_time_parses_w3c_dtf_and_rfc_1123(text, expected):
    assert value(f'time("{text}")') == expected


@pytest.mark.parametrize(
    "text",
    [
        "2025-04-24T11:00:00.123456Z",  # Java 17's microseconds, which the service refused
        "2025-04-24T11:00:00",  # a time needs a zone
        "2025-13-01",
        "24/04/2025",
        "Thu, 24 Apr 2025",
    ],
)
def test_time_refuses_other_formats(text):
    from tasks.autoscale import EvaluationFailed

    with pytest.raises(EvaluationFailed):
        value(f'time("{text}")')


def test_division_by_zero_gives_infinity_not_an_error():
    assert value("1 / 0") == float("inf")
    assert value("-1 / 0") == float("-inf")
    assert value("(0 / 0) != (0 / 0)") == 1  # nan


def test_strings_with_escaped_quotes():
    assert value(r'"say \"hi\""') == 'say "hi"'


def test_deallocation_options_are_names():
    assert value("taskcompletion") == "taskcompletion"
    assert value('requeue == "requeue"') == 1


def test_user_variables_with_and_without_a_dollar_are_distinct():
    result = evaluate("x = 1; $x = 2; y = x + $x;", samples=ListSamples(), now=NOW, current={})
    assert result.variables == {"x": 1.0, "$x": 2.0, "y": 3.0}


def test_a_variable_can_be_reassigned_and_read_back():
    result = evaluate(
        "$a = 1; $a = $a + 1; $a = $a * 10;", samples=ListSamples(), now=NOW, current={}
    )
    assert result.variables == {"$a": 20.0}


def test_function_names_are_not_reserved_as_variables():
    result = evaluate(
        "round = 3; max = 4; $r = max(round, 1);", samples=ListSamples(), now=NOW, current={}
    )
    assert result.variables == {"round": 3.0, "max": 4.0, "$r": 3.0}


def test_a_one_sample_vector_compares_and_decides_as_its_value():
    # a published formula: $pendingTasks = $PendingTasks.GetSample(1);
    # $TargetDedicatedNodes = ($pendingTasks > 0) ? 1 : 0;
    from tasks.autoscale import EvaluationFailed
    from tests.autoscale.helpers import history, samples

    formula = "$pendingTasks = $PendingTasks.GetSample(1); $TargetDedicatedNodes = ($pendingTasks > 0) ? 1 : 0;"
    busy = samples(PendingTasks=history([0, 4]))
    assert evaluate(formula, samples=busy, now=NOW, current={}).targets.target_dedicated == 1
    idle = samples(PendingTasks=history([4, 0]))
    assert evaluate(formula, samples=idle, now=NOW, current={}).targets.target_dedicated == 0
    assert value("[3] ? [2] == 2 : 0") == 1
    assert value("![0]") == 1
    assert (
        evaluate(
            "$TargetDedicatedNodes = [5];", samples=ListSamples(), now=NOW, current={}
        ).targets.target_dedicated
        == 5
    )
    # no sample at all is no value
    with pytest.raises(EvaluationFailed) as failed:
        evaluate(formula, samples=ListSamples(), now=NOW, current={})
    assert failed.value.detail == (
        "Line 1, Col 84: operator > does not apply to doubleVec and double"
    )
