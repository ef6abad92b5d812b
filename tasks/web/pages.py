"""What the dashboard pages show: the reads behind each view, kept out of the views so each
view stays a few lines. Every function here says how many queries it costs."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote, urlencode

from django.db.models import Q
from django.urls import reverse

from tasks.models import Attempt, BulkOperation, Job, SubTask, Task
from tasks.operations.actions import DESTRUCTIVE, TASK_ACTIONS, refusals_of
from tasks.operations.bulk import (
    can_start_bulk_operation,
    filter_scope,
    scope_queryset,
    selection_scope,
)
from tasks.operations.tasks import can_add_task, can_update_task
from tasks.operations.waiting import explain_waiting
from tasks.queries.dashboard import count_failures, list_audit_records, list_dashboard_jobs
from tasks.queries.dependencies import summarise_dependencies
from tasks.queries.task_list import (
    FIELD_LABELS,
    PAGE_SIZE,
    SORT_LABELS,
    TaskFilter,
    format_moment,
    page_of,
    parse_moment,
    storable,
)
from tasks.queries.tasks import list_attempts, list_subtasks

from . import ansi, files, job_page, transfers
from .access import Access, roles_of

JOB_PAGE = 100
JOB_TABS = {
    "active": ~Q(state=Job.State.COMPLETED),
    "completed": Q(state=Job.State.COMPLETED),
    "all": Q(),
}


# --- jobs ----------------------------------------------------------------------------------


def job_list_context(user, params) -> dict:
    """Jobs of every account the user sees, keyset-paged by (account, id)
    (tasks.queries.dashboard.list_dashboard_jobs). Two queries."""
    roles = roles_of(user)
    tab = params.get("tab") if params.get("tab") in JOB_TABS else "active"
    after = params.get("after", "")
    page = list_dashboard_jobs(
        list(roles), where=JOB_TABS[tab], contains=params.get("q", ""), after=after, limit=JOB_PAGE
    )
    for job in page.rows:
        job.can_act = roles.get(job.account_id) == "operator"
    return {
        "jobs": page.rows,
        "tab": tab,
        "tabs": list(JOB_TABS),
        "q": params.get("q", ""),
        "next_after": page.next_cursor,
        # Jobs can be added at any time: the list always refreshes, slowly when nothing runs.
        "live": True,
        "busy": any(job.liveness == Job.BUSY for job in page.rows),
        "first_page": page.is_first,
    }


# How often a job's page refreshes, by Job.liveness (a FINAL job's does not).
POLL = {Job.BUSY: "2s", Job.OPEN: "10s"}


def job_detail_context(request, access: Access, job: Job) -> dict:
    """A job's task page: one keyset page (one query, two where the tasks without a sort value
    begin) and the job's bulk runs in progress (one query)."""
    f = TaskFilter.from_params(request.GET)
    page = page_of(
        f.queryset(job), f, after=request.GET.get("after", ""), before=request.GET.get("before", "")
    )
    bulk = list(
        BulkOperation.objects.filter(
            job=job, state__in=[BulkOperation.State.PENDING, BulkOperation.State.RUNNING]
        )
    )
    return {
        "access": access,
        "job": job,
        "filter": f,
        "page": page,
        "bar": job.progress,
        "count": None if f.errors else f.count_from(job),
        "filter_refusal": filter_refusal(f),
        "bulk_running": bulk,
        "live": job.is_live or bool(bulk),
        "liveness": Job.BUSY if bulk else job.liveness,
        "poll": POLL.get(Job.BUSY if bulk else job.liveness, "2s"),
        "headers": sort_headers(f),
        "labels": FIELD_LABELS,
        "page_size": PAGE_SIZE,
        "add_refusal": add_refusal(access, job),
        "act_refusal": access.refusal(None),
        "actions": list(TASK_ACTIONS),
        "job_buttons": job_buttons(access, job),
        "schedule_id": schedule_of(job),
        "states": [s.value for s in Task.State],
        "results": [r.value for r in Task.Result],
        **job_page.context(access, job),
    }


def job_buttons(access: Access, job: Job) -> list:
    from .job_schedules import job_buttons as buttons

    return buttons(access, job)


def schedule_of(job: Job) -> str:
    """The id of the schedule that made the job (its id is `<scheduleId>:job-<n>`), no query."""
    return job.job_id.rsplit(":job-", 1)[0] if job.job_schedule_id else ""


def filter_refusal(f: TaskFilter) -> str:
    """Why nothing is listed, counted, exported or acted on: the filter has an error."""
    if not f.errors:
        return ""
    return "Correct the filter first: nothing is listed, counted, exported or acted on while it has an error."


