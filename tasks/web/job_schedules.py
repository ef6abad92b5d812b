"""Dashboard: a job's state actions (disable with a disableTasks choice, enable) and the
job schedule pages (list, page, disable / enable / terminate). Every action goes through
tasks.operations.actions (the rules layer, audited); a button is disabled with its rule's
refusal, as on the task and node pages."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from tasks.errors import BatchError
from tasks.models import DisableJobOption, Job, JobSchedule
from tasks.operations.actions import (
    JOB_ACTIONS,
    JOB_SCHEDULE_ACTIONS,
    act_on_job,
    act_on_job_schedule,
)
from tasks.operations.audit import actor_name
from tasks.queries.job_schedules import (
    get_job_schedule,
    job_schedule_task_counts,
    list_recent_jobs_of_schedule,
)

from .access import Access, account_access, job_access, login_required, roles_of, visible_accounts
from .pool_pages import Button
from .responses import fragment_or_page, go, htmx_aware

DISABLE_HELP = {
    DisableJobOption.REQUEUE: "Running tasks are killed and go back to active (requeueCount + 1); they run again once the "
    "job is enabled.",
    DisableJobOption.TERMINATE: "Running tasks are killed and completed with failureInfo TaskEnded; they do not run again.",
    DisableJobOption.WAIT: "Running tasks finish; the job is disabling until the last one ends, then disabled.",
}
RECENT_JOBS = 20


# --- a job's state actions -----------------------------------------------------------------


def job_buttons(access: Access, job: Job) -> list[Button]:
    """Disable or Enable (only the one that can change something shows, as for a node's
    scheduling), disabled with its rule's refusal (a viewer's: the role). No query."""
    shown = "enable" if job.state in (Job.State.DISABLED, Job.State.DISABLING) else "disable"
    return [_job_button(access, job, shown)]


def _job_button(access: Access, job: Job, action: str) -> Button:
    _, rule = JOB_ACTIONS[action]
    url = reverse(f"web:job-{action}", args=[access.account.name, job.job_id])
    return Button(action, action.capitalize(), url, access.refusal(rule(job)), action == "disable")


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def job_state_action(request, account, job_id, action):
    """Disable (asks first, with the disableTasks choice) or enable a job."""
    access, job = job_access(request.user, account, job_id, act=request.method == "POST")
    if request.method == "GET" or (action == "disable" and not request.POST.get("confirm")):
        context = {
            "access": access,
            "job": job,
            "button": _job_button(access, job, action),
            "options": [(o.value, DISABLE_HELP[o]) for o in DisableJobOption],
        }
        return fragment_or_page(
            request, "tasks/job_confirm.html", "tasks/_job_confirm.html", context
        )
    option = request.POST.get("option") if action == "disable" else None
    error = act_on_job(
        job, action, option=option, user=request.user, actor=actor_name(request.user)
    )
    _report(
        request,
        error,
        f"Job {job.job_id}: {action} done."
        if action == "enable"
        else f"Job {job.job_id}: disabled ({option}).",
    )
    return go(request, reverse("web:job", args=[account, job.job_id]))


def _report(request, error: BatchError | None, success: str) -> None:
    if error:
        messages.error(
            request, f"{error.code}: {dict(error.values).get('Reason') or error.message}"
        )
    else:
        messages.success(request, success)


# --- job schedules -------------------------------------------------------------------------


def schedule_access(
    user, account: str, schedule_id: str, *, act: bool = False
) -> tuple[Access, JobSchedule]:
    """The access and the schedule, or 404 / 403. Two queries."""
    access = account_access(user, account, act=act)
    try:
        schedule = get_job_schedule(access.account, schedule_id)
    except BatchError:
        raise Http404("No such job schedule.") from None
    schedule.account = access.account
    return access, schedule


def schedule_buttons(access: Access, schedule: JobSchedule) -> list[Button]:
    """Disable or Enable (the one that changes something), and Terminate; no query."""
    if not access.can_act:
        return []
    hidden = "disable" if schedule.state == JobSchedule.State.DISABLED else "enable"
    return [
        _schedule_button(access, schedule, name) for name in JOB_SCHEDULE_ACTIONS if name != hidden
    ]


def _schedule_button(access: Access, schedule: JobSchedule, action: str) -> Button:
    _, rule = JOB_SCHEDULE_ACTIONS[action]
    url = reverse(f"web:job-schedule-{action}", args=[access.account.name, schedule.schedule_id])
    return Button(
        action,
        action.capitalize(),
        url,
        access.refusal(rule(schedule)),
        action == "terminate",
        action == "terminate",
    )


@login_required
@require_GET
@htmx_aware
def job_schedule_list(request):
    """Every job schedule of every account the user sees, with its jobs' task counts:
    three queries (the schedules, the roles, one aggregate of the counters)."""
    schedules = list(
        JobSchedule.objects.filter(account__in=visible_accounts(request.user))
        .select_related("account")
        .order_by("account__name", "id_key")[:500]
    )
    counts = job_schedule_task_counts(schedules)
    roles = roles_of(request.user)
    rows = [
        {"schedule": s, "counts": counts.get(s.pk, {}), "role": roles.get(s.account_id, "")}
        for s in schedules
    ]
    return fragment_or_page(
        request, "tasks/job_schedule_list.html", "tasks/job_schedule_list.html", {"rows": rows}
    )


@login_required
@require_GET
@htmx_aware
def job_schedule_detail(request, account, schedule_id):
    """A schedule: its configuration, next run, its recent jobs with their progress, and
    its actions. Four queries."""
    access, schedule = schedule_access(request.user, account, schedule_id)
    jobs = list_recent_jobs_of_schedule(schedule, limit=RECENT_JOBS)
    counts = job_schedule_task_counts([schedule]).get(schedule.pk, {})
    context = {
        "access": access,
        "schedule": schedule,
        "jobs": jobs,
        "counts": counts,
        "buttons": schedule_buttons(access, schedule),
    }
    return fragment_or_page(
        request, "tasks/job_schedule_detail.html", "tasks/job_schedule_detail.html", context
    )


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def job_schedule_action(request, account, schedule_id, action):
    """Disable, enable or terminate a schedule; terminate asks first."""
    access, schedule = schedule_access(
        request.user, account, schedule_id, act=request.method == "POST"
    )
    if request.method == "GET" or (action == "terminate" and not request.POST.get("confirm")):
        context = {
            "access": access,
            "schedule": schedule,
            "button": _schedule_button(access, schedule, action),
        }
        return fragment_or_page(
            request, "tasks/job_schedule_confirm.html", "tasks/_job_schedule_confirm.html", context
        )
    error = act_on_job_schedule(schedule, action, user=request.user, actor=actor_name(request.user))
    _report(request, error, f"Job schedule {schedule.schedule_id}: {action} done.")
    return go(request, reverse("web:job-schedule", args=[account, schedule.schedule_id]))
