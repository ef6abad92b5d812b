"""Pool and node views, in the dashboard's one way (tasks.web.views): parse, check access,
call one operation through tasks.operations.pool_actions (which audits it), respond.

A refused action re-renders the live region it acts on (#pool-live, #node-live) with the
rule's message beside the buttons, answered 200; a plain POST gets the message as a banner
and a redirect. A form's value the operation refuses (400: a resize timeout under 5
minutes, a formula that does not parse) is shown at its field instead. A live region whose
pool or node is gone (deleted, left the pool) answers its poll with a last fragment that
says so, and 286.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import reswap, retarget

from tasks.errors import BatchError
from tasks.file_responses import file_bytes
from tasks.models import ComputeNode
from tasks.nodehost.storage import clean_name
from tasks.operations import pools as pool_ops
from tasks.operations.audit import actor_name
from tasks.operations.pool_actions import NODE_ACTIONS, act_on_node, act_on_pool
from tasks.queries.nodes import get_node
from tasks.queries.pools import get_pool
from tasks.timefmt import format_duration

from . import files, pool_pages
from .access import account_access, login_required, node_access, pool_access, visible_accounts
from .forms import AutoScaleForm, EvaluateForm, ResizeForm
from .responses import fragment_or_page, go, htmx_aware, stop_polling

# --- pools -----------------------------------------------------------------------------------


@login_required
@require_GET
@htmx_aware
def pool_index(request):
    """Every pool of every account the user sees."""
    context = {"access": None, **pool_pages.pool_rows(visible_accounts(request.user))}
    return fragment_or_page(
        request, "tasks/pool_list.html", "tasks/_pool_rows.html", context, live=context["live"]
    )


@login_required
@require_GET
@htmx_aware
def pool_list(request, account):
    access = account_access(request.user, account)
    context = {"access": access, **pool_pages.pool_rows([access.account])}
    return fragment_or_page(
        request, "tasks/pool_list.html", "tasks/_pool_rows.html", context, live=context["live"]
    )


@login_required
@require_GET
@htmx_aware
def pool_detail(request, account, pool_id):
    access = account_access(request.user, account)
    try:
        pool = get_pool(access.account, pool_id)
    except BatchError:
        return _pool_gone(request, access, pool_id)
    pool.account = access.account
    state = request.GET.get("state", "")
    context = pool_pages.pool_context(
        access, pool, node_state=state if state in ComputeNode.State.values else ""
    )
    return fragment_or_page(
        request, "tasks/pool_detail.html", "tasks/_pool_live.html", context, live=context["live"]
    )


def _pool_gone(request, access, pool_id: str):
    """A poll of a pool deleted meanwhile gets a last fragment; anything else a 404."""
    if not request.htmx:
        raise Http404("No such pool.")
    return stop_polling(request, "tasks/_pool_gone.html", {"access": access, "pool_id": pool_id})


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def pool_resize(request, account, pool_id):
    access, pool = pool_access(request.user, account, pool_id, act=request.method == "POST")
    form = ResizeForm.for_pool(pool, data=request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        scope = {
            "targetDedicatedNodes": d["target_dedicated"],
            "targetLowPriorityNodes": d["target_low_priority"],
            "nodeDeallocationOption": d["node_deallocation_option"],
            **(
                {"resizeTimeout": format_duration(d["resize_timeout"])}
                if d["resize_timeout"]
                else {}
            ),
        }
        _, error = act_on_pool(
            pool,
            "resize",
            lambda: pool_ops.resize_pool(
                pool,
                target_dedicated=d["target_dedicated"],
                target_low_priority=d["target_low_priority"],
                resize_timeout=d["resize_timeout"],
                node_deallocation_option=d["node_deallocation_option"],
            ),
            user=request.user,
            actor=actor_name(request.user),
            scope=scope,
        )
        if error is None or error.status != 400:
            return _after_pool_action(
                request,
                access,
                pool,
                error,
                f"Pool {pool.pool_id}: resizing to "
                f"{d['target_dedicated']} dedicated and {d['target_low_priority']} "
                "low-priority nodes.",
            )
        form.add_batch_error(error)
    return _pool_form(request, access, pool, form, "resize")


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def pool_autoscale(request, account, pool_id):
    """Enable AutoScale, or give an autoscaled pool a new formula or interval."""
    access, pool = pool_access(request.user, account, pool_id, act=request.method == "POST")
    form = AutoScaleForm.for_pool(pool, data=request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        formula, interval = form.cleaned_data["formula"], form.cleaned_data["evaluation_interval"]
        scope = {
            "autoScaleFormula": formula,
            **({"autoScaleEvaluationInterval": format_duration(interval)} if interval else {}),
        }
        _, error = act_on_pool(
            pool,
            "enable-autoscale",
            lambda: pool_ops.enable_auto_scale(pool, formula=formula, evaluation_interval=interval),
            user=request.user,
            actor=actor_name(request.user),
            scope=scope,
        )
        if error is None or error.status != 400:
            return _after_pool_action(
                request,
                access,
                pool,
                error,
                f"Pool {pool.pool_id}: autoscale enabled; the formula was evaluated.",
            )
        form.add_batch_error(error)
    return _pool_form(request, access, pool, form, "enable-autoscale")


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def pool_evaluate(request, account, pool_id):
    """Evaluate a formula on the pool and show the run; nothing is applied."""
    access, pool = pool_access(request.user, account, pool_id, act=request.method == "POST")
    form = EvaluateForm.for_pool(pool, data=request.POST if request.method == "POST" else None)
    run = None
    if request.method == "POST" and form.is_valid():
        formula = form.cleaned_data["formula"]
        run, error = act_on_pool(
            pool,
            "evaluate-autoscale",
            lambda: pool_ops.evaluate_auto_scale(pool, formula=formula),
            user=request.user,
            actor=actor_name(request.user),
            scope={"autoScaleFormula": formula},
        )
        if error is not None and error.status != 400:
            return _after_pool_action(request, access, pool, error, "")
        if error is not None:
            form.add_batch_error(error)
    return _pool_form(request, access, pool, form, "evaluate-autoscale", run=run)


def _pool_form(request, access, pool, form, action: str, *, run: dict | None = None):
    button = pool_pages.pool_button(access, pool, action)
    context = {
        "access": access,
        "account": access.account,
        "pool": pool,
        "form": form,
        "action": action,
        "button": button,
        "run": run,
        "run_results": pool_pages.autoscale_results(run),
    }
    return fragment_or_page(request, "tasks/pool_form.html", "tasks/_pool_form.html", context)


POOL_OPERATIONS = {
    "stop-resize": pool_ops.stop_resize_pool,
    "disable-autoscale": pool_ops.disable_auto_scale,
    "delete": pool_ops.delete_pool,
}


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def pool_action(request, account, pool_id, action):
    """Stop resize, disable autoscale or delete a pool. Delete asks first: a GET (or a POST
    without `confirm`) shows what will happen."""
    access, pool = pool_access(request.user, account, pool_id, act=request.method == "POST")
    if request.method == "GET" or (action == "delete" and not request.POST.get("confirm")):
        button = pool_pages.pool_button(access, pool, action)
        context = {
            "access": access,
            "account": access.account,
            "pool": pool,
            "action": action,
            "button": button,
            "node_count": pool.nodes.count(),
        }
        return fragment_or_page(
            request, "tasks/pool_confirm.html", "tasks/_pool_confirm.html", context
        )
    result, error = act_on_pool(
        pool,
        action,
        lambda: POOL_OPERATIONS[action](pool),
        user=request.user,
        actor=actor_name(request.user),
    )
    if action == "delete" and error is None:
        messages.success(request, f"Pool {pool.pool_id} is being deleted: its nodes leave first.")
        return go(request, reverse("web:pools", args=[account]))
    return _after_pool_action(
        request, access, pool, error, "" if error else _done_text(action, pool, result)
    )


def _done_text(action: str, pool, result) -> str:
    if action == "stop-resize":
        if result.allocation_state == result.AllocationState.STEADY:
            return f"Pool {pool.pool_id} is steady: there was no resize to stop."
        return f"Pool {pool.pool_id}: stopping the resize; the nodes it has stay."
    return f"Pool {pool.pool_id}: autoscale disabled; the targets stay as they are."


def _after_pool_action(request, access, pool, error, success: str):
    """htmx: the pool's live region re-rendered with the outcome; plain: message + redirect."""
    if request.htmx:
        fresh = pool_pages.reload_pool(pool)
        if fresh is None:
            response = render(
                request, "tasks/_pool_gone.html", {"access": access, "pool_id": pool.pool_id}
            )
        else:
            context = {
                **pool_pages.pool_context(access, fresh),
                "flash": _said(error) if error else success,
                "flash_error": error is not None,
                "close_dialog": True,
            }
            response = render(request, "tasks/_pool_live.html", context)
        return reswap(retarget(response, "#pool-live"), "outerHTML")
    if error:
        messages.error(request, f"{error.code}: {_said(error)}")
    else:
        messages.success(request, success)
    return HttpResponseRedirect(reverse("web:pool", args=[access.account.name, pool.pool_id]))