def sort_headers(f: TaskFilter) -> dict[str, dict]:
    """Per sortable column: the link that sorts by it (flipping the direction if current)."""
    return {
        name: {"label": label, "qs": f.sort_link(name), "active": f.sort == name, "desc": f.desc}
        for name, label in SORT_LABELS.items()
    }


def add_refusal(access: Access, job: Job) -> str:
    return access.refusal(can_add_task(job))


def timeline_context(job: Job, params, account: str) -> dict:
    """The timeline page: the range asked for (or its errors), the chart (two bounded
    queries) and the zoom links, each a query string."""
    from . import charts

    bounds, errors = {}, {}
    for key in ("from", "to"):
        text = (params.get(key) or "").strip()
        if text:
            bounds[key], errors[key] = (
                parse_moment(text) if storable(text) else (None, "Not a date and time.")
            )
    errors = {key: e for key, e in errors.items() if e}
    since, until = (None, None) if errors else (bounds.get("from"), bounds.get("to"))
    url = reverse("web:task", args=[account, job.job_id, "__TASK__"])
    chart = charts.node_timeline(job, since=since, until=until, task_url=url)
    links = {
        name: f"from={quote(format_moment(a))}&to={quote(format_moment(b))}"
        for name, (a, b) in charts.zoom_links(chart, job).items()
    }
    # The form shows whole seconds (a datetime-local field holds no microseconds): down for
    # the start, up for the end, so the range it sends back still holds every bar drawn.
    ends = (
        ("from", chart.start and chart.start.replace(microsecond=0)),
        ("to", chart.end and (chart.end + timedelta(microseconds=999_999)).replace(microsecond=0)),
    )
    shown = {key: format_moment(value) for key, value in ends if value}
    if errors:
        shown = {key: params.get(key, "") for key in ("from", "to")}
    return {"chart": chart, "zoom": links, "range": shown, "range_errors": errors}


# --- CSV export ----------------------------------------------------------------------------

CSV_CHUNK = 2000
CSV_COLUMNS = [
    "id",
    "state",
    "result",
    "exit_code",
    "failure_code",
    "node",
    "created",
    "started",
    "ended",
    "run_time_s",
    "retries",
    "requeues",
    "command_line",
]
_CSV_FIELDS = [
    "id_key",
    "task_id",
    "state",
    "result",
    "exit_code",
    "failure_info",
    "node_name",
    "creation_time",
    "start_time",
    "end_time",
    "retry_count",
    "requeue_count",
    "command_line",
]


class _Echo:
    def write(self, value):
        return value


