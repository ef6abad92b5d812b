"""Dashboard views: parse, check access (web/access.py), call one operation or query,
respond. One URL serves both kinds of request: an htmx request gets a fragment, a plain
one a page (or `messages` and a redirect after a POST).

How a refused action shows (one choice, everywhere): the fragment the action targets is
re-rendered with the refusal's message beside the buttons, answered 200 so htmx swaps it;
a plain POST gets the message as an error banner and a redirect. A viewer's POST is a 403.

Live regions (job rows, a job's tasks, a task, an output tail, a bulk run) carry their own
wrapper and swap outerHTML; the wrapper polls only while something can still change, and
a poll answered when nothing can is `HttpResponseStopPolling` (286).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import (
    FileResponse,
    Http404,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from tasks.errors import BatchError
from tasks.file_responses import file_bytes
from tasks.models import BulkOperation
from tasks.operations.actions import DESTRUCTIVE, act_on_task
from tasks.operations.audit import actor_name, audited
from tasks.operations.bulk import start_bulk_operation, stop_bulk_operation
from tasks.operations.tasks import add_task, update_task
from tasks.queries.task_list import FIELD_LABELS, TaskFilter
from tasks.queries.tasks import list_subtasks, reload_task

from . import analytics, files, pages
from .access import (
    TaskMissing,
    account_access,
    job_access,
    login_required,
    operator_accounts,
    task_access,
)
from .forms import AddTaskForm, ConstraintsForm
from .responses import fragment_or_page as _fragment_or_page
from .responses import go as _go
from .responses import htmx_aware, stop_polling

# --- jobs ----------------------------------------------------------------------------------


@login_required
@require_GET
@htmx_aware
def job_list(request):
    context = pages.job_list_context(request.user, request.GET)
    return _fragment_or_page(
        request, "tasks/job_list.html", "tasks/_job_rows.html", context, live=context["live"]
    )


@login_required
@require_GET
@htmx_aware
def job_detail(request, account, job_id):
    access, job = job_access(request.user, account, job_id)
    context = pages.job_detail_context(request, access, job)
    return _fragment_or_page(
        request, "tasks/job_detail.html", "tasks/_job_live.html", context, live=context["live"]
    )


@login_required
@require_GET
def job_count(request, account, job_id):
    """The exact number of tasks a filter matches (a COUNT; asked for, never on every poll)."""
    _, job = job_access(request.user, account, job_id)
    f = TaskFilter.from_params(request.GET)
    count = None if f.errors else f.count_from(job)
    if count is None and not f.errors:
        count = f.queryset(job).count()
    return render(request, "tasks/_job_count.html", {"count": count, "filter": f})


@login_required
@require_GET
def job_export(request, account, job_id):
    """Everything the filter matches as CSV; a filter with an error is refused (400) with
    the error, before the stream starts, rather than exporting more than was asked."""
    access, job = job_access(request.user, account, job_id)
    f = TaskFilter.from_params(request.GET)
    if f.errors:
        context = {
            "access": access,
            "job": job,
            "filter": f,
            "labels": FIELD_LABELS,
            "refusal": pages.filter_refusal(f),
        }
        return render(request, "tasks/job_export_refused.html", context, status=400)
    response = StreamingHttpResponse(pages.csv_rows(job, f), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{job.job_id}-tasks.csv"'
    return response


@login_required
@require_GET
def job_triage(request, account, job_id):
    access, job = job_access(request.user, account, job_id)
    context = {"access": access, "job": job, "groups": pages.failure_groups(job)}
    return render(request, "tasks/job_triage.html", context)


@login_required
@require_GET
def job_analytics(request, account, job_id):
    access, job = job_access(request.user, account, job_id)
    context = {"access": access, "job": job, "stats": analytics.job_analytics(job)}
    return render(request, "tasks/job_analytics.html", context)


@login_required
@require_GET
def job_timeline(request, account, job_id):
    """The node x time chart over a range (`from`, `to`: local time unless they say
    otherwise; neither: the latest runs), with links that zoom and move it."""
    access, job = job_access(request.user, account, job_id)
    context = {
        "access": access,
        "job": job,
        **pages.timeline_context(job, request.GET, access.account.name),
    }
    return render(request, "tasks/job_timeline.html", context)


# --- bulk ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def job_bulk(request, account, job_id):
    """GET: the preview with the exact count; POST: confirm and start in the background."""
    access, job = job_access(request.user, account, job_id, act=request.method == "POST")
    params = request.POST if request.method == "POST" else request.GET
    preview = pages.bulk_preview(job, params)
    if request.method == "POST" and not preview.error:
        try:
            op = start_bulk_operation(
                job,
                action=preview.action,
                scope=preview.scope,
                user=request.user,
                actor=actor_name(request.user),
                total=preview.count,
            )
        except BatchError as error:
            preview.error = f"{error.code}: {dict(error.values).get('Reason') or error.message}"
    if request.method == "GET" or preview.error:
        return render(
            request, "tasks/bulk_preview.html", {"access": access, "job": job, "preview": preview}
        )
    messages.success(request, f"Started: {preview.action} {preview.count} task(s).")
    return _go(request, reverse("web:bulk", args=[op.pk]))


@login_required
@require_GET
@htmx_aware
def bulk_detail(request, pk):
    op = get_object_or_404(BulkOperation.objects.select_related("job", "account", "user"), pk=pk)
    access = account_access(request.user, op.account.name)
    live = op.state in (BulkOperation.State.PENDING, BulkOperation.State.RUNNING)
    context = {
        "access": access,
        "op": op,
        "job": op.job,
        "live": live,
        "outcomes": pages.bulk_outcomes(op),
        "stop_url": reverse("web:bulk-stop", args=[op.pk]) if live else "",
    }
    return _fragment_or_page(
        request, "tasks/bulk_detail.html", "tasks/_bulk_progress.html", context, live=live
    )


@login_required
@require_POST
@htmx_aware
def bulk_stop(request, pk):
    """Stop a bulk action in progress (audited as bulk-stop); what it did stays done."""
    op = get_object_or_404(BulkOperation.objects.select_related("job", "account", "user"), pk=pk)
    access = account_access(request.user, op.account.name, act=True)
    _, error = audited(
        op.account,
        user=request.user,
        actor=actor_name(request.user),
        action="bulk-stop",
        scope={"job": op.job.job_id, "bulk": op.pk},
        operation=lambda: stop_bulk_operation(op),
    )
    op.refresh_from_db()
    if request.htmx:
        context = {
            "access": access,
            "op": op,
            "job": op.job,
            "live": False,
            "outcomes": pages.bulk_outcomes(op),
            "flash": error.message if error else "Stopped: no further task is acted on.",
        }
        return render(request, "tasks/_bulk_progress.html", context)
    if error:
        messages.error(request, f"{error.code}: {error.message}")
    else:
        messages.success(request, "Stopped: no further task is acted on.")
    return HttpResponseRedirect(reverse("web:bulk", args=[op.pk]))


# --- tasks ---------------------------------------------------------------------------------


@login_required
@require_GET
@htmx_aware
def task_detail(request, account, job_id, task_id):
    try:
        access, task = task_access(request.user, account, job_id, task_id)
    except TaskMissing as missing:
        return _task_missing(request, missing)
    context = pages.task_context(access, task, request.GET)
    if not request.htmx:  # the live region's refreshes leave the output pane alone
        context["output"] = pages.output_view(task, context["subtasks"], request.GET)
    return _fragment_or_page(
        request, "tasks/task_detail.html", "tasks/_task_live.html", context, live=context["live"]
    )


def _task_missing(request, missing: TaskMissing):
    """A task that is not (or no longer) there: a live page's poll gets a last fragment that
    says it was deleted (and polls no more); a page, a 404 that links back to the job."""
    context = {
        "access": missing.access,
        "account": missing.access.account,
        "job": missing.job,
        "task_id": missing.task_id,
    }
    if request.htmx:
        return stop_polling(request, "tasks/_task_gone.html", context)
    return render(request, "tasks/task_missing.html", context, status=404)


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def task_action(request, account, job_id, task_id, action):
    """Terminate, reactivate or delete one task. Terminate and delete are destructive: a GET
    (or a POST without `confirm`) shows what will happen and asks first."""
    access, task = task_access(request.user, account, job_id, task_id, act=request.method == "POST")
    if request.method == "GET" or (action in DESTRUCTIVE and not request.POST.get("confirm")):
        context = {**pages.task_context(access, task), "action": action}
        return _fragment_or_page(
            request, "tasks/task_confirm.html", "tasks/_task_confirm.html", context
        )
    error = act_on_task(task, action, user=request.user, actor=actor_name(request.user))
    if action == "delete" and error is None:
        messages.success(request, f"Task {task.task_id} deleted.")
        return _go(request, reverse("web:job", args=[account, task.job.job_id]))
    return _after_task_action(request, access, task, error, f"Task {task.task_id}: {action} done.")


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def task_update(request, account, job_id, task_id):
    access, task = task_access(request.user, account, job_id, task_id, act=request.method == "POST")
    form = ConstraintsForm.for_task(task, data=request.POST if request.method == "POST" else None)
    constraints = form.constraints() if request.method == "POST" and form.is_valid() else None
    if constraints is None:
        context = {**pages.task_context(access, task), "form": form}
        return _fragment_or_page(
            request, "tasks/task_update.html", "tasks/_task_update_form.html", context
        )
    _, error = audited(
        access.account,
        user=request.user,
        actor=actor_name(request.user),
        action="update",
        scope={"job": task.job.job_id, "tasks": [task.task_id]},
        operation=lambda: update_task(task, constraints=constraints),
    )
    return _after_task_action(
        request, access, task, error, ConstraintsForm.outcome(task, constraints)
    )


def _after_task_action(request, access, task, error, success: str):
    """htmx: the task's live region re-rendered with the outcome; plain: message + redirect."""
    if request.htmx:
        task = reload_task(task)
        context = {
            **pages.task_context(access, task),
            "flash": error.message if error else success,
            "flash_error": error is not None,
            "close_dialog": True,
        }
        # Whichever element asked (a button, the confirm dialog, the constraints form),
        # the answer replaces the task's live region.
        return reswap(
            retarget(render(request, "tasks/_task_live.html", context), "#task-live"), "outerHTML"
        )
    if error:
        messages.error(request, f"{error.code}: {error.message}")
    else:
        messages.success(request, success)
    return HttpResponseRedirect(
        reverse("web:task", args=[access.account.name, task.job.job_id, task.task_id])
    )


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def task_add(request, account, job_id):
    access, job = job_access(request.user, account, job_id, act=request.method == "POST")
    form = AddTaskForm(data=request.POST if request.method == "POST" else None)
    spec = form.spec() if request.method == "POST" and form.is_valid() else None
    if spec is not None:
        task, error = audited(
            access.account,
            user=request.user,
            actor=actor_name(request.user),
            action="add",
            scope={"job": job.job_id, "tasks": [spec["id"]]},
            operation=lambda: add_task(job, spec=spec),
        )
        if error is None:
            messages.success(request, f"Task {task.task_id} added.")
            return _go(request, reverse("web:task", args=[account, job.job_id, task.task_id]))
        form.add_batch_error(error)
    context = {
        "access": access,
        "job": job,
        "form": form,
        "refusal": pages.add_refusal(access, job),
    }
    return _fragment_or_page(request, "tasks/task_add.html", "tasks/_task_add_form.html", context)


