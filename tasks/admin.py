"""The Django admin, for data fixes. It never goes around the rules layer:

- State-, counter- and identity-bearing fields are read-only: a task's id, job, slots or
  state, a job's id and counters, a pool's state and allocation, a node's anything, an
  account's name and keys.
- A change that has an operation goes through it: a task's constraints through
  `update_task`, a job's updatable properties through `update_job` (each first checked by
  the API's wire serializer, so the admin accepts what the API accepts), a pool's targets
  through `resize_pool` and its formula through `enable_auto_scale` / `disable_auto_scale`,
  an account's key through `regenerate_account_key`; a node's reboot, reimage, scheduling
  and removal are list actions through the node operations. Refusals show at the field, or
  as a message banner.
- Deleting goes through the operation where there is one (the Delete actions of tasks, jobs
  and pools); rows without one (accounts, nodes, subtasks) and rows the API adds (tasks,
  jobs, pools, accounts from the configuration) cannot be added or deleted here, and a
  direct URL says why instead of writing behind the rules' back.
- Every action and change is audited, as the dashboard's are.
"""

from __future__ import annotations

import hashlib
import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from tasks.errors import BatchError
from tasks.models import (
    Account,
    AccountGroupGrant,
    AccountMembership,
    AuditRecord,
    BulkOperation,
    ComputeNode,
    Job,
    Pool,
    SubTask,
    Task,
)
from tasks.operations import jobs as job_ops
from tasks.operations import pool_specs
from tasks.operations import pools as pool_ops
from tasks.operations.accounts import regenerate_account_key
from tasks.operations.actions import act_on_task
from tasks.operations.audit import actor_name, audited
from tasks.operations.constraints import check_job_values
from tasks.operations.counts import recount_job
from tasks.operations.pool_actions import act_on_node, act_on_pool
from tasks.operations.tasks import can_update_task, update_task
from tasks.timefmt import format_duration
from tasks.web.forms import ConstraintsForm
from tasks.wire.job_serializers import JobUpdateParameterSerializer
from tasks.wire.redaction import without_secrets
from tasks.wire.serializers import validate_wire

REFUSALS_SHOWN = 5


def rules_action(name: str, description: str, noun: str, related: str, act):
    """An admin action that runs `act(obj, user, actor)` (a rules-layer call returning the
    refusal or None) on each selected object, then reports: one success message, and one
    error message per refusal code naming a few of the objects it refused."""

    def run(modeladmin, request, queryset):
        done, by_code = 0, {}
        for obj in queryset.select_related(related):
            error = act(obj, request.user, actor_name(request.user, via="admin"))
            if error is None:
                done += 1
            else:
                by_code.setdefault(f"{error.code}: {error.message}", []).append(str(obj))
        if done:
            modeladmin.message_user(request, f"{description}: {done} done.", messages.SUCCESS)
        for text, names in by_code.items():
            shown = ", ".join(names[:REFUSALS_SHOWN]) + (
                " …" if len(names) > REFUSALS_SHOWN else ""
            )
            modeladmin.message_user(
                request,
                f"{description} refused for {len(names)} ({shown}) — {text}",
                messages.ERROR,
            )

    run.__name__ = f"{name}_{noun}s"
    return admin.action(description=f"{description} selected {noun}s (rules layer)")(run)


def _task_action(action: str, description: str):
    return rules_action(
        action,
        description,
        "task",
        "job__account",
        lambda task, user, actor: act_on_task(task, action, user=user, actor=actor),
    )


def _job_action(name: str, description: str, operation):
    def act(job, user, actor):
        return audited(
            job.account,
            user=user,
            actor=actor,
            action=f"job-{name}",
            scope={"job": job.job_id},
            operation=lambda: operation(job),
        )[1]

    return rules_action(name, description, "job", "account", act)


