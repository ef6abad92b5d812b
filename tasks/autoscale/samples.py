"""Sampled metrics: what the caller provides (`Samples`) and what the sample methods do.

Batch records every metric of a pool every 30 seconds; a formula reads them only through the
methods of the metric's variable ($CPUPercent.GetSample(...)). The rules, from Microsoft's
"Create a formula to automatically scale compute nodes in a Batch pool":

- `GetSample(count)`: the last `count` samples there are, however old, oldest first. Fewer
  than `count` is not an error (the documented formulas guard it with `max(0, ...)`).
- `GetSample(start [, samplePercent])`, `GetSample(start, end [, samplePercent])`: the
  samples in a window, each bound a timeinterval (a look-back from now) or a timestamp. The
  window's capacity is its length divided by the sample period (10 minutes hold 20 samples);
  when fewer than `samplePercent` percent of it are there, evaluation stops with
  InsufficientSampleData ("Line L, Col C: Insufficient data from data set: $X wanted P%,
  received Q%"). Without a percentage the service wants 70% (a formula reading
  `avg($PendingTasks.GetSample(sli))` on a new pool fails with "wanted 70%, received 0%").
- `GetSamplePercent(start [, end])`: the percentage of the window that is there (a double).
- `GetSamplePeriod()`: the sample period (a timeinterval). `Count()`: how many samples the
  history holds. `HistoryBeginTime()`: the time of the oldest (an error when there is none).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

SAMPLE_PERIOD = timedelta(seconds=30)

# Required percentage of GetSample over a window when the formula gives none.
DEFAULT_SAMPLE_PERCENT = 70.0

# The sampled metrics Batch defines. $PreemptedNodeCount is one too: the documented
# "preempted nodes" formula reads $PreemptedNodeCount.GetSample(180 * TimeInterval_Second).
METRICS = (
    "$CPUPercent",
    "$WallClockSeconds",
    "$MemoryBytes",
    "$DiskBytes",
    "$DiskReadBytes",
    "$DiskWriteBytes",
    "$DiskReadOps",
    "$DiskWriteOps",
    "$NetworkInBytes",
    "$NetworkOutBytes",
    "$SampleNodeCount",
    "$ActiveTasks",
    "$RunningTasks",
    "$PendingTasks",
    "$SucceededTasks",
    "$FailedTasks",
    "$PreemptedNodeCount",
)


@runtime_checkable
class Samples(Protocol):
    """A pool's sampled metrics, as the caller stores them.

    `series(metric)` returns every recorded sample of one metric (a name from METRICS, with its
    `$`) as (time, value) pairs, oldest first, times aware; a metric never recorded gives an
    empty sequence. `period` is how often samples are recorded. evaluate() calls `series` at
    most once per metric and evaluation, and only for the metrics the formula reads.
    """

    period: timedelta

    def series(self, metric: str) -> Sequence[tuple[datetime, float]]: ...


class ListSamples:
    """Samples held in memory: for tests, and for a caller that reads its rows first.

    Metric names may be given with or without their `$` ("$ActiveTasks" or "ActiveTasks").

    >>> ListSamples({"$ActiveTasks": [(t0, 3), (t1, 5)]})
    >>> ListSamples.from_records((s.time, s.values) for s in pool.samples.order_by("time"))
    """

    def __init__(
        self,
        series: Mapping[str, Iterable[tuple[datetime, float]]] | None = None,
        *,
        period: timedelta = SAMPLE_PERIOD,
    ):
        self.period = period
        self._series: dict[str, list[tuple[datetime, float]]] = {}
        for name, points in (series or {}).items():
            metric = metric_name(name)
            if metric is None:
                raise ValueError(
                    f"{name!r} is not a sampled metric; use one of {', '.join(METRICS)}"
                )
            self._series[metric] = sorted(((t, float(v)) for t, v in points), key=lambda p: p[0])

    @classmethod
    def from_records(
        cls,
        records: Iterable[tuple[datetime, Mapping[str, float]]],
        *,
        period: timedelta = SAMPLE_PERIOD,
    ) -> ListSamples:
        """From one record per sampling time, each a {metric: value} (PoolSample rows). A value
        that is None, or a key that names no sampled metric, is not a sample and is left out."""
        series: dict[str, list[tuple[datetime, float]]] = {}
        for moment, values in records:
            for name, value in values.items():
                metric = metric_name(name)
                if metric is not None and value is not None:
                    series.setdefault(metric, []).append((moment, value))
        return cls(series, period=period)

    def series(self, metric: str) -> Sequence[tuple[datetime, float]]:
        return self._series.get(metric, [])


def metric_name(name: str) -> str | None:
    """The metric's name with its `$` ("ActiveTasks" -> "$ActiveTasks"), or None for no metric."""
    metric = name if name.startswith("$") else "$" + name
    return metric if metric in METRICS else None


class SampleHistory:
    """One metric's samples up to `now`, with the queries the sample methods need."""

    def __init__(
        self,
        metric: str,
        points: Sequence[tuple[datetime, float]],
        *,
        now: datetime,
        period: timedelta,
    ):
        self.metric = metric
        self.period = period
        # samples recorded after the evaluation time are not there yet
        self._times = [t for t, _ in points if t <= now]
        self._values = [float(v) for t, v in points if t <= now]

    def count(self) -> int:
        return len(self._times)

    def begin_time(self) -> datetime | None:
        return self._times[0] if self._times else None

    def last(self, count: int) -> list[float]:
        if count <= 0:
            return []
        return self._values[-count:]

    def window(self, low: datetime, high: datetime) -> tuple[list[float], float]:
        """The samples with low < time <= high, and the percentage of the window they fill."""
        start = bisect.bisect_right(self._times, low)
        end = bisect.bisect_right(self._times, high)
        values = self._values[start:end]
        capacity = (high - low) / self.period
        if capacity <= 0:
            return values, 100.0 if values else 0.0
        return values, min(100.0, 100.0 * len(values) / capacity)