def _said(error: BatchError) -> str:
    """A refusal as people read it: its reason when it names one (which value, why)."""
    return dict(error.values).get("Reason") or error.message


# --- nodes -----------------------------------------------------------------------------------


@login_required
@require_GET
@htmx_aware
def node_detail(request, account, pool_id, node_id):
    access, pool = pool_access(request.user, account, pool_id)
    try:
        node = get_node(pool, node_id)
    except BatchError:
        if not request.htmx:
            raise Http404("No such node.") from None
        return stop_polling(
            request, "tasks/_node_gone.html", {"access": access, "pool": pool, "node_id": node_id}
        )
    node.pool = pool
    context = pool_pages.node_context(access, node)
    return fragment_or_page(
        request, "tasks/node_detail.html", "tasks/_node_live.html", context, live=context["live"]
    )


@login_required
@require_http_methods(["GET", "POST"])
@htmx_aware
def node_action(request, account, pool_id, node_id, action):
    """Reboot, reimage, disable or enable scheduling, or remove one node. All but enabling
    ask first, with the option that says what happens to the node's running tasks."""
    access, node = node_access(
        request.user, account, pool_id, node_id, act=request.method == "POST"
    )
    if request.method == "GET" or (
        action in pool_pages.CONFIRMED_NODE_ACTIONS and not request.POST.get("confirm")
    ):
        context = pool_pages.node_action_context(access, node, action)
        return fragment_or_page(
            request, "tasks/node_confirm.html", "tasks/_node_confirm.html", context
        )
    option = request.POST.get("option") if NODE_ACTIONS[action].options else None
    error = act_on_node(
        node, action, option=option, user=request.user, actor=actor_name(request.user)
    )
    label = pool_pages.NODE_ACTION_TEXT[action][0]
    return _after_node_action(
        request, access, node, error, f"Node {node.node_id}: {label.lower()} ordered."
    )


