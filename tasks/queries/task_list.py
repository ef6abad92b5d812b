"""A job's task list as the dashboard, the CSV export and bulk operations read it: a filter
(state, result, exit codes, failure code, node, id substring, time range), a sort, and
keyset pages over the whole job.

Keyset, never OFFSET: a page is "the rows after this cursor", so page 20,000 of a job of a
million tasks costs what page 1 costs when an index serves the sort. Index-backed orders:
id (job, id_key), created (job, creation_time [, rowid/pk]), exit code (job, exit_code),
started / ended / retries (job, key, pk), and any order under a state filter when sorting
by id (job, state, id_key). Run time is computed, not stored, so that sort costs a scan of
the filtered tasks (a top-N sort); benchmarks/bench_dashboard.py measures both kinds.

Nullable sort keys (start/end time, exit code, run time) put the tasks without a value last
in both directions: the order is two segments, "has a value" by (key, pk) and then "no value"
by pk, and a cursor names its segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import F, FloatField, Func, Q, QuerySet, Value
from django.db.models.functions import StrIndex
from django.db.models.lookups import GreaterThan
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from tasks.models import Job, Task
from tasks.queries import pager
from tasks.queries.pager import Key, Order, Page, representable

PAGE_SIZE = 50

STATES = [s.value for s in Task.State]
RESULTS = [r.value for r in Task.Result]
TIME_FIELDS = {"created": "creation_time", "started": "start_time", "ended": "end_time"}

# sort name -> (model field or annotation, nullable, kind of value)
SORTS: dict[str, tuple[str, bool, str]] = {
    "id": ("id_key", False, "str"),
    "created": ("creation_time", False, "dt"),
    "started": ("start_time", True, "dt"),
    "ended": ("end_time", True, "dt"),
    "runtime": ("run_time_us", True, "float"),
    "exit_code": ("exit_code", True, "int"),
    "retries": ("retry_count", False, "int"),
}
SORT_LABELS = {
    "id": "ID",
    "created": "Created",
    "started": "Started",
    "ended": "Ended",
    "runtime": "Run time",
    "exit_code": "Exit code",
    "retries": "Retries",
}
FILTER_KEYS = (
    "state",
    "result",
    "exit_code",
    "failure_code",
    "node",
    "q",
    "time",
    "since",
    "until",
    "tz",
    "blocked",
)
FIELD_LABELS = {
    "state": "State",
    "result": "Result",
    "exit_code": "Exit code",
    "failure_code": "Failure code",
    "node": "Node",
    "q": "ID contains",
    "time": "Time",
    "since": "From",
    "until": "Until",
    "tz": "Time zone",
    "blocked": "Blocked",
}
TEXT_LIMIT = 128  # node ids are at most 128 characters; task ids and failure codes fewer
MAX_EXIT_CODE_PARTS = 100


class FilterError(ValueError):
    """A filter value that cannot be read; the message names the field."""


@dataclass(frozen=True)
class TaskFilter:
    state: str = ""
    result: str = ""
    exit_code: str = ""  # "137", "1,2,137", "1..255", "-1"
    failure_code: str = ""
    node: str = ""
    q: str = ""  # id substring, case-insensitive
    time: str = "created"  # which time the range applies to
    since: datetime | None = None
    until: datetime | None = None
    tz: str = ""  # the zone From and Until are in, as the form sent it ("" = UTC)
    # Active tasks whose dependencies can never be satisfied (tasks.queries.dependencies.blocked_task_pks).
    blocked: bool = False
    sort: str = "id"
    desc: bool = False
    errors: dict[str, str] = field(default_factory=dict, compare=False)
    raw: dict[str, str] = field(default_factory=dict, compare=False)  # what was sent for each error

    # --- reading ------------------------------------------------------------------------

    @classmethod
    def from_params(cls, params) -> TaskFilter:
        """Read a filter from a QueryDict or dict. This is the filter's one validation,
        which the page, the count, the CSV export and bulk actions all use: a value that
        cannot be read exactly (unknown, malformed, out of range, too long) is left out and
        named in `errors`, and a filter with errors lists, counts, exports and acts on
        nothing, since leaving the value out would widen the scope behind the user's back."""
        get = lambda k: (params.get(k) or "").strip()  # noqa: E731
        values, errors = {}, {}
        for key, allowed in (("state", STATES), ("result", RESULTS), ("time", list(TIME_FIELDS))):
            if get(key) in allowed:
                values[key] = get(key)
            elif get(key):
                errors[key] = f"Unknown {key} {_shown(get(key))}."
        for key in ("failure_code", "node", "q"):
            error = _text_error(get(key))
            if error:
                errors[key] = error
            else:
                values[key] = get(key)
        try:
            parse_exit_codes(get("exit_code"))
            values["exit_code"] = get("exit_code")
        except FilterError as exc:
            errors["exit_code"] = str(exc)
        zone, error = parse_zone(get("tz"))
        if error:
            errors["tz"] = error
        elif get("tz"):
            values["tz"] = get("tz")
        for key in ("since", "until"):
            if get(key):
                moment, error = parse_moment(get(key), zone or UTC)
                if error:
                    errors[key] = error
                values[key] = moment
        if get("blocked") in ("1", "true"):
            values["blocked"] = True
        elif get("blocked"):
            errors["blocked"] = f"Unknown blocked {_shown(get('blocked'))}: 1 or nothing."
        sort = get("sort")
        values["desc"] = sort.startswith("-")
        values["sort"] = sort.lstrip("-") if sort.lstrip("-") in SORTS else "id"
        return cls(**values, errors=errors, raw={key: get(key) for key in errors})

    @property
    def is_valid(self) -> bool:
        return not self.errors

    def error_text(self) -> str:
        """Every error in one line, for a refusal message."""
        return " ".join(f"{FIELD_LABELS[key]}: {error}" for key, error in self.errors.items())

    @property
    def form_values(self) -> dict[str, str]:
        """What the filter form shows in each field: the value read, or what was sent
        where it could not be read (so the user can correct it)."""
        return {"time": self.raw.get("time", self.time), **self.params(sort=False)}

    # --- using --------------------------------------------------------------------------

    def where(self, job: Job | None = None) -> Q:
        """The filter as a Q over Task (the job is not part of it); a filter with errors
        matches nothing, and so does `blocked` without the job it is computed for (never
        a wider scope than the one asked for)."""
        if self.errors:
            return Q(pk__in=[])
        q = Q()
        if self.blocked:
            from tasks.queries.dependencies import blocked_task_pks, pk_runs

            q &= pk_runs(blocked_task_pks(job)) if job is not None else Q(pk__in=[])
        if self.state:
            q &= Q(state=self.state)
        if self.result:
            q &= Q(result=self.result)
        if self.exit_code:
            codes, ranges = parse_exit_codes(self.exit_code)
            either = Q(exit_code__in=codes) if codes else Q()
            for low, high in ranges:
                either |= Q(exit_code__range=(low, high))
            q &= either
        if self.failure_code:
            q &= Q(failure_info__code=self.failure_code)
        if self.node:
            q &= Q(node_name=self.node)
        if self.q:
            q &= id_contains(self.q.lower())
        column = TIME_FIELDS.get(self.time, "creation_time")
        if self.since:
            q &= Q(**{f"{column}__gte": self.since})
        if self.until:
            q &= Q(**{f"{column}__lt": self.until})
        return q

    def queryset(self, job: Job) -> QuerySet:
        """The job's tasks the filter matches. With `blocked`, the blocked tasks' pks (all
        of this job) are the scope instead of the job: with `job_id = ?` in the WHERE, the
        planners walked the job's (job, sort key) index in order for the few blocked pks,
        the whole job at worst; without it, they fetch those rows by pk and sort them."""
        if self.blocked and not self.errors:
            qs = Task.objects.filter(self.where(job))
        else:
            qs = Task.objects.filter(job=job).filter(self.where(job))
        if self.sort == "runtime":
            qs = qs.annotate(run_time_us=RUN_TIME)
        return qs

    @property
    def order(self) -> Order:
        """The keyset order of the sort: by id alone, by (key, pk), or for a nullable key
        (key, pk) then the tasks without a value by pk."""
        column, nullable, kind = SORTS[self.sort]
        if column == "id_key":
            return Order.by(Key("id_key"), desc=self.desc)
        if nullable:
            return Order.nulls_last(Key(column, kind), desc=self.desc)
        return Order.by(Key(column, kind), Key("pk", pager.INT), desc=self.desc)

    @property
    def is_filtered(self) -> bool:
        return any(self.params(sort=False).values())

    @property
    def counts_from_job(self) -> bool:
        """Only state/result narrow it: the job's maintained counters give the exact count."""
        params = self.params(sort=False)
        return not (set(params) - {"state", "result"})

    def count_from(self, job: Job) -> int | None:
        """The exact number of matching tasks from the job's counters, when that is possible."""
        if self.errors:
            return 0
        if not self.counts_from_job:
            return None
        state, result = self.state, self.result
        if not state and not result:
            return job.total_count
        if result:
            if state not in ("", Task.State.COMPLETED):
                return 0
            return job.succeeded_count if result == Task.Result.SUCCESS else job.failed_count
        if state == Task.State.ACTIVE:
            return job.active_count
        if state == Task.State.COMPLETED:
            return job.completed_count
        return None  # preparing and running share one counter

    def params(self, *, sort: bool = True) -> dict[str, str]:
        """The filter as URL parameters (only the ones that are set). A value that could
        not be read is carried as it was sent, so every link of a page keeps its error
        until the user corrects it rather than quietly dropping it."""
        out = {
            "state": self.state,
            "result": self.result,
            "exit_code": self.exit_code,
            "failure_code": self.failure_code,
            "node": self.node,
            "q": self.q,
            "since": format_moment(self.since, self.zone),
            "until": format_moment(self.until, self.zone),
            "blocked": "1" if self.blocked else "",
        }
        out.update(self.raw)
        if out["since"] or out["until"]:
            out["time"] = self.raw.get("time", self.time)
            out["tz"] = self.raw.get("tz", self.tz)
        if sort and (self.sort != "id" or self.desc):
            out["sort"] = ("-" if self.desc else "") + self.sort
        return {k: v for k, v in out.items() if v}

    @property
    def zone(self) -> tzinfo:
        """The zone From and Until are read and written in: the one the form sent, else UTC."""
        return parse_zone(self.tz)[0] or UTC

    def querystring(self) -> str:
        return urlencode(self.params())

    def sort_link(self, name: str) -> str:
        """The query string that sorts by `name`, flipping the direction if already sorted so."""
        desc = (not self.desc) if self.sort == name else False
        return urlencode({**self.params(sort=False), "sort": ("-" if desc else "") + name})

    def describe(self) -> str:
        """A one-line human description of the scope, for previews and audit records."""
        parts = [f"{k}={v}" for k, v in self.params(sort=False).items()]
        return ", ".join(parts) if parts else "all tasks"


