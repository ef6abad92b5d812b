"""The node x time picture of a job's task runs, drawn on the server as SVG geometry.

One lane per node (split into as many rows as the node ran attempts at once, so a
2-slot node shows two bars side by side); each attempt a bar from start to end, coloured
by outcome. Idle capacity shows as gaps, a bad node as a lane of red.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from tasks.models import Attempt, Job

MAX_ATTEMPTS = 2000  # the latest attempts of the job; one query on (job, claimed)
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


def node_timeline(job: Job, *, limit: int = MAX_ATTEMPTS) -> Timeline:
    rows = list(
        Attempt.objects.filter(job=job).order_by("-claimed")
        .values("node_name", "claimed", "start_time", "end_time", "outcome", "exit_code", "number",
                "subtask_id", "task__task_id")[: limit + 1]
    )
    chart = Timeline(capped=len(rows) > limit)
    rows = rows[:limit]
    chart.shown = len(rows)
    if not rows:
        return chart
    t_now = timezone.now()
    for r in rows:
        r["t0"] = r["start_time"] or r["claimed"]
        r["t1"] = r["end_time"] or (t_now if r["outcome"] == Attempt.Outcome.RUNNING else r["t0"])
    chart.start = min(r["t0"] for r in rows)
    chart.end = max(max(r["t1"] for r in rows), chart.start + timedelta(seconds=1))
    span = (chart.end - chart.start).total_seconds()
    scale = (WIDTH - LABEL - 10) / span
    y = TOP
    by_node: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["t0"]):
        by_node.setdefault(r["node_name"] or "(no node)", []).append(r)
    for node in sorted(by_node):
        lane_rows: list[datetime] = []  # when each row of the lane is free again
        placed = []
        for r in by_node[node]:
            index = next((i for i, free in enumerate(lane_rows) if free <= r["t0"]), len(lane_rows))
            if index == len(lane_rows):
                lane_rows.append(r["t1"])
            lane_rows[index] = r["t1"]
            placed.append((index, r))
        lane = Lane(node, y, len(lane_rows) * ROW, runs=len(placed))
        for index, r in placed:
            x = LABEL + (r["t0"] - chart.start).total_seconds() * scale
            w = max(1.5, (r["t1"] - r["t0"]).total_seconds() * scale)
            lane.failed += r["outcome"] == Attempt.Outcome.FAILED
            chart.bars.append(Bar(round(x, 1), y + index * ROW + 1, round(w, 1), r["outcome"], _title(r)))
        chart.lanes.append(lane)
        y += lane.height + GAP
    chart.height = int(y + 4)
    chart.ticks = _ticks(chart.start, span, scale)
    return chart


def _title(r: dict) -> str:
    who = r["task__task_id"] + (f" / subtask {r['subtask_id']}" if r["subtask_id"] else "")
    code = f", exit {r['exit_code']}" if r["exit_code"] is not None else ""
    t0 = timezone.localtime(r["t0"]).strftime("%H:%M:%S")
    t1 = timezone.localtime(r["t1"]).strftime("%H:%M:%S")
    return f"{who} (attempt {r['number']}): {r['outcome']}{code}, {t0}–{t1}"


def _ticks(start: datetime, span: float, scale: float) -> list[tuple[float, str]]:
    steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400]
    step = next((s for s in steps if span / s <= 8), 86400 * max(1, int(span / 86400 / 8) + 1))
    fmt = "%H:%M:%S" if step < 60 else ("%H:%M" if step < 86400 else "%b %d")
    first = start.timestamp() // step * step + step
    ticks, t = [], first
    while t <= start.timestamp() + span:
        moment = datetime.fromtimestamp(t, tz=start.tzinfo)
        ticks.append((round(LABEL + (t - start.timestamp()) * scale, 1), timezone.localtime(moment).strftime(fmt)))
        t += step
    return ticks
