"""The Django admin, for data fixes. State fields are read-only: a state changes only
through the rules layer, which the admin's actions call (and whose refusals they report as
messages). Rows that the rules layer creates or removes (tasks, jobs) are not added or
deleted by the admin's generic forms, since those would skip the counters and the nodes."""

from __future__ import annotations

from django.contrib import admin, messages

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
from tasks.operations.actions import act_on_task
from tasks.operations.audit import actor_name, audited
from tasks.operations.counts import recount_job

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
            shown = ", ".join(names[:REFUSALS_SHOWN]) + (" …" if len(names) > REFUSALS_SHOWN else "")
            modeladmin.message_user(request, f"{description} refused for {len(names)} ({shown}) — {text}",
                                    messages.ERROR)

    run.__name__ = f"{name}_{noun}s"
    return admin.action(description=f"{description} selected {noun}s (rules layer)")(run)


def _task_action(action: str, description: str):
    return rules_action(action, description, "task", "job__account",
                        lambda task, user, actor: act_on_task(task, action, user=user, actor=actor))


def _job_action(name: str, description: str, operation):
    def act(job, user, actor):
        return audited(job.account, user=user, actor=actor, action=f"job-{name}", scope={"job": job.job_id},
                       operation=lambda: operation(job))[1]

    return rules_action(name, description, "job", "account", act)


class MembershipInline(admin.TabularInline):
    model = AccountMembership
    extra = 1
    autocomplete_fields = ["user"]


class GroupGrantInline(admin.TabularInline):
    model = AccountGroupGrant
    extra = 1
    autocomplete_fields = ["group"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "created"]
    search_fields = ["name"]
    inlines = [MembershipInline, GroupGrantInline]


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    list_display = ["pool_id", "account", "state", "vm_size", "task_slots_per_node", "creation_time"]
    list_filter = ["state", "account"]
    search_fields = ["pool_id"]
    readonly_fields = ["id_key", "state", "etag", "creation_time", "last_modified", "state_transition_time"]


@admin.register(ComputeNode)
class ComputeNodeAdmin(admin.ModelAdmin):
    list_display = ["node_id", "pool", "state", "slots", "scheduling_enabled", "last_heartbeat", "total_tasks_run"]
    list_filter = ["state", "scheduling_enabled", "pool"]
    search_fields = ["node_id", "hostname"]
    readonly_fields = ["state", "state_transition_time", "registered", "last_heartbeat", "agent_pid",
                       "total_tasks_run", "total_tasks_succeeded"]


JOB_STATE_FIELDS = ["id_key", "state", "previous_state", "state_transition_time", "previous_state_transition_time",
                    "creation_time", "last_modified", "etag", "start_time", "end_time", "terminate_reason",
                    "active_count", "running_count", "completed_count", "succeeded_count", "failed_count",
                    "active_slots", "running_slots", "completed_slots", "succeeded_slots", "failed_slots"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["job_id", "account", "state", "pool_id", "active_count", "running_count", "succeeded_count",
                    "failed_count", "creation_time"]
    list_filter = ["state", "account"]
    search_fields = ["job_id", "pool_id"]
    readonly_fields = JOB_STATE_FIELDS
    actions = [
        _job_action("terminate", "Terminate", job_ops.terminate_job),
        _job_action("delete", "Delete", job_ops.delete_job),
        "recount",
    ]

    @admin.action(description="Recount task counters of selected jobs")
    def recount(self, request, queryset):
        for job in queryset:
            recount_job(job)
        self.message_user(request, f"Recounted {queryset.count()} job(s).", messages.SUCCESS)

    def has_add_permission(self, request):
        return False  # jobs are added through the API (the rules layer)

    def has_delete_permission(self, request, obj=None):
        return False  # the "Delete" action goes through delete_job instead


TASK_STATE_FIELDS = ["id_key", "state", "previous_state", "state_transition_time", "previous_state_transition_time",
                     "creation_time", "last_modified", "etag", "start_time", "end_time", "exit_code", "result",
                     "failure_info", "retry_count", "last_retry_time", "requeue_count", "last_requeue_time", "node",
                     "node_name", "pool_id", "affinity_id", "task_root_directory", "user_cpu_time",
                     "kernel_cpu_time", "wall_clock_time", "wait_time", "read_iops", "write_iops", "read_io_gib",
                     "write_io_gib", "files_cleaned", "lifetime_expired", "number_of_instances"]


class SubTaskInline(admin.TabularInline):
    model = SubTask
    extra = 0
    can_delete = False
    fields = ["subtask_id", "state", "node_name", "start_time", "end_time", "exit_code", "result"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["task_id", "job", "state", "result", "exit_code", "node_name", "retry_count", "creation_time"]
    list_filter = ["state", "result", "job__account"]
    search_fields = ["=id_key", "task_id", "job__job_id", "node_name"]
    list_select_related = ["job"]
    readonly_fields = TASK_STATE_FIELDS
    raw_id_fields = ["job"]
    show_full_result_count = False  # a million tasks: no second COUNT per page
    inlines = [SubTaskInline]
    actions = [
        _task_action("terminate", "Terminate"),
        _task_action("reactivate", "Reactivate"),
        _task_action("delete", "Delete"),
    ]

    def has_add_permission(self, request):
        return False  # tasks are added through the API or the dashboard (the rules layer)

    def has_delete_permission(self, request, obj=None):
        return False  # the "Delete" action goes through delete_task instead


@admin.register(SubTask)
class SubTaskAdmin(admin.ModelAdmin):
    list_display = ["task", "subtask_id", "state", "node_name", "exit_code", "result", "start_time", "end_time"]
    list_filter = ["state", "result"]
    search_fields = ["task__task_id", "node_name"]
    list_select_related = ["task"]
    readonly_fields = ["task", "subtask_id", "state", "previous_state", "state_transition_time",
                       "previous_state_transition_time", "node", "node_name", "pool_id", "task_root_directory",
                       "start_time", "end_time", "exit_code", "result", "failure_info"]

    def has_add_permission(self, request):
        return False


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
    list_display = ["pk", "action", "job", "state", "done", "total", "succeeded", "refused", "created", "finished"]
    list_filter = ["state", "action"]