def _pool_action(name: str, description: str, operation):
    def act(pool, user, actor):
        return audited(
            pool.account,
            user=user,
            actor=actor,
            action=f"pool-{name}",
            scope={"pool": pool.pool_id},
            operation=lambda: operation(pool),
        )[1]

    return rules_action(name, description, "pool", "account", act)


def batch_error_text(error: BatchError) -> str:
    return f"{error.code}: {dict(error.values).get('Reason') or error.message}"


class RulesAdmin(admin.ModelAdmin):
    """A model admin that writes only through the rules layer.

    `add_refusal` / `delete_refusal`: why the admin cannot add or delete such rows (the
    buttons are gone, and a direct URL shows the reason). `editable`: the only fields a
    change form offers, all others read-only; `save_through_operation` writes them. A
    refusal the operation raises at save time (the row changed meanwhile) is a message,
    and the form is shown again with nothing saved."""

    add_refusal = ""
    delete_refusal = ""
    editable: tuple[str, ...] = ()
    rules_note = ""
    groups: tuple[tuple[str | None, tuple[str, ...]], ...] = ()  # the change form's sections
    hidden: tuple[str, ...] = ()  # model fields the change form never shows (shown another way)

    def get_readonly_fields(self, request, obj=None):
        model_fields = [f.name for f in self.model._meta.fields if f.name not in self.editable]
        return [*model_fields, *self.readonly_fields]

    def get_fieldsets(self, request, obj=None):
        if not self.groups:
            return super().get_fieldsets(request, obj)
        named = {name for _, names in self.groups for name in names}
        # A field added to the model later still shows, under "Other".
        other = [
            f.name
            for f in self.model._meta.fields
            if f.name not in named and f.name != "id" and f.name not in self.hidden
        ]
        sections = [(title, {"fields": names}) for title, names in self.groups]
        return sections + ([("Other", {"fields": other})] if other else [])

    def has_add_permission(self, request, *args):
        return not self.add_refusal and super().has_add_permission(request, *args)

    def has_delete_permission(self, request, obj=None):
        return not self.delete_refusal and super().has_delete_permission(request, obj)

    def add_view(self, request, form_url="", extra_context=None):
        if self.add_refusal:
            self.message_user(request, self.add_refusal, messages.ERROR)
            return HttpResponseRedirect(reverse(f"admin:{self._url_name('changelist')}"))
        return super().add_view(request, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        if self.delete_refusal:
            self.message_user(request, self.delete_refusal, messages.ERROR)
            if self.get_object(request, object_id) is None:
                return HttpResponseRedirect(reverse(f"admin:{self._url_name('changelist')}"))
            return HttpResponseRedirect(
                reverse(f"admin:{self._url_name('change')}", args=[object_id])
            )
        return super().delete_view(request, object_id, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "rules_note": self.rules_note}
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if not change:
            raise AssertionError("the admin adds no rows of this model")  # add_view refuses first
        try:
            self.save_through_operation(request, obj, form)
        except BatchError as error:
            request._rules_refused = True
            self.message_user(request, f"Nothing saved — {batch_error_text(error)}", messages.ERROR)

    def save_through_operation(self, request, obj, form) -> None:
        """Write the form's changes through the model's operation (raise its BatchError)."""

    def log_change(self, request, obj, message):
        if not getattr(request, "_rules_refused", False):
            super().log_change(request, obj, message)

    def response_change(self, request, obj):
        if getattr(request, "_rules_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def _url_name(self, view: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"


class ViewOnlyAdmin(RulesAdmin):
    """Rows with no operation that changes them here: looked at, never written."""

    def has_change_permission(self, request, obj=None):
        return False


# --- accounts --------------------------------------------------------------------------------


def mask_key(key: str) -> str:
    """A key as the admin shows it: never the key, only a fingerprint to tell keys apart."""
    if not key:
        return "— (none)"
    return f"•••••••• (SHA-256 fingerprint {hashlib.sha256(key.encode()).hexdigest()[:12]})"


class MembershipInline(admin.TabularInline):
    model = AccountMembership
    extra = 1
    autocomplete_fields = ["user"]


class GroupGrantInline(admin.TabularInline):
    model = AccountGroupGrant
    extra = 1
    autocomplete_fields = ["group"]


def _regenerate(key_name: str):
    """An action that regenerates one key of the selected accounts: a confirmation page
    first, then a page that shows the new keys once (they are never shown again)."""

    def run(modeladmin, request, queryset):
        accounts = list(queryset.order_by("name"))
        context = {
            **modeladmin.admin_site.each_context(request),
            "opts": modeladmin.opts,
            "key_name": key_name,
            "accounts": accounts,
            "action": run.__name__,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "title": f"Regenerate the {key_name} key",
        }
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request, "admin/tasks/account/regenerate_key_confirm.html", context
            )
        done, refused = [], []
        for account in accounts:
            key, error = audited(
                account,
                user=request.user,
                actor=actor_name(request.user, via="admin"),
                action="regenerate-key",
                scope={"key": key_name},
                operation=lambda a=account: regenerate_account_key(a, key_name=key_name),
            )
            if error is None:
                done.append((account, key))
            else:
                refused.append((account, batch_error_text(error)))
        return TemplateResponse(
            request,
            "admin/tasks/account/regenerated_keys.html",
            {**context, "title": f"New {key_name} keys", "done": done, "refused": refused},
        )

    run.__name__ = f"regenerate_{key_name}_key"
    return admin.action(
        description=f"Regenerate the {key_name} key of selected accounts (rules layer)"
    )(run)


@admin.register(Account)
class AccountAdmin(RulesAdmin):
    list_display = ["name", "created"]
    search_fields = ["name"]
    inlines = [MembershipInline, GroupGrantInline]
    fields = ["name", "primary_key_masked", "secondary_key_masked", "created"]
    readonly_fields = ["primary_key_masked", "secondary_key_masked"]
    actions = [_regenerate("primary"), _regenerate("secondary")]
    add_refusal = (
        "Accounts come from the configuration (BATCHSITE_ACCOUNT_NAME and BATCHSITE_ACCOUNT_KEY, or "
        "BATCHSITE_ACCOUNTS), not from the admin."
    )
    delete_refusal = (
        "An account cannot be deleted here: that would remove its pools, jobs and tasks without "
        "stopping a node or a process. Remove it from the configuration instead."
    )
    rules_note = (
        "The keys are never shown: regenerate one (above) to get a new key, shown once. Access to the "
        "account is granted below."
    )

    @admin.display(description="Primary key")
    def primary_key_masked(self, obj):
        return mask_key(obj.primary_key)

    @admin.display(description="Secondary key")
    def secondary_key_masked(self, obj):
        return mask_key(obj.secondary_key)

    def save_model(self, request, obj, form, change):
        pass  # nothing of the account itself is editable; the inlines save themselves

    def log_change(self, request, obj, message):
        if message:  # a change of grants; an unchanged account logs nothing
            super().log_change(request, obj, message)


# --- pools and nodes -------------------------------------------------------------------------


class PoolAdminForm(forms.ModelForm):
    """A pool's targets, saved through Resize Pool, and its autoscale formula and interval,
    saved through Enable AutoScale (or Disable AutoScale when the formula is emptied); each
    first checked by its rule and, for a formula or an interval, as the API checks them."""

    class Meta:
        model = Pool
        fields = [
            "target_dedicated_nodes",
            "target_low_priority_nodes",
            "auto_scale_formula",
            "auto_scale_evaluation_interval",
        ]

    def clean(self):
        cleaned = super().clean()
        self.change = None
        changed = set(self.changed_data)
        if self.errors or not changed:
            return cleaned
        targets = changed & {"target_dedicated_nodes", "target_low_priority_nodes"}
        if targets and changed - targets:
            raise forms.ValidationError(
                "Change the targets or the autoscale settings, not both: they are two "
                "operations (Resize Pool, Enable AutoScale)."
            )
        if targets:
            self.change, rule = "resize", pool_ops.can_resize_pool
        elif not cleaned.get("auto_scale_formula"):
            self.change, rule = "disable-autoscale", pool_ops.can_disable_auto_scale
        else:
            self.change, rule = "enable-autoscale", pool_ops.can_enable_auto_scale
            try:
                pool_ops.validate_formula(cleaned["auto_scale_formula"])
                pool_specs.check_evaluation_interval(cleaned.get("auto_scale_evaluation_interval"))
            except BatchError as error:
                field = (
                    "auto_scale_evaluation_interval"
                    if dict(error.values).get("PropertyName") == "autoScaleEvaluationInterval"
                    else "auto_scale_formula"
                )
                self.add_error(field, batch_error_text(error))
        refusal = rule(self.instance)
        if refusal:
            raise forms.ValidationError(batch_error_text(refusal))
        return cleaned


@admin.register(Pool)
class PoolAdmin(RulesAdmin):
    form = PoolAdminForm
    editable = (
        "target_dedicated_nodes",
        "target_low_priority_nodes",
        "auto_scale_formula",
        "auto_scale_evaluation_interval",
    )
    list_display = [
        "pool_id",
        "account",
        "state",
        "allocation_state",
        "target_dedicated_nodes",
        "target_low_priority_nodes",
        "enable_auto_scale",
        "vm_size",
        "creation_time",
    ]
    list_filter = ["state", "allocation_state", "enable_auto_scale", "account"]
    search_fields = ["pool_id"]
    readonly_fields = ["specification"]
    hidden = ("spec",)  # shown as `specification`, its secrets withheld
    actions = [
        _pool_action("stop-resize", "Stop resizing", pool_ops.stop_resize_pool),
        _pool_action("disable-autoscale", "Disable autoscale on", pool_ops.disable_auto_scale),
        _pool_action("delete", "Delete", pool_ops.delete_pool),
    ]
    groups = (
        (
            None,
            ("pool_id", "account", "vm_size", "provider", "task_slots_per_node", "specification"),
        ),
        (
            "Targets: saved through Resize Pool",
            ("target_dedicated_nodes", "target_low_priority_nodes"),
        ),
        (
            "Autoscale: saved through Enable AutoScale (empty the formula to disable it)",
            ("auto_scale_formula", "auto_scale_evaluation_interval"),
        ),
        (
            "State",
            (
                "state",
                "state_transition_time",
                "allocation_state",
                "allocation_state_transition_time",
                "resize_timeout",
                "node_deallocation_option",
                "resize_errors",
                "enable_auto_scale",
                "auto_scale_run",
                "auto_scale_next",
                "creation_time",
                "last_modified",
                "etag",
            ),
        ),
        ("Auto pool", ("owner_job", "keep_alive")),
    )
    add_refusal = "Pools are added through the Batch API (Add Pool), not the admin."
    delete_refusal = (
        "Delete a pool with the “Delete selected pools (rules layer)” action of the pool list: it "
        "goes through Delete Pool, which stops its nodes."
    )
    rules_note = (
        "The targets are saved through Resize Pool and the formula through Enable (or Disable) "
        "AutoScale, with their rules; stop resize, disable autoscale and delete are actions on the pool "
        "list. The pool page of the dashboard does the same with more to see."
    )

    @admin.display(description="Specification")
    def specification(self, obj):
        return format_html(
            "<pre>{}</pre>", json.dumps(without_secrets(obj.spec), indent=2, ensure_ascii=False)
        )

    def save_through_operation(self, request, obj, form):
        if form.change is None:
            return
        data = form.cleaned_data
        if form.change == "resize":
            scope = {
                "targetDedicatedNodes": data["target_dedicated_nodes"],
                "targetLowPriorityNodes": data["target_low_priority_nodes"],
            }
            operation = lambda: pool_ops.resize_pool(  # noqa: E731
                obj,
                target_dedicated=data["target_dedicated_nodes"],
                target_low_priority=data["target_low_priority_nodes"],
            )
        elif form.change == "disable-autoscale":
            scope, operation = {}, lambda: pool_ops.disable_auto_scale(obj)  # noqa: E731
        else:
            scope = {"autoScaleFormula": data["auto_scale_formula"]}
            operation = lambda: pool_ops.enable_auto_scale(  # noqa: E731
                obj,
                formula=data["auto_scale_formula"],
                evaluation_interval=data["auto_scale_evaluation_interval"],
            )
        _, error = act_on_pool(
            obj,
            form.change,
            operation,
            user=request.user,
            actor=actor_name(request.user, via="admin"),
            scope=scope,
        )
        if error:
            raise error


def _node_action(action: str, description: str):
    return rules_action(
        action.replace("-", "_"),
        description,
        "node",
        "pool__account",
        lambda node, user, actor: act_on_node(node, action, user=user, actor=actor),
    )


@admin.register(ComputeNode)
class ComputeNodeAdmin(ViewOnlyAdmin):
    list_display = [
        "node_id",
        "pool",
        "state",
        "slots",
        "scheduling_enabled",
        "is_dedicated",
        "pending_action",
        "last_heartbeat",
        "total_tasks_run",
    ]
    list_filter = ["state", "scheduling_enabled", "is_dedicated", "pool"]
    search_fields = ["node_id", "hostname"]
    list_select_related = ["pool"]
    actions = [
        _node_action("reboot", "Reboot"),
        _node_action("reimage", "Reimage"),
        _node_action("disable-scheduling", "Disable scheduling on"),
        _node_action("enable-scheduling", "Enable scheduling on"),
        _node_action("remove", "Remove from their pools"),
    ]
    add_refusal = (
        "Nodes join a pool when their agent starts (manage.py runnode or the pool's node provider)."
    )
    delete_refusal = (
        "A node cannot be deleted here: it leaves its pool when its agent stops or its pool is "
        "resized or deleted, which requeues its tasks first. Use the “Remove from their pools "
        "selected nodes (rules layer)” action: it goes through Remove Nodes."
    )
    rules_note = (
        "Reboot, reimage, disable and enable scheduling and remove are actions on the node list; each "
        "goes through its operation with Batch's default option (requeue) and its rule."
    )


# --- jobs ------------------------------------------------------------------------------------

# Job model field -> its Update/Patch Job wire property (a path into the body).
_JOB_WIRE = {
    "priority": "priority",
    "max_parallel_tasks": "maxParallelTasks",
    "on_all_tasks_complete": "onAllTasksComplete",
    "max_task_retry_count": "constraints.maxTaskRetryCount",
    "max_wall_clock_time": "constraints.maxWallClockTime",
    "pool_id": "poolInfo.poolId",
}


class JobAdminForm(forms.ModelForm):
    """A job's updatable properties, checked as a Patch Job body and by the job's rule."""

    class Meta:
        model = Job
        fields = list(_JOB_WIRE)

    def clean(self):
        cleaned = super().clean()
        self.patch = None
        if self.errors or not self.changed_data:
            return cleaned
        refusal = job_ops.can_update_job(self.instance)
        if refusal:
            raise forms.ValidationError(batch_error_text(refusal))
        try:
            patch = validate_wire(JobUpdateParameterSerializer, self.wire(cleaned))
            check_job_values(patch)  # the value rules update_job applies, shown at their field
            self.patch = patch
        except BatchError as error:
            path = dict(error.values).get("PropertyName", "")
            field = next((name for name, wire in _JOB_WIRE.items() if wire == path), None)
            self.add_error(field, batch_error_text(error))
        return cleaned

    def wire(self, cleaned: dict) -> dict:
        """The changed properties as a Patch Job body (constraints travel together)."""
        body: dict = {}
        for name in self.changed_data:
            wire = _JOB_WIRE[name]
            if wire.startswith("constraints."):
                constraints = {"maxTaskRetryCount": cleaned["max_task_retry_count"]}
                if cleaned["max_wall_clock_time"] is not None:
                    constraints["maxWallClockTime"] = format_duration(
                        cleaned["max_wall_clock_time"]
                    )
                body["constraints"] = constraints
            elif wire == "poolInfo.poolId":
                body["poolInfo"] = {"poolId": cleaned["pool_id"]}
            else:
                body[wire] = cleaned[name]
        return body


@admin.register(Job)
class JobAdmin(RulesAdmin):
    form = JobAdminForm
    editable = tuple(_JOB_WIRE)
    list_display = [
        "job_id",
        "account",
        "state",
        "pool_id",
        "active_count",
        "running_count",
        "succeeded_count",
        "failed_count",
        "creation_time",
    ]
    list_filter = ["state", "account"]
    search_fields = ["job_id", "pool_id"]
    actions = [
        _job_action("terminate", "Terminate", job_ops.terminate_job),
        _job_action("delete", "Delete", job_ops.delete_job),
        "recount",
    ]
    groups = (
        (
            None,
            (
                "job_id",
                "account",
                "display_name",
                "uses_task_dependencies",
                "on_task_failure",
                "spec",
            ),
        ),
        ("Updatable: saved through Patch Job", editable),
        (
            "State",
            (
                "state",
                "previous_state",
                "state_transition_time",
                "previous_state_transition_time",
                "creation_time",
                "last_modified",
                "etag",
                "start_time",
                "end_time",
                "terminate_reason",
            ),
        ),
        (
            "Task counters",
            (
                "active_count",
                "running_count",
                "completed_count",
                "succeeded_count",
                "failed_count",
                "active_slots",
                "running_slots",
                "completed_slots",
                "succeeded_slots",
                "failed_slots",
            ),
        ),
    )
    add_refusal = "Jobs are added through the Batch API (Add Job), not the admin."
    delete_refusal = (
        "Delete a job with the “Delete selected jobs (rules layer)” action of the job list: it goes "
        "through Delete Job, which stops its tasks and removes their files."
    )
    rules_note = (
        "The editable properties are saved through Patch Job, with its rules; terminate and delete are "
        "actions on the job list."
    )

    @admin.action(description="Recount task counters of selected jobs")
    def recount(self, request, queryset):
        for job in queryset:
            recount_job(job)
        self.message_user(request, f"Recounted {queryset.count()} job(s).", messages.SUCCESS)

    def save_through_operation(self, request, obj, form):
        if form.patch is None:
            return
        _, error = audited(
            obj.account,
            user=request.user,
            actor=actor_name(request.user, via="admin"),
            action="job-update",
            scope={"job": obj.job_id},
            operation=lambda: job_ops.update_job(obj, spec=form.patch, replace=False),
        )
        if error:
            raise error


# --- tasks -----------------------------------------------------------------------------------


class TaskAdminForm(forms.ModelForm):
    """A task's constraints (the only updatable property), checked as the dashboard's
    constraints form checks them (the Update Task wire shape) and by the task's rule."""

    class Meta:
        model = Task
        fields = ["max_wall_clock_time", "retention_time", "max_task_retry_count"]

    def clean(self):
        cleaned = super().clean()
        self.constraints = None
        if self.errors or not self.changed_data:
            return cleaned
        refusal = can_update_task(self.instance)
        if refusal:
            raise forms.ValidationError(batch_error_text(refusal))
        checked = ConstraintsForm(data=self.data)
        self.constraints = checked.constraints() if checked.is_valid() else None
        for field, errors in checked.errors.items():
            for error in errors:
                self.add_error(None if field == "__all__" else field, error)
        return cleaned


class SubTaskInline(admin.TabularInline):
    model = SubTask
    extra = 0
    can_delete = False
    fields = ["subtask_id", "state", "node_name", "start_time", "end_time", "exit_code", "result"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Task)
class TaskAdmin(RulesAdmin):
    form = TaskAdminForm
    editable = ("max_wall_clock_time", "retention_time", "max_task_retry_count")
    list_display = [
        "task_id",
        "job",
        "state",
        "result",
        "exit_code",
        "node_name",
        "retry_count",
        "creation_time",
    ]
    list_filter = ["state", "result", "job__account"]
    search_fields = ["=id_key", "task_id", "job__job_id", "node_name"]
    list_select_related = ["job"]
    show_full_result_count = False  # a million tasks: no second COUNT per page
    inlines = [SubTaskInline]
    actions = [
        _task_action("terminate", "Terminate"),
        _task_action("reactivate", "Reactivate"),
        _task_action("delete", "Delete"),
    ]
    groups = (
        (
            None,
            (
                "task_id",
                "job",
                "display_name",
                "command_line",
                "required_slots",
                "number_of_instances",
                "spec",
            ),
        ),
        ("Constraints: saved through Update Task", editable),
        (
            "State",
            (
                "state",
                "previous_state",
                "state_transition_time",
                "previous_state_transition_time",
                "creation_time",
                "last_modified",
                "etag",
            ),
        ),
        (
            "Execution",
            (
                "start_time",
                "end_time",
                "exit_code",
                "result",
                "failure_info",
                "retry_count",
                "last_retry_time",
                "requeue_count",
                "last_requeue_time",
            ),
        ),
        ("Node", ("node", "node_name", "pool_id", "affinity_id", "task_root_directory")),
        (
            "Statistics",
            (
                "user_cpu_time",
                "kernel_cpu_time",
                "wall_clock_time",
                "wait_time",
                "read_iops",
                "write_iops",
                "read_io_gib",
                "write_io_gib",
            ),
        ),
    )
    add_refusal = "Tasks are added through the Batch API or the dashboard, not the admin."
    delete_refusal = (
        "Delete a task with the “Delete selected tasks (rules layer)” action of the task list: it "
        "goes through Delete Task, which stops its process and removes its files."
    )
    rules_note = (
        "Only the constraints can change: they are saved through Update Task (a completed task's are "
        "fixed). Terminate, reactivate and delete are actions on the task list."
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("job__account")

    def save_through_operation(self, request, obj, form):
        if form.constraints is None:
            return
        _, error = audited(
            obj.job.account,
            user=request.user,
            actor=actor_name(request.user, via="admin"),
            action="update",
            scope={"job": obj.job.job_id, "tasks": [obj.task_id]},
            operation=lambda: update_task(obj, constraints=form.constraints),
        )
        if error:
            raise error


@admin.register(SubTask)
class SubTaskAdmin(ViewOnlyAdmin):
    list_display = [
        "task",
        "subtask_id",
        "state",
        "node_name",
        "exit_code",
        "result",
        "start_time",
        "end_time",
    ]
    list_filter = ["state", "result"]
    search_fields = ["task__task_id", "node_name"]
    list_select_related = ["task"]
    add_refusal = "Subtasks are made when a multi-instance task is scheduled, not in the admin."
    delete_refusal = (
        "A subtask cannot be deleted here: it goes with its task (Delete Task) or when the task is "
        "reactivated."
    )


# --- the trail -------------------------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    list_display = ["created", "actor", "account", "action", "scope", "outcome"]
    list_filter = ["action", "account"]
    search_fields = ["actor", "action"]
    date_hierarchy = "created"


@admin.register(BulkOperation)
class BulkOperationAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "action",
        "job",
        "state",
        "done",
        "total",
        "succeeded",
        "refused",
        "created",
        "finished",
    ]
    list_filter = ["state", "action"]
