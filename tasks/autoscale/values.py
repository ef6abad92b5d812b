"""The formula language's value types, its operator table and how values are printed.

Types (Batch's names): double is `float`; doubleVec is `DoubleVec`; string is `str`;
timestamp is an aware UTC `datetime`; timeinterval is `TimeInterval`. A doubleVecList is not a
value: it is the argument list of the functions that flatten doubles and doubleVecs into one
doubleVec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


class DoubleVec(tuple):
    """A doubleVec: an ordered tuple of floats."""

    def __new__(cls, items=()):
        return super().__new__(cls, (float(x) for x in items))


@dataclass(frozen=True, order=True)
class TimeInterval:
    """A timeinterval, in seconds (a float keeps TimeInterval_100ns exact enough)."""

    seconds: float

    def as_timedelta(self) -> timedelta:
        return timedelta(seconds=self.seconds)


SECOND = 1.0
TIME_INTERVALS = {
    "TimeInterval_Zero": TimeInterval(0.0),
    "TimeInterval_100ns": TimeInterval(1e-7),
    "TimeInterval_Microsecond": TimeInterval(1e-6),
    "TimeInterval_Millisecond": TimeInterval(1e-3),
    "TimeInterval_Second": TimeInterval(SECOND),
    "TimeInterval_Minute": TimeInterval(60 * SECOND),
    "TimeInterval_Hour": TimeInterval(3600 * SECOND),
    "TimeInterval_Day": TimeInterval(86400 * SECOND),
    "TimeInterval_Week": TimeInterval(7 * 86400 * SECOND),
    "TimeInterval_Year": TimeInterval(365 * 86400 * SECOND),
}

# The members of a timestamp ($curTime.hour...). weekday is ISO: 1 is Monday, 7 Sunday (the
# documented "1 for Monday", and the weekend formulas Azure's samples use: weekday >= 6).
TIMESTAMP_MEMBERS = {
    "year": lambda t: t.year,
    "month": lambda t: t.month,
    "day": lambda t: t.day,
    "weekday": lambda t: t.isoweekday(),
    "hour": lambda t: t.hour,
    "minute": lambda t: t.minute,
    "second": lambda t: t.second,
}


def type_name(value) -> str:
    """Batch's name of a value's type, for messages."""
    if isinstance(value, float | int):
        return "double"
    if isinstance(value, DoubleVec):
        return "doubleVec"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, TimeInterval):
        return "timeinterval"
    return type(value).__name__


class OperandError(Exception):
    """An operator or function applied to types it does not take (the caller adds the place)."""


def _is_double(value) -> bool:
    return isinstance(value, float | int) and not isinstance(value, bool)


def _divide(a: float, b: float) -> float:
    # IEEE division, as the service's doubles do: x/0 is ±inf and 0/0 is nan, not an error.
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


_ARITHMETIC = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
}

_COMPARISON = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "!=": lambda a, b: a != b,
}


def _vector_op(op, a, b) -> DoubleVec:
    if isinstance(a, DoubleVec) and isinstance(b, DoubleVec):
        if len(a) != len(b):
            raise OperandError(f"doubleVec lengths differ ({len(a)} and {len(b)})")
        return DoubleVec(op(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, DoubleVec):
        return DoubleVec(op(x, b) for x in a)
    return DoubleVec(op(a, y) for y in b)


def scalar(value):
    """A one-element doubleVec taken as its double, where only a double fits (comparisons,
    conditions, targets): published formulas compare $X.GetSample(1) with a number."""
    if isinstance(value, DoubleVec) and len(value) == 1:
        return value[0]
    return value


def binary(op: str, a, b):
    """Apply a binary operator per Batch's operations table; OperandError when it is not there."""
    if op in _COMPARISON or op in ("&&", "||"):
        a, b = scalar(a), scalar(b)
    if op in _ARITHMETIC:
        fn = _ARITHMETIC[op]
        if _is_double(a) and _is_double(b):
            return float(fn(a, b))
        # doubleVec op double and doubleVec op doubleVec are in the table; double op doubleVec
        # is accepted too (the same element-wise result), so no formula Batch runs fails here.
        if (isinstance(a, DoubleVec) and (_is_double(b) or isinstance(b, DoubleVec))) or (
            _is_double(a) and isinstance(b, DoubleVec)
        ):
            return _vector_op(fn, a, b)
        if isinstance(a, TimeInterval) and isinstance(b, TimeInterval) and op in "+-":
            return TimeInterval(fn(a.seconds, b.seconds))
        if isinstance(a, TimeInterval) and _is_double(b) and op in "*/":
            return TimeInterval(fn(a.seconds, b))
        if _is_double(a) and isinstance(b, TimeInterval) and op == "*":
            return TimeInterval(a * b.seconds)
        if op == "+" and isinstance(a, datetime) and isinstance(b, TimeInterval):
            return _shift(a, b)
        if op == "+" and isinstance(a, TimeInterval) and isinstance(b, datetime):
            return _shift(b, a)
        if op == "-" and isinstance(a, datetime) and isinstance(b, TimeInterval):
            return _shift(a, TimeInterval(-b.seconds))
        if op == "-" and isinstance(a, datetime) and isinstance(b, datetime):
            return TimeInterval((a - b).total_seconds())
    elif op in _COMPARISON:
        same = (
            (_is_double(a) and _is_double(b))
            or (isinstance(a, str) and isinstance(b, str))
            or (isinstance(a, datetime) and isinstance(b, datetime))
            or (isinstance(a, TimeInterval) and isinstance(b, TimeInterval))
        )
        if same:
            return 1.0 if _COMPARISON[op](a, b) else 0.0
    elif op in ("&&", "||"):
        if _is_double(a) and _is_double(b):
            if op == "&&":
                return 1.0 if (a != 0 and b != 0) else 0.0
            return 1.0 if (a != 0 or b != 0) else 0.0
    raise OperandError(f"operator {op} does not apply to {type_name(a)} and {type_name(b)}")