def id_contains(text: str) -> Q:
    """Task ids (their lower-case key) holding `text`: `strpos(id_key, text) > 0`, not
    `id_key LIKE '%text%'`. PostgreSQL estimates a LIKE from its histogram of id_key: a
    substring that none of the histogram's 100 ids holds is taken as matching one task in
    10,000, so a page sorted by id was a scan of every task and a sort (300 ms in a 1M-task
    job, where "0004" matches 1,300 and the walk of the (job, id_key) index finds 50 of them
    in 440 rows, 0.2 ms). strpos it does not estimate (a third of the rows): the page walks
    the sort's index as SQLite's does, and reads as many rows as it takes to find a page
    (a substring matching nothing reads the whole job either way)."""
    return Q(GreaterThan(StrIndex("id_key", Value(text)), 0))


class RunTime(Func):
    """end_time - start_time in microseconds (NULL until both are set), computed by the
    database itself: Django's generic duration arithmetic on SQLite calls a Python function
    per row, ten times slower over a million tasks."""

    output_field = FloatField()

    def __init__(self):
        super().__init__(F("end_time"), F("start_time"))

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400000000.0)",
            arg_joiner=") - julianday(",
            **extra,
        )

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="(EXTRACT(EPOCH FROM (%(expressions)s)) * 1000000.0)",
            arg_joiner=" - ",
            **extra,
        )


