"""Building sample histories for the autoscale tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasks.autoscale import ListSamples

NOW = datetime(2025, 4, 24, 11, 34, 37, 971000, tzinfo=UTC)
PERIOD = timedelta(seconds=30)


def history(values, *, now: datetime = NOW, missing=()) -> list[tuple[datetime, float]]:
    """One sample every 30 s ending at `now`, the last value newest; `missing` indexes (0 is the
    newest) are left out, as samples Batch failed to record."""
    points = [
        (now - PERIOD * age, value)
        for age, value in enumerate(reversed(values))
        if age not in missing
    ]
    return sorted(points)


def steady(value: float, *, minutes: float, now: datetime = NOW, missing=()) -> list:
    """`minutes` worth of samples of one value (two a minute)."""
    return history([value] * int(minutes * 2), now=now, missing=missing)


def samples(**series) -> ListSamples:
    """samples(ActiveTasks=history(...)) for ListSamples({"$ActiveTasks": ...})."""
    return ListSamples({f"${name}": points for name, points in series.items()})
