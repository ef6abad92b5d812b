"""A job's analytics, drawn on the server: completions over time, the run-time distribution
with its outliers, throughput and an ETA.

Every figure costs the same at a million tasks as at a thousand: no query reads more than
a fixed number of rows. Counts come from the job's maintained counters; the first and last
start and end from the (job, start_time) and (job, end_time) indexes; the recent rate from
the last RECENT completions on the (job, end_time) index; and the shapes (completions per
interval, run times) from a systematic sample of at most SAMPLE tasks fetched by primary
key, scaled to the counters. A job of at most SAMPLE tasks is read whole, so its figures
are exact; otherwise the page says how big the sample was.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils import timezone

from tasks.models import Job, Task

SAMPLE = 1000  # tasks read for the shapes
MAX_PROBES = 20_000  # primary keys probed for them when the job's keys are interleaved with others'
RECENT = 200  # completions the recent rate is measured over
COLUMNS = 48  # intervals of the completions chart
BINS = 30  # bins of the run-time histogram
OUTLIERS = 10  # slowest sampled outliers listed
QUANTILES = (("median", 0.5), ("p90", 0.9), ("p99", 0.99))

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 1000, 220, 56, 30, 12


@dataclass
class Column:
    x: float
    w: float
    y_ok: float
    h_ok: float
    y_bad: float
    h_bad: float
    label: str  # the accessible name: interval and (estimated) counts


@dataclass
class Outlier:
    task_id: str
    seconds: float
    result: str

    @property
    def took(self) -> str:
        return _duration(self.seconds)


@dataclass
class Chart:
    columns: list[Column] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)  # x axis
    levels: list[tuple[float, str]] = field(default_factory=list)  # y axis
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    base: int = HEIGHT - BOTTOM
    fence_x: float | None = None  # where outliers begin (run-time chart)


@dataclass
class Analytics:
    total: int
    completed: int
    remaining: int
    sampled: int  # tasks read
    sampled_completed: int  # of them, completed with a run time
    exact: bool  # every task was read
    completions: Chart
    run_times: Chart
    quantiles: list[tuple[str, str]]  # ("median", "4m10s"), ...
    fence: float | None  # Q3 + 1.5 IQR, seconds
    outliers: list[Outlier]
    outlier_count: int  # sampled runs beyond the fence
    first_start: datetime | None
    last_end: datetime | None
    overall_rate: float | None  # completions per minute since the first start
    recent_rate: float | None  # over the last RECENT completions, up to now
    recent_n: int
    recent_since: datetime | None
    eta: timedelta | None
    eta_note: str  # why there is no ETA, or what it assumes

    @property
    def every(self) -> int:
        """The sample's stride: one task in how many."""
        return round(self.total / self.sampled) if self.sampled else 0

    @property
    def fence_text(self) -> str:
        return _duration(self.fence) if self.fence is not None else ""


def job_analytics(job: Job, *, sample: int | None = None, now: datetime | None = None) -> Analytics:
    """The analytics of one job, from a sample of `sample` tasks (SAMPLE by default). At
    most eight queries, each index-backed and bounded."""
    now = now or timezone.now()
    sample = sample or SAMPLE
    tasks = Task.objects.filter(job=job)
    rows, exact = sample_tasks(job, sample)
    ended = tasks.filter(end_time__isnull=False)
    first_end = ended.order_by("end_time").values_list("end_time", flat=True).first()
    last_end = ended.order_by("-end_time").values_list("end_time", flat=True).first()
    first_start = (
        tasks.filter(start_time__isnull=False)
        .order_by("start_time")
        .values_list("start_time", flat=True)
        .first()
    )
    recent = list(
        ended.order_by("-end_time").values_list("end_time", flat=True)[RECENT - 1 : RECENT]
    )
    recent_n = RECENT if recent else _count_ended(ended)
    recent_since = recent[0] if recent else first_end

    completed = [r for r in rows if r["state"] == Task.State.COMPLETED and r["end_time"]]
    runs = sorted((r for r in completed if r["start_time"]), key=_seconds)
    seconds = [_seconds(r) for r in runs]
    quantiles = (
        [(name, _duration(_quantile(seconds, q))) for name, q in QUANTILES] if seconds else []
    )
    fence = None
    if len(seconds) >= 4:
        q1, q3 = _quantile(seconds, 0.25), _quantile(seconds, 0.75)
        fence = q3 + 1.5 * (q3 - q1)
    beyond = [r for r in runs if fence is not None and _seconds(r) > fence]
    outliers = [
        Outlier(r["task_id"], _seconds(r), r["result"]) for r in reversed(beyond[-OUTLIERS:])
    ]

    remaining = job.active_count + job.running_count
    overall = None
    if first_start and last_end and job.completed_count and last_end > first_start:
        overall = job.completed_count / ((last_end - first_start).total_seconds() / 60)
    rate = None
    if recent_since and recent_n and now > recent_since:
        rate = recent_n / ((now - recent_since).total_seconds() / 60)
    eta, note = _eta(job, remaining, rate)
    scale = job.completed_count / len(completed) if completed else 0
    return Analytics(
        total=job.total_count,
        completed=job.completed_count,
        remaining=remaining,
        sampled=len(rows),
        sampled_completed=len(runs),
        exact=exact,
        completions=completions_chart(completed, first_end, last_end, scale),
        run_times=run_time_chart(seconds, fence),
        quantiles=quantiles,
        fence=fence,
        outliers=outliers,
        outlier_count=len(beyond),
        first_start=first_start,
        last_end=last_end,
        overall_rate=overall,
        recent_rate=rate,
        recent_n=recent_n,
        recent_since=recent_since,
        eta=eta,
        eta_note=note,
    )