def _after_node_action(request, access, node, error, success: str):
    """htmx: the node's live region re-rendered with the outcome; plain: message + redirect."""
    fresh = pool_pages.reload_node(node)
    if request.htmx:
        if fresh is None:
            response = render(
                request,
                "tasks/_node_gone.html",
                {"access": access, "pool": node.pool, "node_id": node.node_id},
            )
        else:
            context = {
                **pool_pages.node_context(access, fresh),
                "flash": _said(error) if error else success,
                "flash_error": error is not None,
                "close_dialog": True,
            }
            response = render(request, "tasks/_node_live.html", context)
        return reswap(retarget(response, "#node-live"), "outerHTML")
    if error:
        messages.error(request, f"{error.code}: {_said(error)}")
    else:
        messages.success(request, success)
    if fresh is None:
        return HttpResponseRedirect(
            reverse("web:pool", args=[access.account.name, node.pool.pool_id])
        )
    return HttpResponseRedirect(
        reverse("web:node", args=[access.account.name, node.pool.pool_id, node.node_id])
    )


@login_required
@require_GET
@htmx_aware
def node_output(request, account, pool_id, node_id):
    """The tail of a file under the node's root as escaped text (the start task's stdout by
    default), following while it can grow."""
    access, node = node_access(request.user, account, pool_id, node_id)
    name = clean_name(request.GET.get("file") or pool_pages.START_TASK_FILES[0])
    if name is None:
        raise Http404("Not a file name under the node's root.")
    context = {
        **pool_pages.node_output_context(access, node, name),
        "tail": files.node_tail(node, name),
    }
    return fragment_or_page(
        request,
        "tasks/node_output.html",
        "tasks/_node_output.html",
        context,
        live=context["output_live"],
    )


@login_required
@require_GET
def node_files(request, account, pool_id, node_id):
    """The files under the node's root: startup/, shared/ and the task directories."""
    access, node = node_access(request.user, account, pool_id, node_id)
    return render(request, "tasks/node_files.html", pool_pages.node_files_context(access, node))


@login_required
@require_GET
@file_bytes
def node_file(request, account, pool_id, node_id, name):
    """A file under the node's root, always as a download (never shown inline: what a start
    task wrote must not run on the dashboard's origin)."""
    _, node = node_access(request.user, account, pool_id, node_id)
    handle = files.open_node_file(node, name)
    if handle is None:
        raise Http404("No such file.")
    return FileResponse(
        handle,
        as_attachment=True,
        filename=name.rsplit("/", 1)[-1],
        content_type="application/octet-stream",
    )