def csv_rows(job: Job, f: TaskFilter):
    """Every task the filter matches, in its order, as CSV lines: keyset chunks of CSV_CHUNK
    rows, so memory stays flat however many tasks match."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    qs = f.queryset(job).only(*_CSV_FIELDS)
    after = ""
    while True:
        page = page_of(qs, f, after=after, limit=CSV_CHUNK)
        yield "".join(writer.writerow(_csv_row(t)) for t in page.rows)
        if not page.next_cursor:
            return
        after = page.next_cursor


def _csv_row(t: Task) -> list:
    run = (t.end_time - t.start_time).total_seconds() if t.end_time and t.start_time else ""
    stamp = lambda v: v.isoformat() if v else ""  # noqa: E731
    return [
        t.task_id,
        t.state,
        t.result,
        "" if t.exit_code is None else t.exit_code,
        (t.failure_info or {}).get("code", ""),
        t.node_name,
        stamp(t.creation_time),
        stamp(t.start_time),
        stamp(t.end_time),
        run,
        t.retry_count,
        t.requeue_count,
        t.command_line,
    ]


# --- failure triage ------------------------------------------------------------------------

GROUP_LIMIT = 50


def failure_groups(job: Job) -> list[dict]:
    """A job's failed tasks grouped by exit code, failure code and node, largest first, each
    group with the filter that lists (and bulk-reactivates) exactly it. Three queries."""
    counted = count_failures(job, limit=GROUP_LIMIT)
    base = {"state": Task.State.COMPLETED.value, "result": Task.Result.FAILURE.value}
    return [
        {
            "title": title,
            "key": key,
            "column": column,
            "rows": [_group(value, n, base, key) for value, n in counted[key]],
        }
        for title, key, column in (
            ("By exit code", "exit_code", "Exit code"),
            ("By failure code", "failure_code", "Failure code"),
            ("By node", "node", "Node"),
        )
    ]


def _group(value, count: int, base: dict, key: str) -> dict:
    label = "—" if value in (None, "") else str(value)
    # A group without a value (never ran on a node, no exit code) has no filter of its own.
    params = {**base, key: str(value)} if value not in (None, "") else None
    query = TaskFilter.from_params(params).querystring() if params else ""
    return {"label": label, "count": count, "query": query}


# --- bulk ----------------------------------------------------------------------------------


@dataclass
class BulkPreview:
    action: str
    kind: str  # "selection" | "filter"
    count: int = 0
    scope: dict = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    description: str = ""
    hidden: list[tuple[str, str]] = field(default_factory=list)  # what the confirm form posts back
    error: str = ""
    filter_errors: dict[str, str] = field(default_factory=dict)  # field label -> its error
    back_query: str = ""  # the job page with the filter as sent, to correct it


def bulk_preview(job: Job, params) -> BulkPreview:
    """The exact scope of a bulk action: how many tasks and a few of them. A selection costs
    two queries; a filter one (max pk) plus a COUNT unless the job's counters give it; a
    filter with an error none (it is refused, never widened)."""
    action = params.get("action", "")
    selected = [t for t in params.getlist("task") if t] if hasattr(params, "getlist") else []
    preview = BulkPreview(action=action, kind="selection" if selected else "filter")
    f = TaskFilter.from_params(params)
    if not selected:
        preview.back_query = f.querystring()
    scope = selection_scope(selected) if selected else {"filter": f.params(sort=False)}
    error = can_start_bulk_operation(action=action, scope=scope)
    if error:
        preview.error = dict(error.values).get("Reason", error.message)
        if dict(error.values).get("PropertyName", "").startswith("filter."):
            preview.error = "The filter has an error, so nothing is counted or acted on. Correct it and try again."
            preview.filter_errors = {FIELD_LABELS[key]: text for key, text in f.errors.items()}
        return preview
    preview.scope = scope if selected else filter_scope(job, scope["filter"])
    qs = scope_queryset(job, preview.scope)
    if selected:
        preview.count = qs.count()
        preview.description = f"{len(preview.scope['tasks'])} selected task(s)"
        preview.hidden = [("task", t) for t in preview.scope["tasks"]]
    else:
        counted = f.count_from(job)
        preview.count = counted if counted is not None else qs.count()
        preview.description = f.describe()
        preview.hidden = list(f.params(sort=False).items())
    preview.examples = list(qs.order_by("id_key").values_list("task_id", flat=True)[:10])
    if preview.count == 0:
        preview.error = "No task matches: nothing to do."
    return preview


def bulk_outcomes(op: BulkOperation, limit: int = 200) -> list[tuple[str, str]]:
    """Per-task outcomes to show: refusals first, then the rest, at most `limit`."""
    items = sorted(op.outcomes.items(), key=lambda kv: (kv[1] == "ok", kv[0]))
    return items[:limit]


# --- audit -------------------------------------------------------------------------------

AUDIT_PAGE = 100
AUDIT_FILTERS = ("account", "actor", "action", "job")


def audit_context(accounts, params) -> dict:
    """The audit trail of the given accounts, newest first, keyset-paged
    (tasks.queries.dashboard.list_audit_records), filtered by account, actor, action (exact)
    and job; each record with the bulk run it started. One query."""
    chosen = {
        key: params.get(key, "").strip() for key in AUDIT_FILTERS if params.get(key, "").strip()
    }
    page = list_audit_records(
        accounts, chosen=chosen, after=params.get("after", ""), limit=AUDIT_PAGE
    )
    query = "&".join(f"{k}={quote(v)}" for k, v in chosen.items())
    return {
        "records": page.rows,
        "next_after": page.next_cursor,
        "chosen": chosen,
        "query": query,
    }


# --- a task --------------------------------------------------------------------------------


# Task properties kept in wire form in Task.spec, shown as they were sent.
# (Resource and output files have their own section: tasks/web/transfers.py.)
SPEC_LABELS = [
    ("multiInstanceSettings", "Multi-instance settings"),  # dependsOn: _task_dependencies.html
    ("exitConditions", "Exit conditions"),
    ("containerSettings", "Container"),
    ("userIdentity", "User identity"),
    ("affinityInfo", "Affinity"),
    ("applicationPackageReferences", "Application packages"),
]
# Of those, the ones stored only so that they round-trip (README, "Not supported"): nothing
# starts a container.
SPEC_STORED_ONLY = {"containerSettings"}


@dataclass
class Button:
    action: str
    label: str
    url: str
    reason: str  # why it is disabled; "" when enabled
    destructive: bool


def task_context(access: Access, task: Task, params=None) -> dict:
    """Everything the task page shows. Two queries (attempts; subtasks if multi-instance),
    plus the task's directory on disk for its files; with dependsOn one more (a large
    taskIdRanges: one per 10,000 ids, see tasks.queries.dependencies) for the page of
    dependencies `params` asks for (`dependencies_after` / `dependencies_before`), and for
    an active task up to three more for why it waits (tasks.operations.waiting)."""
    params = params or {}
    # The page of dependencies shown, which the live region's refreshes keep.
    dependency_query = urlencode(
        {k: params[k] for k in ("dependencies_after", "dependencies_before") if params.get(k)}
    )
    attempts = list_attempts(task)
    subtasks = list_subtasks(task) if task.is_multi_instance else []
    listing = files.listing(task)
    dependencies = summarise_dependencies(
        task,
        after=params.get("dependencies_after", ""),
        before=params.get("dependencies_before", ""),
    )
    return {
        "access": access,
        "task": task,
        "job": task.job,
        "account": access.account,
        "buttons": task_buttons(access, task),
        "attempts": attempts,
        "steps": state_steps(task, attempts),
        "subtasks": subtasks,
        "instances": instance_rows(task, subtasks),
        "files": listing,
        "transfers": {
            "resources": transfers.resource_files(task),
            "outputs": transfers.output_files(task),
            "logs": transfers.upload_logs(listing),
        },
        "live": not task.is_completed,
        "run_time": task.run_time,
        "env": task.spec.get("environmentSettings") or [],
        "spec_labels": SPEC_LABELS,
        "spec_stored_only": SPEC_STORED_ONLY,
        "output_files": files.OUTPUT_FILES,
        "phases": instance_phases(task, subtasks),
        "dependencies": dependencies,
        "dependency_query": dependency_query,
        "waiting": explain_waiting(task, dependencies=dependencies),
    }


def task_buttons(access: Access, task: Task) -> list[Button]:
    refusals = refusals_of(task)
    args = [access.account.name, task.job.job_id, task.task_id]
    buttons = [
        Button(
            name,
            name.capitalize(),
            reverse(f"web:task-{name}", args=args),
            access.refusal(refusals[name]),
            name in DESTRUCTIVE,
        )
        for name in TASK_ACTIONS
    ]
    buttons.append(
        Button(
            "update",
            "Update constraints",
            reverse("web:task-update", args=args),
            access.refusal(can_update_task(task)),
            False,
        )
    )
    return buttons


def state_steps(task: Task, attempts: list[Attempt]) -> list[dict]:
    """active -> preparing -> running -> completed with the time each was (last) reached."""
    primary = [a for a in attempts if a.subtask_id is None]
    last = primary[-1] if primary else None
    order = [s.value for s in Task.State]
    current = order.index(task.state)
    times = {
        Task.State.ACTIVE: task.state_transition_time
        if task.state == Task.State.ACTIVE
        else task.creation_time,
        Task.State.PREPARING: last.claimed if last else None,
        Task.State.RUNNING: task.start_time or (last.start_time if last else None),
        Task.State.COMPLETED: task.end_time if task.is_completed else None,
    }
    if task.is_completed and task.end_time is None:
        times[Task.State.COMPLETED] = task.state_transition_time
    return [
        {"state": s, "time": times[s], "reached": i <= current, "current": i == current}
        for i, s in enumerate(order)
    ]


def instance_rows(task: Task, subtasks: list) -> list[dict]:
    """A multi-instance task's primary beside each subtask: state, node, times, exit, failure."""
    if not task.is_multi_instance:
        return []
    rows = [
        {
            "name": "primary (0)",
            "id": None,
            "state": task.state,
            "node": task.node_name,
            "pool": task.pool_id,
            "start": task.start_time,
            "end": task.end_time,
            "exit_code": task.exit_code,
            "result": task.result,
            "failure": task.failure_info,
        }
    ]
    for sub in subtasks:
        rows.append(
            {
                "name": f"subtask {sub.subtask_id}",
                "id": sub.subtask_id,
                "state": sub.state,
                "node": sub.node_name,
                "pool": sub.pool_id,
                "start": sub.start_time,
                "end": sub.end_time,
                "exit_code": sub.exit_code,
                "result": sub.result,
                "failure": sub.failure_info,
            }
        )
    return rows