def sample_tasks(job: Job, size: int) -> tuple[list[dict], bool]:
    """At most about `size` of the job's tasks, spread evenly over its primary keys (tasks are
    numbered in the order they were added: one task at random out of every k), and whether
    that is all of them. Two index-backed queries for the key range (the first and last task added,
    on (job, creation_time)) and one primary-key lookup of at most MAX_PROBES keys."""
    tasks = Task.objects.filter(job=job)
    fields = ("pk", "task_id", "state", "result", "start_time", "end_time")
    if job.total_count <= size:
        return list(tasks.values(*fields)), True
    lo = tasks.order_by("creation_time", "pk").values_list("pk", flat=True).first()
    hi = tasks.order_by("-creation_time", "-pk").values_list("pk", flat=True).first()
    if lo is None or hi is None:
        return [], True
    lo, hi = min(lo, hi), max(lo, hi)
    span = hi - lo + 1
    density = min(
        1.0, job.total_count / span
    )  # of the keys in the range, the share that are the job's
    # Where other jobs' keys interleave, a random probe hits one of the job's with chance
    # `density`: probe a quarter more and keep `size` of the hits, evenly.
    probes = min(MAX_PROBES, span, math.ceil(size / density * (1 if density == 1 else 1.25)))
    step = span / probes
    # One key at random within each stride (stratified): every k-th key exactly would alias
    # with a job whose tasks repeat a pattern (every 5th a different kind). Seeded by the
    # job, so a reload shows the same sample.
    draw = random.Random(job.pk).random
    keys = sorted({min(hi, lo + int((i + draw()) * step)) for i in range(probes)})
    # By primary key alone: with the job in the WHERE clause too, SQLite walks the job's
    # (job, ...) index over every one of its tasks instead of looking the keys up.
    rows = [
        r
        for r in Task.objects.filter(_pk_among(keys)).values("job_id", *fields)
        if r.pop("job_id") == job.pk
    ]
    if len(rows) > size:
        rows.sort(key=lambda r: r["pk"])
        rows = [rows[int(i * len(rows) / size)] for i in range(size)]
    return rows, False


def _pk_among(keys: list[int]) -> RawSQL:
    """Tasks whose pk is one of `keys`, the keys one parameter: `pk__in` compiles a
    parameter per key (1,000 of them: a third of the sample's cost, 4-5 ms that a job read
    whole does not pay) and PostgreSQL parses and plans each. The lookups are the same: the
    primary key's index, once per key."""
    table = Task._meta.db_table
    if connection.vendor == "postgresql":
        return RawSQL(f'"{table}"."id" = ANY(%s)', [keys], output_field=BooleanField())
    return RawSQL(
        f'"{table}"."id" IN (SELECT value FROM json_each(%s))',
        [json.dumps(keys)],
        output_field=BooleanField(),
    )


def _count_ended(ended) -> int:
    """How many tasks ended, when fewer than RECENT did (so it is a bounded count)."""
    return len(ended.values_list("pk", flat=True)[:RECENT])


def _seconds(row: dict) -> float:
    return (row["end_time"] - row["start_time"]).total_seconds()


