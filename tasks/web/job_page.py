"""The job itself on its page: its properties, its count tiles and its actions (update,
disable/enable, terminate, delete), each button disabled with its rule's refusal or the
viewer's reason. The actions go through tasks.operations (update_job is the API's Patch
Job; terminate_job and delete_job the API's), audited, with a confirmation (and for an
update a preview of what changes) before anything happens."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from tasks.errors import BatchError
from tasks.models import Job
from tasks.operations.audit import actor_name, audited
from tasks.operations.constraints import check_job_values
from tasks.operations.jobs import (
    can_delete_job,
    can_terminate_job,
    can_update_job,
    delete_job,
    terminate_job,
    update_job,
)
from tasks.timefmt import format_duration
from tasks.wire.job_serializers import JobUpdateParameterSerializer
from tasks.wire.serializers import validate_wire

from .access import Access, job_access, login_required
from .forms import DURATION_HELP
from .pool_pages import Button
from .responses import fragment_or_page, go, htmx_aware

# Job properties kept in wire form in Job.spec and not acted upon (README, "Not supported").
STORED_ONLY = {"networkConfiguration": "Network configuration"}


def context(access: Access, job: Job) -> dict:
    """What the job page shows of the job itself; no query."""
    return {
        "job_properties": properties(job),
        "job_actions": buttons(access, job),
        "tiles": tiles(job),
    }


def properties(job: Job) -> dict:
    spec = job.spec or {}
    auto = (spec.get("poolInfo") or {}).get("autoPoolSpecification") or {}
    pool = auto.get("pool") or {}
    return {
        "metadata": spec.get("metadata") or [],
        "max_wall_clock_time": job.max_wall_clock_time,
        "max_task_retry_count": job.max_task_retry_count,
        "max_parallel_tasks": job.max_parallel_tasks,
        "allow_task_preemption": spec.get("allowTaskPreemption"),
        "common_environment": spec.get("commonEnvironmentSettings") or [],
        "auto_pool": {
            "prefix": auto.get("autoPoolIdPrefix", ""),
            "lifetime": auto.get("poolLifetimeOption", ""),
            "keep_alive": auto.get("keepAlive", False),
            "vm_size": pool.get("vmSize", ""),
            "dedicated": pool.get("targetDedicatedNodes", 0),
            "low_priority": pool.get("targetLowPriorityNodes", 0),
            "slots": pool.get("taskSlotsPerNode", 1),
        }
        if auto
        else None,
        "stored_only": [(label, spec[key]) for key, label in STORED_ONLY.items() if spec.get(key)],
    }


def tiles(job: Job) -> list[dict]:
    """The count tiles, each the job page filtered to the tasks it counts ("running" counts
    preparing too, as Batch does, so it lists neither state alone: it links to running)."""
    return [
        {"name": "active", "count": job.active_count, "query": "state=active"},
        {"name": "running", "count": job.running_count, "query": "state=running"},
        {"name": "completed", "count": job.completed_count, "query": "state=completed"},
        {
            "name": "succeeded",
            "count": job.succeeded_count,
            "query": "state=completed&result=success",
        },
        {"name": "failed", "count": job.failed_count, "query": "state=completed&result=failure"},
    ]


ACTIONS = {
    # name -> (label, rule, destructive)
    "update": ("Update", can_update_job, False),
    "terminate": ("Terminate", can_terminate_job, True),
    "delete": ("Delete", can_delete_job, True),
}


def buttons(access: Access, job: Job) -> list[Button]:
    """Update, terminate and delete, each disabled with its refusal (a viewer's: the role)."""
    return [_button(access, job, name) for name in ACTIONS]


def _button(access: Access, job: Job, name: str) -> Button:
    label, rule, danger = ACTIONS[name]
    url = reverse(f"web:job-{name}", args=[access.account.name, job.job_id])
    return Button(name, label, url, access.refusal(rule(job)), True, danger)


# --- terminate and delete --------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def job_end_action(request, account, job_id, action):
    """Terminate or delete a job: GET (or a POST without `confirm`) asks first, saying what
    happens to its tasks; the confirmed POST acts, audited like the API's call."""
    access, job = job_access(request.user, account, job_id, act=request.method == "POST")
    button = _button(access, job, action)
    if request.method == "GET" or not request.POST.get("confirm"):
        ctx = {"access": access, "job": job, "button": button}
        return fragment_or_page(
            request, "tasks/job_end_confirm.html", "tasks/_job_end_confirm.html", ctx
        )
    if action == "terminate":
        operation = lambda: terminate_job(job, reason="UserTerminate")  # noqa: E731
    else:
        operation = lambda: delete_job(job)  # noqa: E731
    _, error = audited(
        job.account,
        user=request.user,
        actor=actor_name(request.user),
        action=f"job-{action}",
        scope={"job": job.job_id},
        operation=operation,
    )
    if error:
        messages.error(
            request, f"{error.code}: {dict(error.values).get('Reason') or error.message}"
        )
        return go(request, reverse("web:job", args=[account, job.job_id]))
    if action == "delete":
        messages.success(request, f"Job {job.job_id} is being deleted with its tasks.")
        return go(request, reverse("web:jobs"))
    messages.success(request, f"Job {job.job_id} terminated.")
    return go(request, reverse("web:job", args=[account, job.job_id]))


# --- update ----------------------------------------------------------------------------------

_WIRE_FIELDS = {
    "priority": "priority",
    "maxParallelTasks": "max_parallel_tasks",
    "constraints.maxWallClockTime": "max_wall_clock_time",
    "constraints.maxTaskRetryCount": "max_task_retry_count",
    "onAllTasksComplete": "on_all_tasks_complete",
}


class JobUpdateForm(forms.Form):
    priority = forms.IntegerField(label="Priority", help_text="-1000 (lowest) to 1000 (highest).")
    max_parallel_tasks = forms.IntegerField(label="Max parallel tasks", help_text="-1: no limit.")
    max_wall_clock_time = forms.DurationField(
        required=False,
        label="Max wall-clock time",
        help_text="Of the whole job, from its creation. Empty: unlimited. " + DURATION_HELP,
    )
    max_task_retry_count = forms.IntegerField(label="Max task retries", help_text="-1: unlimited.")
    on_all_tasks_complete = forms.ChoiceField(
        label="When all tasks complete",
        choices=Job.OnAllTasksComplete.choices,
        help_text="terminatejob ends the job once every task is complete; it cannot be turned off again.",
    )

    @classmethod
    def for_job(cls, job: Job, data=None) -> JobUpdateForm:
        initial = {
            "priority": job.priority,
            "max_parallel_tasks": job.max_parallel_tasks,
            "max_wall_clock_time": job.max_wall_clock_time,
            "max_task_retry_count": job.max_task_retry_count,
            "on_all_tasks_complete": job.on_all_tasks_complete,
        }
        return cls(data=data, initial=initial)

    def patch(self, job: Job) -> dict | None:
        """The Patch Job body of what the form changes (constraints go together, as Batch
        replaces them together), read by the API's serializer and checked by the rule
        update_job applies; None with the refusal on its field."""
        data = self.cleaned_data
        body: dict = {}
        if data["priority"] != job.priority:
            body["priority"] = data["priority"]
        if data["max_parallel_tasks"] != job.max_parallel_tasks:
            body["maxParallelTasks"] = data["max_parallel_tasks"]
        if (data["max_wall_clock_time"], data["max_task_retry_count"]) != (
            job.max_wall_clock_time,
            job.max_task_retry_count,
        ):
            body["constraints"] = {"maxTaskRetryCount": data["max_task_retry_count"]}
            if data["max_wall_clock_time"] is not None:
                body["constraints"]["maxWallClockTime"] = format_duration(
                    data["max_wall_clock_time"]
                )
        if data["on_all_tasks_complete"] != job.on_all_tasks_complete:
            body["onAllTasksComplete"] = data["on_all_tasks_complete"]
        try:
            patch = validate_wire(JobUpdateParameterSerializer, body)
            check_job_values(patch)  # the rule update_job applies, so the preview shows its refusal
            return patch
        except BatchError as error:
            self.add_batch_error(error)
            return None

    def add_batch_error(self, error: BatchError) -> None:
        values = dict(error.values)
        self.add_error(
            _WIRE_FIELDS.get(values.get("PropertyName", "")),
            f"{error.code}: {values.get('Reason') or error.message}",
        )


def changes(job: Job, patch: dict) -> list[tuple[str, str, str]]:
    """(property, now, after) for each value the patch changes, as the preview lists them."""

    def shown(v):
        if v is None:
            return "unlimited"
        return format_duration(v) if isinstance(v, timedelta) else str(v)

    out = []
    if "priority" in patch:
        out.append(("priority", str(job.priority), str(patch["priority"])))
    if "maxParallelTasks" in patch:
        out.append(
            ("maxParallelTasks", str(job.max_parallel_tasks), str(patch["maxParallelTasks"]))
        )
    if "constraints" in patch:
        c = patch["constraints"]
        out.append(
            (
                "constraints.maxWallClockTime",
                shown(job.max_wall_clock_time),
                shown(c.get("maxWallClockTime")),
            )
        )
        out.append(
            (
                "constraints.maxTaskRetryCount",
                str(job.max_task_retry_count),
                str(c.get("maxTaskRetryCount", 0)),
            )
        )
    if "onAllTasksComplete" in patch:
        out.append(("onAllTasksComplete", job.on_all_tasks_complete, patch["onAllTasksComplete"]))
    return out


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def job_update(request, account, job_id):
    """GET: the form with the job's values. POST: the preview of what changes; POST with
    `confirm`: Patch Job (tasks.operations.jobs.update_job, the API's), audited."""
    access, job = job_access(request.user, account, job_id, act=request.method == "POST")
    form = JobUpdateForm.for_job(job, data=request.POST if request.method == "POST" else None)
    patch = form.patch(job) if request.method == "POST" and form.is_valid() else None
    ctx = {"access": access, "job": job, "form": form, "button": _button(access, job, "update")}
    if patch is None or not request.POST.get("confirm"):
        ctx.update(
            preview=changes(job, patch) if patch is not None else None, previewed=patch is not None
        )
        return fragment_or_page(
            request, "tasks/job_update.html", "tasks/_job_update_form.html", ctx
        )
    if not patch:
        messages.info(request, "Nothing changed.")
        return go(request, reverse("web:job", args=[account, job.job_id]))
    scope = {"job": job.job_id, "changes": {name: after for name, _, after in changes(job, patch)}}
    _, error = audited(
        job.account,
        user=request.user,
        actor=actor_name(request.user),
        action="job-update",
        scope=scope,
        operation=lambda: update_job(job, spec=patch, replace=False),
    )
    if error:
        form.add_batch_error(error)
        ctx.update(preview=None, previewed=False)
        return fragment_or_page(
            request, "tasks/job_update.html", "tasks/_job_update_form.html", ctx
        )
    messages.success(
        request,
        f"Job {job.job_id} updated: "
        + ", ".join(f"{name} {after}" for name, _, after in changes(job, patch))
        + ".",
    )
    return go(request, reverse("web:job", args=[account, job.job_id]))