# --- the log viewer ------------------------------------------------------------------------


@dataclass
class OutputView:
    """What the output pane shows: one file of one instance (the task, or a multi-instance
    task's primary when `instance` is None; subtask `instance` otherwise), as a chunk of
    escaped, coloured text, and where the viewer reads on from."""

    instance: int | None
    name: str
    chunk: files.Chunk
    html: str
    sgr: str
    sizes: dict[str, int | None]
    live: bool
    instances: list[dict]

    @property
    def phase(self) -> str:
        """What the shown instance of a running multi-instance task is running ("" otherwise)."""
        return next((i["phase"] for i in self.instances if i["current"]), "")

    @property
    def loaded(self) -> int:
        return self.chunk.end - self.chunk.start

    @property
    def instance_param(self) -> str:
        return "" if self.instance is None else str(self.instance)


def output_view(
    task: Task, subtasks: list, params, *, after: int | None = None, before: int | None = None
) -> OutputView:
    """The output pane: which instance and file (`instance`, `file`: the first output of the
    instance when not given, stderr when its run failed with an empty stdout), a chunk of it
    (the tail; or what came `after` a byte, coloured on from the SGR state `sgr`; or the chunk
    `before` a byte) and each output file's size. One stat per output file plus one read;
    no query."""
    wanted = params.get("instance", "")
    sub = next((s for s in subtasks if wanted.isdigit() and str(s.subtask_id) == wanted), None)
    where = files.subtask_files(task, sub) if sub else files.task_files(task)
    found = files.sizes(where)
    name = params.get("file") or files.first_output(sub or task, found)
    live = not task.is_completed and (sub is None or sub.state != SubTask.State.COMPLETED)
    chunk = files.read_chunk(where, name, after=after, before=before, growing=live)
    state = params.get("sgr", "") if after is not None and not chunk.reset else ""
    html, sgr = ansi.render(chunk.text, state) if chunk.exists and not chunk.binary else ("", "")
    phases = instance_phases(task, subtasks)
    instances = []
    if task.is_multi_instance:
        instances = [
            {"id": "", "label": "primary", "current": sub is None, "phase": phases.get(None, "")}
        ]
        instances += [
            {
                "id": str(s.subtask_id),
                "label": f"subtask {s.subtask_id}",
                "current": s is sub,
                "phase": phases.get(s.subtask_id, ""),
                "result": s.result,
            }
            for s in subtasks
        ]
    return OutputView(
        None if sub is None else sub.subtask_id, name, chunk, html, sgr, found, live, instances
    )


