"""The predefined functions, with the argument counts they take.

A doubleVecList argument is any mix of doubles and doubleVecs, flattened into one doubleVec
before the function runs: avg(v, 7) with v = [1,2,3] is avg(1,2,3,7). lg, ln and log (and
ceil, floor, round) return a double for one double and a doubleVec otherwise.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from .values import DoubleVec, OperandError, type_name


class Stop(Exception):
    """stop(): evaluation ends here, with what has been assigned so far."""


def flatten(arguments: list, function: str) -> list[float]:
    values: list[float] = []
    for argument in arguments:
        if isinstance(argument, DoubleVec):
            values.extend(argument)
        elif isinstance(argument, float | int) and not isinstance(argument, bool):
            values.append(float(argument))
        else:
            raise OperandError(
                f"{function}() takes doubles and doubleVecs, not a {type_name(argument)}"
            )
    return values


def _nonempty(values: list[float], function: str) -> list[float]:
    if not values:
        raise OperandError(f"{function}() of an empty doubleVecList")
    return values


def _avg(values):
    values = _nonempty(values, "avg")
    return math.fsum(values) / len(values)


def _std(values):
    # the sample standard deviation (n - 1); one value has none and gives 0
    values = _nonempty(values, "std")
    if len(values) < 2:
        return 0.0
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((x - mean) ** 2 for x in values) / (len(values) - 1))


def _round_half_away(x: float) -> float:
    if math.isnan(x) or math.isinf(x):
        return x
    return math.copysign(math.floor(abs(x) + 0.5), x)


def _log(base_fn: Callable[[float], float]) -> Callable[[float], float]:
    def apply(x: float) -> float:
        if x > 0:
            return base_fn(x)
        if x == 0:
            return -math.inf
        return math.nan

    return apply


AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "avg": _avg,
    "len": lambda v: float(len(v)),
    "max": lambda v: max(_nonempty(v, "max")),
    "min": lambda v: min(_nonempty(v, "min")),
    "norm": lambda v: math.sqrt(math.fsum(x * x for x in v)),
    "range": lambda v: max(_nonempty(v, "range")) - min(v),
    "std": _std,
    "sum": lambda v: math.fsum(v),
}

ELEMENTWISE: dict[str, Callable[[float], float]] = {
    "lg": _log(math.log2),
    "ln": _log(math.log),
    "log": _log(math.log10),
    "ceil": lambda x: float(math.ceil(x)) if math.isfinite(x) else x,
    "floor": lambda x: float(math.floor(x)) if math.isfinite(x) else x,
    "round": _round_half_away,
}

# name -> (fewest arguments, most arguments or None for any number)
ARITY: dict[str, tuple[int, int | None]] = {
    **{name: (0, None) for name in AGGREGATES},
    **{name: (1, None) for name in ELEMENTWISE},
    "percentile": (2, 2),
    "rand": (0, 0),
    "stop": (0, 0),
    "time": (0, 1),
    "val": (2, 2),
}


def call(function: str, arguments: list, *, now: datetime, rng: Callable[[], float] | None):
    """Run a predefined function on evaluated arguments (OperandError when they do not fit)."""
    if function in AGGREGATES:
        return float(AGGREGATES[function](flatten(arguments, function)))
    if function in ELEMENTWISE:
        fn = ELEMENTWISE[function]
        if len(arguments) == 1 and not isinstance(arguments[0], DoubleVec):
            return float(fn(flatten(arguments, function)[0]))
        return DoubleVec(fn(x) for x in flatten(arguments, function))
    if function == "percentile":
        return _percentile(*arguments)
    if function == "val":
        return _val(*arguments)
    if function == "rand":
        return float((rng or random.random)())
    if function == "stop":
        raise Stop()
    if function == "time":
        if not arguments:
            return now
        if not isinstance(arguments[0], str):
            raise OperandError(f"time() takes a string, not a {type_name(arguments[0])}")
        return parse_time(arguments[0], now=now)
    raise OperandError(f"there is no function {function}()")


def _percentile(vector, p) -> float:
    """The element at percentile p (0-100) of the vector: the nearest-rank method."""
    values = sorted(flatten([vector], "percentile"))
    if not isinstance(p, float | int):
        raise OperandError(f"percentile() takes a double percentile, not a {type_name(p)}")
    if not values:
        raise OperandError("percentile() of an empty doubleVec")
    if not 0 <= p <= 100:
        raise OperandError(f"percentile {p:g} is outside 0 to 100")
    rank = max(1, math.ceil(p / 100 * len(values)))
    return values[rank - 1]


def _val(vector, index) -> float:
    values = flatten([vector], "val")
    if not isinstance(index, float | int):
        raise OperandError(f"val() takes a double index, not a {type_name(index)}")
    if not math.isfinite(index) or not 0 <= int(index) < len(values):
        raise OperandError(
            f"val() index {index:g} is outside the doubleVec of length {len(values)}"
        )
    return values[int(index)]


# W3C-DTF (an ISO 8601 profile): YYYY, YYYY-MM, YYYY-MM-DD, or a date with hh:mm[:ss[.s]] and
# a zone (Z or ±hh:mm). At most three decimals of a second: the service refused the formulas
# Nextflow built from Java 17's microsecond timestamps and took its millisecond ones.
_W3C = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:\d{2}))?)?)?"
)


def parse_time(text: str, *, now: datetime) -> datetime:
    """time("..."): "" is now; otherwise W3C-DTF or RFC 1123 ("Mon, 13 Mar 2023 20:29:32 GMT")."""
    text = text.strip()
    if not text:
        return now
    match = _W3C.fullmatch(text)
    if match:
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        try:
            moment = datetime(
                int(year),
                int(month or 1),
                int(day or 1),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                int((fraction or "0").ljust(3, "0")) * 1000,
                tzinfo=UTC,
            )
        except ValueError as exc:
            raise OperandError(f"time({text!r}): {exc}") from None
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            moment = (
                moment.replace(tzinfo=None) - sign * timedelta(hours=hours, minutes=minutes)
            ).replace(tzinfo=UTC)
        return moment
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        moment = None
    if moment is None or not re.fullmatch(
        r"[A-Za-z]{3}, \d{1,2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} "
        r"(GMT|UT|UTC|Z|[+-]\d{4})",
        text,
    ):
        raise OperandError(f"time({text!r}): not a W3C-DTF or RFC 1123 date and time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