RUN_TIME = RunTime()


def parse_exit_codes(text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """`1,2,137` and `1..255` (and mixes) -> ([1, 2, 137], [(1, 255)])."""
    codes, ranges = [], []
    parts = [p for p in (p.strip() for p in text.split(",")) if p]
    if len(parts) > MAX_EXIT_CODE_PARTS:
        raise FilterError(f"At most {MAX_EXIT_CODE_PARTS} exit codes or ranges.")
    for part in parts:
        try:
            if ".." in part:
                low, high = (_int32(x) for x in part.split("..", 1))
                ranges.append((min(low, high), max(low, high)))
            else:
                codes.append(_int32(part))
        except ValueError:
            raise FilterError(
                f"Exit codes are whole numbers or ranges like 1..255, not {_shown(part)}."
            ) from None
    return codes, ranges


def _int32(text: str) -> int:
    value = int(text)
    if not -(2**31) <= value < 2**31:
        raise ValueError("out of range")
    return value


def _shown(text: str) -> str:
    """A value as an error message quotes it: never more than a few dozen characters."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def storable(text: str) -> bool:
    """Whether every database can compare with this text: PostgreSQL refuses a NUL in any
    string (a 500 if it reaches a query), and no stored id or name holds one."""
    return "\x00" not in text


def _text_error(text: str) -> str:
    if len(text) > TEXT_LIMIT:
        return f"At most {TEXT_LIMIT} characters, not {len(text)}."
    if not storable(text):
        return "A NUL character cannot be part of a filter."
    return ""


_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d\d))?$")
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}$")


def parse_zone(text: str) -> tuple[tzinfo | None, str]:
    """The time zone a filter form sent (static/js/time.js fills it with the zone the page
    shows times in): an IANA name ("Asia/Kolkata", "UTC") or a UTC offset ("+05:30",
    "UTC-8"); None for no zone (UTC), or the error."""
    text = text.strip()
    if not text:
        return None, ""
    offset = _OFFSET.match(text)
    if offset:
        sign, hours, minutes = offset.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta > timedelta(hours=14) or int(minutes or 0) >= 60:
            return None, f"Not a UTC offset: {_shown(text)} (from -14:00 to +14:00)."
        return dt_timezone(-delta if sign == "-" else delta), ""
    if len(text) <= 64 and _ZONE_NAME.match(text):
        try:
            return ZoneInfo(text), ""
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return None, f"Unknown time zone {_shown(text)}."


def parse_moment(text: str, zone: tzinfo = UTC) -> tuple[datetime | None, str]:
    """An ISO date or date and time (in `zone`, the one the form shows, unless it says
    otherwise), or the error: not a date, or a moment that UTC and the zone cannot both
    represent (the database compares in UTC), such as 0001-01-01T00:00+14:00."""
    try:
        moment = parse_datetime(text.replace(" ", "T")) if "T" in text or " " in text else None
        moment = moment or datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None, f"Not a date and time: {_shown(text)}."
    try:
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=zone)
            # A wall time the zone skips (a spring-forward gap) or repeats: fold=0, the
            # earlier reading, as zoneinfo does; it must still exist in UTC and locally.
            moment.astimezone(UTC)
        if not representable(moment) or not representable(moment, zone):
            raise OverflowError
    except (ValueError, OverflowError):
        return None, f"Out of range: {_shown(text)} (years 1 to 9999 in UTC and in local time)."
    return moment, ""


def format_moment(moment: datetime | None, zone: tzinfo = UTC) -> str:
    """A moment as the form's datetime-local value in `zone`, exact to the second (or
    finer), so the filter a link or a bulk scope carries is the one that was read."""
    if moment is None:
        return ""
    local = moment.astimezone(zone).replace(tzinfo=None)
    if local.microsecond:
        return local.isoformat(timespec="microseconds")
    return local.isoformat(timespec="seconds" if local.second else "minutes")


# --- keyset pages (tasks.queries.pager) -----------------------------------------------


def page_of(
    qs: QuerySet, f: TaskFilter, *, after: str = "", before: str = "", limit: int = PAGE_SIZE
) -> Page:
    """One keyset page of `qs` (from `TaskFilter.queryset`) in the filter's order; a cursor
    that is not one of this order's (hand-edited, truncated, another sort's) gives page 1.

    Costs one query per segment it touches (one, or two where the "no value" rows begin)."""
    try:
        return pager.page(qs, f.order, after=after, before=before, limit=limit)
    except pager.BadCursor:
        return pager.page(qs, f.order, limit=limit)