def instance_phases(task: Task, subtasks: list) -> dict[int | None, str]:
    """What each instance of a running multi-instance task is running (None: the primary):
    every instance runs the coordination command first, and the primary runs the main command
    once every subtask's coordination command succeeded (the agent's rule,
    tasks.operations.attempts.subtasks_ready, read here from the subtasks already loaded)."""
    if not task.is_multi_instance or task.state != Task.State.RUNNING:
        return {}
    coordination = bool(
        (task.spec.get("multiInstanceSettings") or {}).get("coordinationCommandLine")
    )
    ready = sum(
        1
        for s in subtasks
        if s.state == SubTask.State.COMPLETED and s.exit_code == 0 and not s.failure_info
    )
    waiting = task.number_of_instances - 1 - ready
    if waiting <= 0:
        primary = "main command running"
    elif coordination:
        primary = f"coordination command; the main command waits for {waiting} subtask(s)"
    else:
        primary = f"waiting for {waiting} subtask(s) to start"
    phases: dict[int | None, str] = {None: primary}
    for s in subtasks:
        if s.state == SubTask.State.RUNNING:
            phases[s.subtask_id] = "coordination command running"
        elif s.state == SubTask.State.COMPLETED and s.result == Task.Result.SUCCESS:
            phases[s.subtask_id] = "coordination done: holds its node for the main command"
        elif s.state == SubTask.State.PREPARING:
            phases[s.subtask_id] = "starting"
    return phases


def output_chunk_json(view: OutputView) -> dict:
    """The log viewer's answer to one read, as JSON: the chunk as escaped HTML (ansi.render)
    and everything the viewer needs to read on."""
    c = view.chunk
    return {
        "name": view.name,
        "instance": view.instance_param,
        "exists": c.exists,
        "binary": c.binary,
        "size": c.size,
        "start": c.start,
        "end": c.end,
        "reset": c.reset,
        "html": str(view.html),
        "sgr": view.sgr,
        "live": view.live,
        "sizes": view.sizes,
        "phase": view.phase,
    }