@login_required
@require_GET
def task_output(request, account, job_id, task_id):
    """Any of the task's files in the log viewer (the file list links here), as escaped text."""
    try:
        access, task = task_access(request.user, account, job_id, task_id)
    except TaskMissing as missing:
        return _task_missing(request, missing)
    subtasks = list_subtasks(task) if task.is_multi_instance else []
    context = {
        "task": task,
        "job": task.job,
        "account": access.account,
        "output": pages.output_view(task, subtasks, request.GET),
    }
    return render(request, "tasks/task_output.html", context)


@login_required
@require_GET
def task_output_chunk(request, account, job_id, task_id):
    """The log viewer's reads (static/js/log-viewer.js): a chunk of a task's file as JSON —
    the tail, what came `after` a byte, or the chunk `before` one — its text escaped and
    coloured here (tasks.web.ansi), never markup a task wrote."""
    access, task = task_access(request.user, account, job_id, task_id)
    subtasks = list_subtasks(task) if task.is_multi_instance else []
    view = pages.output_view(
        task,
        subtasks,
        request.GET,
        after=_offset(request.GET.get("after")),
        before=_offset(request.GET.get("before")),
    )
    response = JsonResponse(pages.output_chunk_json(view))
    response["Cache-Control"] = "no-store"
    return response


def _offset(value: str | None) -> int | None:
    """A byte offset from the query string; anything else is no offset (the tail)."""
    return int(value) if value and value.isdigit() and len(value) < 19 else None


@login_required
@require_GET
@file_bytes
def task_file(request, account, job_id, task_id, name):
    """A task file, always as a download: shown inline, a task's HTML or SVG would run on the
    dashboard's origin (the output page shows any file as escaped text instead)."""
    _, task = task_access(request.user, account, job_id, task_id)
    handle = files.open_file(task, name)
    if handle is None:
        raise Http404("No such file.")
    return FileResponse(
        handle,
        as_attachment=True,
        filename=name.rsplit("/", 1)[-1],
        content_type="application/octet-stream",
    )


# --- audit ---------------------------------------------------------------------------------


@login_required
@require_GET
def audit_list(request):
    context = pages.audit_context(operator_accounts(request.user), request.GET)
    return render(request, "tasks/audit_list.html", context)