def unary(op: str, a):
    """Apply - or ! (- on double and timeinterval, ! on double)."""
    if op == "-" and _is_double(a):
        return -float(a)
    if op == "-" and isinstance(a, TimeInterval):
        return TimeInterval(-a.seconds)
    if op == "!" and _is_double(scalar(a)):
        a = scalar(a)
        return 1.0 if a == 0 else 0.0
    raise OperandError(f"operator {op} does not apply to {type_name(a)}")


def truth(value) -> bool:
    """A ternary's condition: a double, nonzero is true."""
    value = scalar(value)
    if not _is_double(value):
        raise OperandError(f"a condition must be a double, not a {type_name(value)}")
    return value != 0


def _shift(moment: datetime, by: TimeInterval) -> datetime:
    try:
        return moment + by.as_timedelta()
    except OverflowError as exc:
        raise OperandError("the timestamp is out of range") from exc


def format_double(value: float) -> str:
    """A double as the service prints it: six significant digits ('96.6667', '0.5', '3')."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:g}"


def format_timestamp(value: datetime) -> str:
    """A timestamp as the service prints it: UTC, milliseconds, Z ('2016-10-13T19:18:47.805Z')."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def format_interval(value: TimeInterval) -> str:
    """A timeinterval as [-][d.]hh:mm:ss[.fffffff] (Batch documents no format; this is .NET's)."""
    ticks = round(value.seconds * 10_000_000)
    sign = "-" if ticks < 0 else ""
    ticks = abs(ticks)
    seconds, fraction = divmod(ticks, 10_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    text = f"{sign}{days}." if days else sign
    text += f"{hour:02d}:{minute:02d}:{second:02d}"
    if fraction:
        text += f".{fraction:07d}"
    return text


def format_value(value) -> str:
    """Any value as it appears in autoScaleRun.results."""
    if isinstance(value, DoubleVec):
        return "[" + ",".join(format_double(x) for x in value) + "]"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, TimeInterval):
        return format_interval(value)
    return format_double(float(value))
