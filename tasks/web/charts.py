"""The node x time picture of a job's task runs, drawn on the server as SVG geometry.

One lane per node (split into as many rows as the node ran attempts at once, so a
2-slot node shows two bars side by side); each attempt a bar from start to end, coloured
by outcome. Idle capacity shows as gaps, a bad node as a lane of red.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape as _escape  # Django's escape() is this, behind a lazy-string wrapper
from urllib.parse import quote

from django.db.models import Q
from django.utils import timezone
from django.utils.safestring import mark_safe

from tasks.models import Attempt, Job

MAX_ATTEMPTS = 2000  # runs drawn at most: the latest of the range, on (job, claimed)
COUNT_CAP = 20_000  # runs counted at most, to say how many were cut (a bounded index count)
WIDTH = 1000
LABEL = 150
ROW = 14
GAP = 6
TOP = 24


@dataclass
class Bar:
    x: float
    y: float
    w: float
    outcome: str
    title: str
    label: str = ""  # the accessible name of its link: task, attempt, node, times, outcome
    href: str = ""  # the attempt on its task's page


@dataclass
class Lane:
    node: str
    y: float
    height: float
    failed: int = 0
    runs: int = 0


@dataclass
class Timeline:
    bars: list[Bar] = field(default_factory=list)
    lanes: list[Lane] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    width: int = WIDTH
    height: int = TOP
    label: int = LABEL
    row: int = ROW
    start: datetime | None = None
    end: datetime | None = None
    shown: int = 0
    capped: bool = False
    matching: int = 0  # runs in the range (at most COUNT_CAP)
    more_than: bool = False  # more than COUNT_CAP runs are in the range
    ranged: bool = False  # the range was asked for (else: the span of the latest runs)
    drawn_from: datetime | None = None  # when capped: the earliest start drawn

    @property
    def plot_width(self) -> int:
        return self.width - self.label - 10

    @property
    def bars_svg(self) -> str:
        """The bars as SVG, each escaped: built here rather than in a template loop, which
        costs ten times as much for 2,000 bars."""
        height = self.row - 2
        out = []
        for b in self.bars:
            rect = (
                f'<rect class="{_escape(b.outcome)}" x="{b.x}" y="{b.y}" width="{b.w}" height="{height}" rx="2">'
                f"<title>{_escape(b.title)}</title></rect>"
            )
            out.append(
                f'<a href="{_escape(b.href)}" aria-label="{_escape(b.label)}">{rect}</a>'
                if b.href
                else rect
            )
        return mark_safe("".join(out))  # every value in it is escaped above


def node_timeline(
    job: Job,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = MAX_ATTEMPTS,
    task_url: str = "",
) -> Timeline:
    """The job's runs that overlap [since, until): the latest `limit` of them drawn, at most
    COUNT_CAP counted. Without a range, the span of the latest `limit` runs. A run that began
    before the range is found if it began at most one range-length earlier (the scan stays
    bounded by the range). `task_url` holds `__TASK__` where a task id goes. Two queries on
    (job, claimed), each bounded."""
    ranged = since is not None or until is not None
    now = timezone.now()
    if ranged:
        until = until or now
        since = since or job.creation_time
        if since >= until:
            since = until - timedelta(seconds=1)
    runs = Attempt.objects.filter(job=job)
    if ranged:
        runs = runs.filter(claimed__lt=until, claimed__gte=since - (until - since)).filter(
            Q(end_time__isnull=True) | Q(end_time__gte=since)
        )
    rows = list(
        runs.order_by("-claimed").values(
            "pk",
            "node_name",
            "claimed",
            "start_time",
            "end_time",
            "outcome",
            "exit_code",
            "number",
            "subtask_id",
            "task__task_id",
        )[: limit + 1]
    )
    chart = Timeline(capped=len(rows) > limit, ranged=ranged)
    rows = rows[:limit]
    chart.shown = len(rows)
    if chart.capped:
        # Runs that started in the range: a count over the (job, claimed) index alone.
        started = Attempt.objects.filter(
            job=job, **({"claimed__gte": since, "claimed__lt": until} if ranged else {})
        )
        chart.matching = started.values("pk")[: COUNT_CAP + 1].count()
        chart.more_than = chart.matching > COUNT_CAP
        chart.matching = min(chart.matching, COUNT_CAP)
    else:
        chart.matching = len(rows)
    if not rows and not ranged:
        return chart
    zone = timezone.get_current_timezone()  # once, not per bar: 2,000 bars
    running = Attempt.Outcome.RUNNING
    for r in rows:
        r["t0"] = t0 = r["start_time"] or r["claimed"]
        r["t1"] = t1 = r["end_time"] or (now if r["outcome"] == running else t0)
        # "YYYY-MM-DD HH:MM:SS" local: isoformat costs a fifth of strftime, and 2,000 bars
        # each print two moments twice.
        r["l0"] = t0.astimezone(zone).isoformat(" ", "seconds")[:19]
        r["l1"] = t1.astimezone(zone).isoformat(" ", "seconds")[:19]
    if ranged:
        chart.start, chart.end = since, until
    else:
        chart.start = min(r["t0"] for r in rows)
        chart.end = max(max(r["t1"] for r in rows), chart.start + timedelta(seconds=1))
    if chart.capped:
        chart.drawn_from = max(chart.start, min(r["t0"] for r in rows))
    span = (chart.end - chart.start).total_seconds()
    scale = (WIDTH - LABEL - 10) / span
    origin, last = chart.start.timestamp(), chart.end.timestamp()
    failed = Attempt.Outcome.FAILED
    y = TOP
    by_node: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["t0"]):
        by_node.setdefault(r["node_name"] or "(no node)", []).append(r)
    for node in sorted(by_node):
        free: list[tuple[datetime, int]] = []  # (when a row of the lane is free again, its index)
        placed, rows_used = [], 0
        for r in by_node[node]:
            if free and free[0][0] <= r["t0"]:
                index = heapq.heappop(free)[1]
            else:
                index, rows_used = rows_used, rows_used + 1
            heapq.heappush(free, (r["t1"], index))
            placed.append((index, r))
        lane = Lane(node, y, rows_used * ROW, runs=len(placed))
        for index, r in placed:
            # Seconds since the epoch, not datetimes: a tenth of the cost per bar.
            s0, s1 = max(r["t0"].timestamp(), origin), min(r["t1"].timestamp(), last)
            x = LABEL + (s0 - origin) * scale
            w = max(1.5, (s1 - s0) * scale)
            lane.failed += r["outcome"] == failed
            href = (
                task_url.replace("__TASK__", quote(r["task__task_id"], safe=""))
                + f"#attempt-{r['pk']}"
            )
            chart.bars.append(
                Bar(
                    round(x, 1),
                    y + index * ROW + 1,
                    round(w, 1),
                    r["outcome"],
                    _title(r),
                    _label(r, node),
                    href if task_url else "",
                )
            )
        chart.lanes.append(lane)
        y += lane.height + GAP
    chart.height = int(y + 4)
    chart.ticks = _ticks(chart.start, span, scale)
    return chart


def zoom_links(chart: Timeline, job: Job) -> dict[str, tuple[datetime, datetime]]:
    """The ranges a user moves to from the one shown: the middle half (in), twice as long
    (out), half a range earlier or later (later only while it ends before now)."""
    if chart.start is None or chart.end is None:
        return {}
    span = chart.end - chart.start
    now = timezone.now()
    links = {"earlier": (chart.start - span / 2, chart.end - span / 2)}
    if span > timedelta(seconds=2):
        links["in"] = (chart.start + span / 4, chart.end - span / 4)
    # Not before the job was made (nothing ran then), nor past now.
    links["out"] = (
        max(chart.start - span / 2, min(job.creation_time, chart.start)),
        max(min(chart.end + span / 2, now), chart.end),
    )
    if chart.end < now:
        links["later"] = (chart.start + span / 2, chart.end + span / 2)
    return links


def _title(r: dict) -> str:
    who = r["task__task_id"] + (f" / subtask {r['subtask_id']}" if r["subtask_id"] else "")
    code = f", exit {r['exit_code']}" if r["exit_code"] is not None else ""
    return f"{who} (attempt {r['number']}): {r['outcome']}{code}, {r['l0'][11:]}–{r['l1'][11:]}"


def _label(r: dict, node: str) -> str:
    who = r["task__task_id"] + (f" subtask {r['subtask_id']}" if r["subtask_id"] else "")
    code = f", exit {r['exit_code']}" if r["exit_code"] is not None else ""
    end = "still running" if r["outcome"] == Attempt.Outcome.RUNNING else f"to {r['l1'][11:]}"
    return (
        f"Task {who}, attempt {r['number']}, on {node}, from {r['l0']} {end}: {r['outcome']}{code}"
    )


def _ticks(start: datetime, span: float, scale: float) -> list[tuple[float, str]]:
    steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400]
    step = next((s for s in steps if span / s <= 8), 86400 * max(1, int(span / 86400 / 8) + 1))
    fmt = "%H:%M:%S" if step < 60 else ("%H:%M" if step < 86400 else "%b %d")
    first = start.timestamp() // step * step + step
    ticks, t = [], first
    while t <= start.timestamp() + span:
        moment = datetime.fromtimestamp(t, tz=start.tzinfo)
        ticks.append(
            (
                round(LABEL + (t - start.timestamp()) * scale, 1),
                timezone.localtime(moment).strftime(fmt),
            )
        )
        t += step
    return ticks
