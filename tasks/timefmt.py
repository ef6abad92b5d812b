"""Batch wire forms of times and durations (REFERENCE §2)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

# .NET TimeSpan.MaxValue: what Batch emits for "no limit".
INFINITE = "P10675199DT2H48M5.4775807S"
# Anything at least this long is "no limit" (the SDKs send timedelta.max-ish values too).
_INFINITE_THRESHOLD = timedelta(days=10675199)

_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta | None:
    """Parse an ISO 8601 duration as both SDKs send it; None means unlimited.

    Accepts `P` (15.x's zero), `P0D`, `PT01H00M00S`, `PT1.5S`, `P2DT03H00M00S` and the
    infinite value. Raises ValueError on anything else, including negative durations.
    """
    if not isinstance(text, str):
        raise ValueError("a duration must be a string")
    m = _DURATION.match(text.strip())
    if not m or text.strip().endswith("T"):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    if m.group("sign"):
        raise ValueError("a duration must not be negative")
    parts = {k: float(v) for k, v in m.groupdict().items() if v and k != "sign"}
    try:
        if parts.get("days", 0) + parts.get("weeks", 0) * 7 >= _INFINITE_THRESHOLD.days:
            return None
        value = timedelta(**parts)
    except OverflowError:
        return None
    if value >= _INFINITE_THRESHOLD:
        return None
    return value


def format_duration(value: timedelta | None) -> str:
    """Canonical Batch form: `PT1H`, `P7D`, `PT0.5S`, `PT0S`; None → the infinite value."""
    if value is None:
        return INFINITE
    total_us = value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds
    days, rem = divmod(total_us, 86_400_000_000)
    hours, rem = divmod(rem, 3_600_000_000)
    minutes, rem = divmod(rem, 60_000_000)
    seconds, micro = divmod(rem, 1_000_000)
    out = "P"
    if days:
        out += f"{days}D"
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if seconds or micro:
        time += f"{seconds}.{micro:06d}".rstrip("0").rstrip(".") + "S"
    if time:
        out += "T" + time
    if out == "P":
        out = "PT0S"
    return out


def format_datetime_wire(value: datetime | None) -> str | None:
    """RFC 3339 UTC with seven fractional digits, as the service writes them."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def format_http_date(value: datetime) -> str:
    return format_datetime(value.astimezone(UTC), usegmt=True)


def parse_http_date(text: str) -> datetime:
    """Parse an RFC 1123 header date; ValueError when it is not one."""
    try:
        value = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"not an RFC 1123 date: {text!r}") from None
    if value is None:
        raise ValueError(f"not an RFC 1123 date: {text!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def parse_datetime_wire(text: str) -> datetime:
    """Parse an ISO 8601 date-time with up to 7 fractional digits (.NET style)."""
    t = text.strip()
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$", t)
    if not m:
        raise ValueError(f"not an ISO 8601 date-time: {text!r}")
    base, frac, tz = m.groups()
    frac = (frac or ".0")[1:7].ljust(6, "0")
    tz = tz or "Z"
    if tz == "Z":
        tz = "+00:00"
    value = datetime.fromisoformat(f"{base}.{frac}{tz}")
    return value.astimezone(UTC)