def _quantile(sorted_values: list[float], q: float) -> float:
    """The q-quantile by linear interpolation between the closest ranks."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    position = q * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _eta(job: Job, remaining: int, rate: float | None) -> tuple[timedelta | None, str]:
    if job.state == Job.State.COMPLETED:
        return None, "The job has completed."
    if remaining == 0:
        return None, "No task is waiting or running."
    if job.state in (Job.State.DISABLED, Job.State.DISABLING):
        return None, "The job is disabled: no task starts until it is enabled."
    if not rate:
        return None, "No ETA yet: no task has completed."
    return timedelta(minutes=remaining / rate), "At the recent completion rate, if it holds."


# --- drawing -------------------------------------------------------------------------------


def completions_chart(
    completed: list[dict], first: datetime | None, last: datetime | None, scale: float
) -> Chart:
    """Completions per interval between the first and last end, succeeded and failed stacked,
    each sampled completion counting for `scale` tasks."""
    chart = Chart()
    if not completed or first is None or last is None:
        return chart
    span = max((last - first).total_seconds(), 1.0)
    width = span / COLUMNS
    ok, bad = [0] * COLUMNS, [0] * COLUMNS
    for r in completed:
        index = min(COLUMNS - 1, max(0, int((r["end_time"] - first).total_seconds() / width)))
        (ok if r["result"] == Task.Result.SUCCESS else bad)[index] += 1
    peak = max(a + b for a, b in zip(ok, bad, strict=True)) * scale or 1
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - BOTTOM - TOP
    col_w = plot_w / COLUMNS
    for i in range(COLUMNS):
        n_ok, n_bad = ok[i] * scale, bad[i] * scale
        h_ok, h_bad = plot_h * n_ok / peak, plot_h * n_bad / peak
        base = HEIGHT - BOTTOM
        start = first + timedelta(seconds=i * width)
        label = (
            f"{_clock(start)}–{_clock(start + timedelta(seconds=width))}: "
            f"{_about(n_ok)} succeeded, {_about(n_bad)} failed"
        )
        chart.columns.append(
            Column(
                round(LEFT + i * col_w + 1, 1),
                round(max(col_w - 2, 1), 1),
                round(base - h_ok, 1),
                round(h_ok, 1),
                round(base - h_ok - h_bad, 1),
                round(h_bad, 1),
                label,
            )
        )
    chart.ticks = [
        (round(LEFT + plot_w * k / 4, 1), _clock(first + timedelta(seconds=span * k / 4)))
        for k in range(5)
    ]
    chart.levels = _levels(peak, plot_h)
    return chart


def run_time_chart(seconds: list[float], fence: float | None) -> Chart:
    """How many sampled runs took how long: equal bins from 0 to the longest run, or, when
    some runs are outliers, to the outlier fence with one last bin (drawn as outliers) for
    every run beyond it, so that a few very long runs do not squash the rest into one bar."""
    chart = Chart()
    if not seconds:
        return chart
    outlying = fence is not None and seconds[-1] > fence
    top = max(fence if outlying else seconds[-1], 1.0)
    bins = BINS - 1 if outlying else BINS
    width = top / bins
    counts = [0] * (bins + (1 if outlying else 0))
    for s in seconds:
        counts[bins if outlying and s > top else min(bins - 1, int(s / width))] += 1
    peak = max(counts) or 1
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - BOTTOM - TOP
    bin_w = plot_w / len(counts)
    base = HEIGHT - BOTTOM
    for i, n in enumerate(counts):
        h = plot_h * n / peak
        runs = f"{n} {'run' if n == 1 else 'runs'}"
        column = Column(
            round(LEFT + i * bin_w + 1, 1),
            round(max(bin_w - 2, 1), 1),
            round(base - h, 1),
            round(h, 1),
            0,
            0,
            f"{_duration(i * width)}–{_duration((i + 1) * width)}: {runs}",
        )
        if i == bins:  # the outliers' bin
            column.label = (
                f"longer than {_duration(top)} (outliers, up to {_duration(seconds[-1])}): {runs}"
            )
            column.y_bad, column.h_bad, column.h_ok = column.y_ok, column.h_ok, 0
        chart.columns.append(column)
    ticks = [(round(LEFT + bin_w * bins * k / 4, 1), _duration(top * k / 4)) for k in range(5)]
    if outlying:
        ticks[-1] = (ticks[-1][0], f"{_duration(top)} | outliers")
        chart.fence_x = ticks[-1][0]
    chart.ticks = ticks
    chart.levels = _levels(peak, plot_h)
    return chart


def _levels(peak: float, plot_h: float) -> list[tuple[float, str]]:
    return [(round(HEIGHT - BOTTOM - plot_h * k / 2, 1), _about(peak * k / 2)) for k in range(3)]


def _about(n: float) -> str:
    return f"{round(n):,}"


def _clock(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%H:%M:%S")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
