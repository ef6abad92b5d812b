"""The Batch data model: Account, Pool, ComputeNode, Job, Task, SubTask.

Only the rules layer (tasks.operations) writes state. Properties that batchsite stores but
never interprets (resource files, user identity, container settings, ...) live in the
`spec` JSON of their resource, in Batch wire form, so they round-trip exactly.

Each enum (TextChoices) is typed once, at module level just above the model that names it
(`Task.State`, `Pool.AllocationState`): a model's Meta cannot see the model's body, and its
constraints build their lists of valid values from the enum, as the API's serializers and
$filter tables do.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


def new_etag() -> str:
    """An opaque ETag in the service's style (0x + 16 hex digits); new on every write."""
    return "0x8D" + secrets.token_hex(7).upper()


# --- state moves ---------------------------------------------------------------------------
# Every Batch resource with a state moves it through one method of its model (`move_to`),
# which writes the move's bookkeeping the way Batch reports it: the state, the state it left
# and when it entered that one (previousState, previousStateTransitionTime), the time of the
# move (stateTransitionTime) and, for resources with an ETag, a new ETag and lastModified.
# It returns the names of the fields it changed, for save(update_fields=...) or bulk_update;
# `MOVE_FIELDS` names the same columns for set-based updates, and `move_values` gives them
# as the keyword arguments of QuerySet.update() (previous state from the row itself). Only
# the rules layer (tasks.operations) calls them: tests/test_state_writes.py checks it.


class _Touched:
    """The ETag and lastModified of a resource that has them: both change on every write."""

    TOUCH_FIELDS = ("etag", "last_modified")

    def touch(self, t: datetime, *, etag: str | None = None) -> list[str]:
        """A write that changes the resource: a new ETag (`etag`, when one is shared by a
        set of rows written together), lastModified `t`."""
        self.etag = etag or new_etag()
        self.last_modified = t
        return list(self.TOUCH_FIELDS)


class _MovesWithHistory(_Touched):
    """A state with its previous state (Job, JobSchedule, Task)."""

    # Only these: a job's task counters move by F() updates in the same transaction as its
    # state often does, and saving the whole row would undo them.
    MOVE_FIELDS = (
        "state",
        "previous_state",
        "state_transition_time",
        "previous_state_transition_time",
        "etag",
        "last_modified",
    )

    def move_to(
        self, state: str, t: datetime, *, etag: str | None = None, previous: str | None = None
    ) -> list[str]:
        """Move to `state` at `t`: the current state and its transition time become the
        previous ones, and the resource is touched (new ETag, lastModified `t`). `previous`
        names the state the history records as left instead of the current one, when the
        current one lasted no time (a job disabled at once never shows `disabling`)."""
        self.previous_state = previous or self.state
        self.previous_state_transition_time = self.state_transition_time
        self.state = state
        self.state_transition_time = t
        self.touch(t, etag=etag)
        return list(self.MOVE_FIELDS)

    @classmethod
    def move_values(cls, state: str, t: datetime, *, etag: str | None = None) -> dict:
        """move_to as QuerySet.update() keywords: every row moved takes one ETag."""
        return {
            "state": state,
            "previous_state": F("state"),
            "state_transition_time": t,
            "previous_state_transition_time": F("state_transition_time"),
            "etag": etag or new_etag(),
            "last_modified": t,
        }


class PkLastIndex(models.Index):
    """An index on `fields` whose entries end in the pk on PostgreSQL as well, as every
    SQLite index's end in the rowid: ORDER BY the fields then the pk is then a walk of it
    on both. PostgreSQL's index holds only its columns, so many rows sharing the fields'
    values (a bulk add's one creation time) were all read and sorted for one page. On
    SQLite the columns as given: there an explicit id column is the same index under
    another shape, and that shape won the planner's choice over a partial index
    (tests/web/test_blocked_filter_plan.py)."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        assert not (self.expressions or self.condition or self.include), "fields only"
        pk = model._meta.pk.name
        with_pk = models.Index(fields=[*self.fields, pk], name=self.name, opclasses=self.opclasses)
        return with_pk.create_sql(model, schema_editor, using=using, **kwargs)


class Account(models.Model):
    """A Batch account: its name signs every request with one of its two keys."""

    name = models.CharField(max_length=64, unique=True)
    primary_key = models.CharField(max_length=200)
    secondary_key = models.CharField(max_length=200, blank=True)
    # A digest of the keys the deployment configured when they were last applied: a start
    # with unchanged configuration keeps keys regenerated since (tasks.operations.accounts).
    configured_keys = models.CharField(max_length=64, blank=True, editable=False)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="AccountMembership", related_name="batch_accounts"
    )
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class MembershipRole(models.TextChoices):
    VIEWER = "viewer"
    OPERATOR = "operator"


class AccountMembership(models.Model):
    """Grants a dashboard user one account, as a viewer (look) or an operator (act)."""

    Role = MembershipRole

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="membership_unique"),
            models.CheckConstraint(
                condition=Q(role__in=MembershipRole.values), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.role} of {self.account}"


class AccountGroupGrant(models.Model):
    """Grants every member of a Django group one account, as viewers or operators. A user's
    role in an account is the strongest of their own membership and their groups' grants."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="group_grants")
    group = models.ForeignKey(
        "auth.Group", on_delete=models.CASCADE, related_name="batch_account_grants"
    )
    role = models.CharField(
        max_length=16, choices=AccountMembership.Role.choices, default=AccountMembership.Role.VIEWER
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "group"], name="group_grant_unique"),
            models.CheckConstraint(
                condition=Q(role__in=MembershipRole.values), name="group_grant_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"group {self.group} {self.role} of {self.account}"


class PoolState(models.TextChoices):
    ACTIVE = "active"
    DELETING = "deleting"


class PoolAllocationState(models.TextChoices):
    STEADY = "steady"
    RESIZING = "resizing"
    STOPPING = "stopping"


class Pool(_Touched, models.Model):
    """A Batch pool: target node counts (or an autoscale formula), a node size, task slots
    per node, a start task and a scheduling policy. Its nodes come from the node provider
    its vmSize maps to (tasks.providers); the reconciler drives the current nodes toward
    the targets. Properties stored only to round-trip stay in `spec`, in wire form."""

    State = PoolState
    AllocationState = PoolAllocationState

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="pools")
    pool_id = models.CharField(max_length=64)
    id_key = models.CharField(max_length=64, editable=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    vm_size = models.CharField(max_length=64, default="standard_d2s_v3")
    task_slots_per_node = models.PositiveIntegerField(default=1)
    spec = models.JSONField(default=dict, blank=True)
    etag = models.CharField(max_length=32)
    creation_time = models.DateTimeField()
    last_modified = models.DateTimeField()
    state_transition_time = models.DateTimeField()

    # Which node provider starts this pool's nodes ("local", "slurm"), fixed at creation
    # from the deployment's vmSize table (tasks.providers).
    provider = models.CharField(max_length=32, default="local")

    # Resize: the targets, the allocation state, and the current resize's rules.
    target_dedicated_nodes = models.PositiveIntegerField(default=0)
    target_low_priority_nodes = models.PositiveIntegerField(default=0)
    allocation_state = models.CharField(
        max_length=16, choices=AllocationState.choices, default=AllocationState.STEADY
    )
    allocation_state_transition_time = models.DateTimeField(null=True, blank=True)
    resize_timeout = models.DurationField(
        null=True, blank=True
    )  # null: Batch's default, 15 minutes
    # How nodes leave when the current resize shrinks the pool: requeue, terminate,
    # taskcompletion or retaineddata.
    node_deallocation_option = models.CharField(max_length=16, blank=True)
    resize_errors = models.JSONField(default=list, blank=True)  # [{code, message, values}]

    # Autoscale.
    enable_auto_scale = models.BooleanField(default=False)
    auto_scale_formula = models.TextField(blank=True)
    auto_scale_evaluation_interval = models.DurationField(null=True, blank=True)  # null: 15 minutes
    auto_scale_run = models.JSONField(null=True, blank=True)  # {timestamp, results, error}
    auto_scale_next = models.DateTimeField(null=True, blank=True)  # next periodic evaluation due

    # An auto pool (a job's poolInfo.autoPoolSpecification): the job it was made for, and
    # whether it outlives that job (keepAlive).
    owner_job = models.ForeignKey(
        "Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="auto_pools"
    )
    keep_alive = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "id_key"], name="pool_id_unique_ci"),
            models.CheckConstraint(
                condition=Q(id_key=Lower("pool_id")), name="pool_id_key_is_lower"
            ),
            models.CheckConstraint(
                condition=Q(state__in=PoolState.values), name="pool_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(allocation_state__in=PoolAllocationState.values),
                name="pool_allocation_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.pool_id

    # A pool keeps no previous state: Batch reports none.
    MOVE_FIELDS = ("state", "state_transition_time", "etag", "last_modified")
    ALLOCATION_MOVE_FIELDS = ("allocation_state", "allocation_state_transition_time")

    def move_to(self, state: str, t: datetime, *, etag: str | None = None) -> list[str]:
        """Move to `state` at `t` (stateTransitionTime), with a new ETag and lastModified `t`."""
        self.state = state
        self.state_transition_time = t
        self.touch(t, etag=etag)
        return list(self.MOVE_FIELDS)

    @classmethod
    def move_values(cls, state: str, t: datetime, *, etag: str | None = None) -> dict:
        """move_to as QuerySet.update() keywords."""
        return {
            "state": state,
            "state_transition_time": t,
            "etag": etag or new_etag(),
            "last_modified": t,
        }

    def move_allocation_to(self, allocation_state: str, t: datetime) -> list[str]:
        """Move the allocation state (steady, resizing, stopping) at `t`
        (allocationStateTransitionTime). The ETag is the caller's: a resize the user asks
        for touches the pool, the service settling one does not."""
        self.allocation_state = allocation_state
        self.allocation_state_transition_time = t
        return list(self.ALLOCATION_MOVE_FIELDS)

    @classmethod
    def allocation_move_values(cls, allocation_state: str, t: datetime) -> dict:
        """move_allocation_to as QuerySet.update() keywords."""
        return {"allocation_state": allocation_state, "allocation_state_transition_time": t}


class PoolSample(models.Model):
    """One sample of a pool's metrics ($ActiveTasks, $CPUPercent, ...), taken periodically,
    which autoscale formulas read through GetSample and friends."""

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="samples", db_index=False)
    time = models.DateTimeField()
    values = models.JSONField(default=dict)  # {"ActiveTasks": 3, "CPUPercent": 12.5, ...}

    class Meta:
        indexes = [models.Index(fields=["pool", "time"], name="pool_sample_time")]


class NodeState(models.TextChoices):
    IDLE = "idle"
    REBOOTING = "rebooting"
    REIMAGING = "reimaging"
    RUNNING = "running"
    UNUSABLE = "unusable"
    CREATING = "creating"
    STARTING = "starting"
    WAITINGFORSTARTTASK = "waitingforstarttask"
    STARTTASKFAILED = "starttaskfailed"
    UNKNOWN = "unknown"
    LEAVINGPOOL = "leavingpool"
    OFFLINE = "offline"
    PREEMPTED = "preempted"


class NodeAction(models.TextChoices):
    """What the node's agent has been asked to do next (by the API, the dashboard or
    the reconciler), with `action_option` saying what happens to running tasks."""

    NONE = ""
    REBOOT = "reboot"
    REIMAGE = "reimage"
    REMOVE = "remove"  # leave the pool (resize down, Remove Nodes, pool deletion)


class NodeDeallocationOption(models.TextChoices):
    """What happens to a node's running tasks when it is rebooted, reimaged or removed
    (nodeRebootOption, nodeReimageOption, nodeDeallocationOption: Batch's
    ComputeNodeDeallocationOption; `action_option`): requeue (Batch's default), terminate,
    or let them finish (taskcompletion; retaineddata: and their files' retention too).
    Disable Scheduling takes the first three (DISABLE_SCHEDULING_OPTIONS)."""

    REQUEUE = "requeue"
    TERMINATE = "terminate"
    TASKCOMPLETION = "taskcompletion"
    RETAINEDDATA = "retaineddata"


# nodeDisableSchedulingOption (Batch's DisableComputeNodeSchedulingOption).
DISABLE_SCHEDULING_OPTIONS = (
    NodeDeallocationOption.REQUEUE,
    NodeDeallocationOption.TERMINATE,
    NodeDeallocationOption.TASKCOMPLETION,
)


class ComputeNode(models.Model):
    """A compute node: one `runnode` agent with a number of task slots in one pool,
    started by the pool's node provider (or by hand)."""

    State = NodeState
    Action = NodeAction

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="nodes")
    node_id = models.CharField(max_length=128)
    state = models.CharField(max_length=24, choices=State.choices, default=State.STARTING)
    scheduling_enabled = models.BooleanField(default=True)
    is_dedicated = models.BooleanField(default=True)
    slots = models.PositiveIntegerField(default=1)
    hostname = models.CharField(max_length=255, blank=True)
    ip_address = models.CharField(max_length=64, blank=True)
    root_dir = models.CharField(max_length=1024, blank=True)
    agent_pid = models.IntegerField(null=True, blank=True)
    # The provider's own handle of the node ("local:<pid>", a Slurm job id); blank for an
    # agent started by hand.
    provider_handle = models.CharField(max_length=128, blank=True)
    allocation_time = models.DateTimeField(
        null=True, blank=True
    )  # when the provider was asked for it
    registered = models.DateTimeField()  # lastBootTime: the agent's latest (re)start
    last_heartbeat = models.DateTimeField()
    state_transition_time = models.DateTimeField()
    total_tasks_run = models.PositiveIntegerField(default=0)
    total_tasks_succeeded = models.PositiveIntegerField(default=0)
    pending_action = models.CharField(max_length=16, choices=Action.choices, blank=True, default="")
    action_option = models.CharField(
        max_length=16, blank=True
    )  # requeue/terminate/taskcompletion/retaineddata
    # startTaskInfo of the pool's start task on this node (wire form), and node errors.
    start_task_info = models.JSONField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True)
    # The latest samples the agent reported (for $CPUPercent, $MemoryBytes).
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_bytes = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "node_id"], name="node_id_unique"),
            models.CheckConstraint(
                condition=Q(state__in=NodeState.values), name="node_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(pending_action__in=NodeAction.values),
                name="node_pending_action_valid",
            ),
        ]
        indexes = [
            # Lost-node detection: nodes whose heartbeat stopped.
            models.Index(fields=["state", "last_heartbeat"], name="node_state_heartbeat"),
        ]

    def __str__(self) -> str:
        return self.node_id

    # A node keeps no previous state and has no ETag: Batch reports neither.
    MOVE_FIELDS = ("state", "state_transition_time")

    def move_to(self, state: str, t: datetime) -> list[str]:
        """Move to `state` at `t` (stateTransitionTime)."""
        self.state = state
        self.state_transition_time = t
        return list(self.MOVE_FIELDS)

    @classmethod
    def move_values(cls, state: str, t: datetime) -> dict:
        """move_to as QuerySet.update() keywords."""
        return {"state": state, "state_transition_time": t}


class JobState(models.TextChoices):
    ACTIVE = "active"
    DISABLING = "disabling"
    DISABLED = "disabled"
    ENABLING = "enabling"
    TERMINATING = "terminating"
    COMPLETED = "completed"
    DELETING = "deleting"


class JobOnAllTasksComplete(models.TextChoices):
    NOACTION = "noaction"
    TERMINATEJOB = "terminatejob"


class JobOnTaskFailure(models.TextChoices):
    NOACTION = "noaction"
    PERFORMEXITOPTIONSJOBACTION = "performexitoptionsjobaction"


class DisableJobOption(models.TextChoices):
    """Disable Job's disableTasks: what happens to the job's running tasks (Batch's
    DisableJobOption)."""

    REQUEUE = "requeue"
    TERMINATE = "terminate"
    WAIT = "wait"


class Job(_MovesWithHistory, models.Model):
    State = JobState
    OnAllTasksComplete = JobOnAllTasksComplete
    OnTaskFailure = JobOnTaskFailure

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="jobs")
    # A job a schedule makes is named `<scheduleId>:job-<n>`: up to 64 + 15 characters.
    job_id = models.CharField(max_length=80)
    id_key = models.CharField(max_length=80, editable=False)
    display_name = models.CharField(max_length=1024, blank=True)
    pool_id = models.CharField(max_length=64, db_index=True)
    priority = models.IntegerField(default=0)
    max_parallel_tasks = models.IntegerField(default=-1)
    uses_task_dependencies = models.BooleanField(default=False)
    on_all_tasks_complete = models.CharField(
        max_length=16, choices=OnAllTasksComplete.choices, default=OnAllTasksComplete.NOACTION
    )
    on_task_failure = models.CharField(
        max_length=32, choices=OnTaskFailure.choices, default=OnTaskFailure.NOACTION
    )
    max_task_retry_count = models.IntegerField(default=0)
    max_wall_clock_time = models.DurationField(null=True, blank=True)  # null: unlimited
    spec = models.JSONField(default=dict, blank=True)

    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    previous_state = models.CharField(max_length=16, choices=State.choices, blank=True)
    state_transition_time = models.DateTimeField()
    previous_state_transition_time = models.DateTimeField(null=True, blank=True)
    creation_time = models.DateTimeField()
    last_modified = models.DateTimeField()
    etag = models.CharField(max_length=32)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField(null=True, blank=True)
    terminate_reason = models.CharField(max_length=64, blank=True)
    job_schedule = models.ForeignKey(
        "JobSchedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )

    # Maintained counters (tasks.operations.counts): the task counts stay O(1) at a
    # million tasks. "running" includes preparing, as Batch counts it.
    active_count = models.BigIntegerField(default=0)
    running_count = models.BigIntegerField(default=0)
    completed_count = models.BigIntegerField(default=0)
    succeeded_count = models.BigIntegerField(default=0)
    failed_count = models.BigIntegerField(default=0)
    active_slots = models.BigIntegerField(default=0)
    running_slots = models.BigIntegerField(default=0)
    completed_slots = models.BigIntegerField(default=0)
    succeeded_slots = models.BigIntegerField(default=0)
    failed_slots = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "id_key"], name="job_id_unique_ci"),
            models.CheckConstraint(condition=Q(id_key=Lower("job_id")), name="job_id_key_is_lower"),
            models.CheckConstraint(
                condition=Q(state__in=JobState.values),
                name="job_state_valid",
            ),
        ]
        indexes = [models.Index(fields=["account", "state"], name="job_account_state")]

    def __str__(self) -> str:
        return self.job_id

    @property
    def total_count(self) -> int:
        return self.active_count + self.running_count + self.completed_count

    # --- what the dashboard shows of a job, from its counters (no query) ---

    BUSY, OPEN, FINAL = "busy", "open", "final"

    @property
    def liveness(self) -> str:
        """How the job's page can change without anyone acting: BUSY while tasks run or can
        start; OPEN while it can still receive tasks (can_add_task refuses only completed,
        terminating and deleting jobs) or is on its way to completed or gone (terminating,
        deleting); FINAL once it is completed with nothing running."""
        if self.running_count or (
            self.active_count and self.state not in (self.State.COMPLETED, self.State.DISABLED)
        ):
            return self.BUSY
        return self.OPEN if self.state != self.State.COMPLETED else self.FINAL

    @property
    def is_live(self) -> bool:
        return self.liveness != self.FINAL

    @property
    def progress(self) -> list[dict]:
        """The segments of the job's progress bar (percent of all tasks)."""
        total = self.total_count or 1
        other_completed = self.completed_count - self.succeeded_count - self.failed_count
        parts = [
            ("succeeded", self.succeeded_count),
            ("failed", self.failed_count),
            ("completed", other_completed),
            ("running", self.running_count),
            ("active", self.active_count),
        ]
        return [
            {"name": n, "count": c, "pct": round(100 * c / total, 2)} for n, c in parts if c > 0
        ]


class JobScheduleState(models.TextChoices):
    ACTIVE = "active"
    DISABLED = "disabled"
    TERMINATING = "terminating"
    COMPLETED = "completed"
    DELETING = "deleting"


class JobSchedule(_MovesWithHistory, models.Model):
    """A Batch job schedule: it makes a job from its jobSpecification at each run time of its
    schedule (tasks.operations.job_schedules), at most one of them not completed at a time."""

    State = JobScheduleState

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="job_schedules")
    schedule_id = models.CharField(max_length=64)
    id_key = models.CharField(max_length=64, editable=False)
    display_name = models.CharField(max_length=1024, blank=True)
    schedule = models.JSONField(
        default=dict, blank=True
    )  # wire form: doNotRunUntil, ..., recurrenceInterval
    job_specification = models.JSONField(default=dict)  # wire form (durations as ISO 8601 text)
    metadata = models.JSONField(null=True, blank=True)

    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    previous_state = models.CharField(max_length=16, choices=State.choices, blank=True)
    state_transition_time = models.DateTimeField()
    previous_state_transition_time = models.DateTimeField(null=True, blank=True)
    creation_time = models.DateTimeField()
    last_modified = models.DateTimeField()
    etag = models.CharField(max_length=32)
    # The run time due next (executionInfo.nextRunTime); null: no more runs.
    next_run_time = models.DateTimeField(null=True, blank=True, db_index=True)
    end_time = models.DateTimeField(null=True, blank=True)
    job_count = models.PositiveIntegerField(default=0)  # the <n> of the newest `<id>:job-<n>`
    recent_job_id = models.CharField(max_length=80, blank=True)
    # The auto pool of poolLifetimeOption jobschedule: made with the first job, shared by all.
    auto_pool_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "id_key"], name="job_schedule_id_unique_ci"),
            models.CheckConstraint(
                condition=Q(id_key=Lower("schedule_id")), name="job_schedule_id_key_is_lower"
            ),
            models.CheckConstraint(
                condition=Q(state__in=JobScheduleState.values),
                name="job_schedule_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.schedule_id


class TaskState(models.TextChoices):
    ACTIVE = "active"
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"


class TaskResult(models.TextChoices):
    SUCCESS = "success"
    FAILURE = "failure"


class ExitJobAction(models.TextChoices):
    """An exit option's jobAction: what the job does when the task completes with this
    exit (Batch's JobAction; it applies when the job's onTaskFailure is
    performexitoptionsjobaction)."""

    NONE = "none"
    DISABLE = "disable"
    TERMINATE = "terminate"


class DependencyAction(models.TextChoices):
    """An exit option's dependencyAction: whether the tasks that depend on this one may run
    (Batch's DependencyAction)."""

    SATISFY = "satisfy"
    BLOCK = "block"


class Task(_MovesWithHistory, models.Model):
    State = TaskState
    Result = TaskResult
    # The states the counters call running, and a lost node or Disable Job requeues.
    RUNNING_STATES = (TaskState.PREPARING, TaskState.RUNNING)

    # No index of its own: the unique (job, id_key) and the indexes below lead with job,
    # and every index costs each state change of every task a write.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="tasks", db_index=False)
    task_id = models.CharField(max_length=64)
    # lower(task_id): the key of the case-insensitive unique constraint, of lookups and of
    # the list order, so all three use one plain index on every database.
    id_key = models.CharField(max_length=64, editable=False)
    display_name = models.CharField(max_length=1024, blank=True)
    command_line = models.TextField()
    required_slots = models.PositiveIntegerField(default=1)
    number_of_instances = models.PositiveIntegerField(default=1)  # > 1: multi-instance
    max_wall_clock_time = models.DurationField(null=True, blank=True)  # null: unlimited
    retention_time = models.DurationField(null=True, blank=True)  # null: unlimited
    max_task_retry_count = models.IntegerField(default=0)  # -1: unlimited
    spec = models.JSONField(default=dict, blank=True)

    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    previous_state = models.CharField(max_length=16, choices=State.choices, blank=True)
    state_transition_time = models.DateTimeField()
    previous_state_transition_time = models.DateTimeField(null=True, blank=True)
    creation_time = models.DateTimeField()
    last_modified = models.DateTimeField()
    etag = models.CharField(max_length=32)

    # executionInfo of the latest attempt
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    result = models.CharField(max_length=8, choices=Result.choices, blank=True)
    failure_info = models.JSONField(null=True, blank=True)
    retry_count = models.IntegerField(default=0)
    last_retry_time = models.DateTimeField(null=True, blank=True)
    requeue_count = models.IntegerField(default=0)
    last_requeue_time = models.DateTimeField(null=True, blank=True)

    # nodeInfo of the latest attempt (the primary's for a multi-instance task)
    node = models.ForeignKey(  # indexed by task_node_state
        ComputeNode,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
        db_index=False,
    )
    node_name = models.CharField(
        max_length=128, blank=True
    )  # the Batch node id, kept after the node goes
    pool_id = models.CharField(max_length=64, blank=True)
    affinity_id = models.CharField(max_length=255, blank=True)
    task_root_directory = models.CharField(max_length=1024, blank=True)

    # statistics (accumulated over attempts)
    user_cpu_time = models.DurationField(null=True, blank=True)
    kernel_cpu_time = models.DurationField(null=True, blank=True)
    wall_clock_time = models.DurationField(null=True, blank=True)
    wait_time = models.DurationField(null=True, blank=True)
    read_iops = models.BigIntegerField(default=0)
    write_iops = models.BigIntegerField(default=0)
    read_io_gib = models.FloatField(default=0)
    write_io_gib = models.FloatField(default=0)

    # Set when a delete or terminate of a multi-instance task still has subtasks to
    # reach, or when files must be removed by a node (tasks.operations.sweeps).
    files_cleaned = models.BooleanField(default=False)
    # The 180-day maximum lifetime passed before completion: the service terminated the
    # task's processes and left its state as it was; it is never scheduled again.
    lifetime_expired = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "id_key"], name="task_id_unique_ci"),
            models.CheckConstraint(
                condition=Q(id_key=Lower("task_id")), name="task_id_key_is_lower"
            ),
            models.CheckConstraint(
                condition=Q(state__in=TaskState.values),
                name="task_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(result__in=["", *TaskResult.values]), name="task_result_valid"
            ),
            models.CheckConstraint(
                condition=Q(required_slots__gte=1), name="task_required_slots_positive"
            ),
        ]
        indexes = [
            # A filtered page: WHERE job=? AND state=? ORDER BY id_key (keyset paging).
            models.Index(fields=["job", "state", "id_key"], name="task_job_state_id"),
            # Claiming work and the 180-day sweep: a job's oldest active tasks first, in
            # claim order (creation time, pk) however many share a creation time.
            PkLastIndex(fields=["job", "state", "creation_time"], name="task_job_state_created"),
            # Retention expiry: ended tasks whose files are still on a node. Without state,
            # so that claiming a task (active -> running) leaves this index alone.
            models.Index(fields=["files_cleaned", "end_time"], name="task_retention_due"),
            models.Index(fields=["job", "creation_time"], name="task_job_created"),
            # (key, pk) too: sorted by exit code, a page stops at its 50 rows instead of
            # sorting all of a common code's tasks (40,000 of 137 in a 1M-task job) by id.
            models.Index(fields=["job", "exit_code", "id"], name="task_job_exit_code"),
            # The dashboard's keyset sorts: (key, pk) under a job.
            models.Index(fields=["job", "start_time", "id"], name="task_job_started"),
            models.Index(fields=["job", "end_time", "id"], name="task_job_ended"),
            models.Index(fields=["job", "retry_count", "id"], name="task_job_retries"),
            models.Index(fields=["node", "state"], name="task_node_state"),
            # The job page's "blocked" filter: the active tasks that have a dependsOn, and
            # no other (tasks.queries.dependencies.WAITS_ON_OTHERS repeats the condition
            # as literal SQL, which a partial index needs of a query). With state, so the
            # planners prefer it to (job, state, ...): without, SQLite did not. A task
            # without dependsOn is never in it; a state change evaluates its condition.
            models.Index(
                fields=["job", "state"],
                condition=Q(spec__has_key="dependsOn"),
                name="task_job_state_depends",
            ),
        ]

    def __str__(self) -> str:
        return self.task_id

    @property
    def is_completed(self) -> bool:
        return self.state == self.State.COMPLETED

    @property
    def is_multi_instance(self) -> bool:
        return "multiInstanceSettings" in self.spec

    # executionInfo of the latest attempt that a requeue or a new attempt forgets, and what
    # a reactivation forgets besides (the task starts afresh: retryCount 0).
    OUTCOME_FIELDS = ("end_time", "exit_code", "result", "failure_info")
    RETRY_FIELDS = ("start_time", "retry_count", "last_retry_time")

    def clear_execution_info(self, *, reactivated: bool = False) -> list[str]:
        """Forget the latest attempt's outcome (endTime, exitCode, result, failureInfo), as
        a requeue or a new attempt does; `reactivated` (Reactivate Task) also forgets its
        startTime and retries (retryCount 0, no lastRetryTime). requeueCount stays: Batch
        counts requeues over the task's life. Returns the fields it changed."""
        self.end_time = self.exit_code = self.failure_info = None
        self.result = ""
        if not reactivated:
            return list(self.OUTCOME_FIELDS)
        self.start_time = self.last_retry_time = None
        self.retry_count = 0
        return [*self.OUTCOME_FIELDS, *self.RETRY_FIELDS]

    @property
    def run_time(self) -> timedelta | None:
        """How long the task has run: to its end, or to now while it runs; None before it
        started."""
        if self.start_time is None:
            return None
        return (self.end_time or timezone.now()) - self.start_time


class SubTaskState(models.TextChoices):
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"


class SubTask(models.Model):
    """One instance of a multi-instance task other than the primary (ids 1..N-1)."""

    State = SubTaskState

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="subtasks")
    subtask_id = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PREPARING)
    previous_state = models.CharField(max_length=16, choices=State.choices, blank=True)
    state_transition_time = models.DateTimeField()
    previous_state_transition_time = models.DateTimeField(null=True, blank=True)
    node = models.ForeignKey(
        ComputeNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="subtasks"
    )
    node_name = models.CharField(
        max_length=128, blank=True
    )  # the Batch node id, kept after the node goes
    pool_id = models.CharField(max_length=64, blank=True)
    task_root_directory = models.CharField(max_length=1024, blank=True)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    result = models.CharField(max_length=8, choices=Task.Result.choices, blank=True)
    failure_info = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "subtask_id"], name="subtask_id_unique"),
            models.CheckConstraint(
                condition=Q(state__in=SubTaskState.values),
                name="subtask_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}/{self.subtask_id}"

    # A subtask has no ETag of its own (its task's changes with it, where Batch says so).
    MOVE_FIELDS = (
        "state",
        "previous_state",
        "state_transition_time",
        "previous_state_transition_time",
    )

    def move_to(self, state: str, t: datetime) -> list[str]:
        """Move to `state` at `t`: the current state and its time become the previous ones."""
        self.previous_state = self.state
        self.previous_state_transition_time = self.state_transition_time
        self.state = state
        self.state_transition_time = t
        return list(self.MOVE_FIELDS)

    @classmethod
    def move_values(cls, state: str, t: datetime) -> dict:
        """move_to as QuerySet.update() keywords (previous state from the row itself)."""
        return {
            "state": state,
            "previous_state": F("state"),
            "state_transition_time": t,
            "previous_state_transition_time": F("state_transition_time"),
        }


class AttemptOutcome(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TERMINATED = "terminated"
    REQUEUED = "requeued"
    DELETED = "deleted"


class Attempt(models.Model):
    """One run of a task (or of one instance of a multi-instance task) on a node.

    The history behind the task's timeline, the node x time picture and requeue counts.
    The agent that owns the attempt watches `cancel_requested` to kill the process.
    """

    Outcome = AttemptOutcome

    # The foreign keys are indexed by the composite indexes below, which lead with them
    # (every attempt of every agent writes each index once or twice).
    task = models.ForeignKey(
        Task, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    subtask_id = models.PositiveIntegerField(null=True, blank=True)  # null: the task or primary
    number = models.PositiveIntegerField(default=1)
    node = models.ForeignKey(
        ComputeNode,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attempts",
        db_index=False,
    )
    node_name = models.CharField(
        max_length=128, blank=True
    )  # the Batch node id, kept after the node goes
    slots = models.PositiveIntegerField(default=1)
    claimed = models.DateTimeField()
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    failure_info = models.JSONField(null=True, blank=True)
    cancel_requested = models.CharField(max_length=16, blank=True)  # "terminate" | "delete"
    task_dir = models.CharField(max_length=1024, blank=True)
    # The Unix user its processes ran as and why (tasks.nodehost.identity.Identity.label), as
    # its agent reported it when the attempt ended.
    run_as = models.CharField(max_length=200, blank=True, default="")
    # The SHA-256 of the secret of the run's authentication token (authenticationTokenSettings:
    # tasks.operations.task_tokens), blank when the task asked for none. The token is only
    # ever in the task's environment.
    token_hash = models.CharField(max_length=64, blank=True, default="", editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=AttemptOutcome.values),
                name="attempt_outcome_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["node", "outcome"], name="attempt_node_outcome"),
            # A node's recent attempts (its dashboard page).
            models.Index(fields=["node", "claimed"], name="attempt_node_claimed"),
            models.Index(fields=["job", "claimed"], name="attempt_job_claimed"),
            models.Index(fields=["task", "number"], name="attempt_task_number"),
        ]


class AuditRecord(models.Model):
    """Who did what to which tasks, when, and how it ended: every dashboard, admin and API action."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="audit_records")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=150)  # username, "api:<account>", "admin:<user>", "system"
    action = models.CharField(max_length=32)
    scope = models.JSONField(default=dict)  # {"job": ..., "tasks": [...]} or {"filter": ...}
    outcome = models.JSONField(default=dict)  # {"succeeded": n, "refused": {code: n}, ...}
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created"]


class BulkOperation(models.Model):
    """A bulk action running in the background, with progress for the dashboard."""

    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        STOPPED = "stopped"  # by a person, before it reached the end

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="bulk_operations")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="bulk_operations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=32)
    scope = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    outcomes = models.JSONField(default=dict)  # {task_id: "ok" | error code}
    audit = models.ForeignKey(
        AuditRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)


class NodeCleanup(models.Model):
    """A task directory a node must remove (delete, retention expiry): the node that holds
    the files does it, so no shared filesystem is needed."""

    node_name = models.CharField(max_length=128, db_index=True)
    pool_id = models.CharField(max_length=64)
    task_dir = models.CharField(max_length=1024)
    reason = models.CharField(max_length=32)
    created = models.DateTimeField(auto_now_add=True)


class JobPreparationState(models.TextChoices):
    RUNNING = "running"
    COMPLETED = "completed"


class JobPreparationResult(models.TextChoices):
    SUCCESS = "success"
    FAILURE = "failure"


class JobPreparation(models.Model):
    """A job's preparation and release task on one node (one row per job and node, made
    when the node first runs the preparation): what List Preparation and Release Task
    Status returns. Only tasks.operations.job_preparation writes it."""

    State = JobPreparationState
    Result = JobPreparationResult

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="preparations")
    # A node removed from its pool leaves its rows (the status list still tells what ran
    # there), with no node: nothing runs there any more, and no release is waited for.
    node = models.ForeignKey(
        ComputeNode, null=True, on_delete=models.SET_NULL, related_name="job_preparations"
    )
    pool_name = models.CharField(max_length=64)  # the node's pool id and node id, kept when it goes
    node_name = models.CharField(max_length=128)
    root_dir = models.CharField(max_length=1024, blank=True)  # AZ_BATCH_NODE_ROOT_DIR
    # The node's lastBootTime when the preparation last started: a later boot reruns it
    # (rerunOnNodeRebootAfterSuccess, or a preparation the reboot interrupted).
    boot = models.DateTimeField()
    prep_state = models.CharField(max_length=16, choices=State.choices)
    prep_start_time = models.DateTimeField()
    prep_end_time = models.DateTimeField(null=True, blank=True)
    prep_exit_code = models.IntegerField(null=True, blank=True)
    prep_failure_info = models.JSONField(null=True, blank=True)
    prep_result = models.CharField(max_length=16, choices=Result.choices, blank=True)
    prep_retry_count = models.PositiveIntegerField(default=0)
    prep_last_retry_time = models.DateTimeField(null=True, blank=True)
    release_state = models.CharField(max_length=16, choices=State.choices, blank=True)
    release_start_time = models.DateTimeField(null=True, blank=True)
    release_end_time = models.DateTimeField(null=True, blank=True)
    release_boot = models.DateTimeField(
        null=True, blank=True
    )  # the node's lastBootTime when the release started
    release_exit_code = models.IntegerField(null=True, blank=True)
    release_failure_info = models.JSONField(null=True, blank=True)
    release_result = models.CharField(max_length=16, choices=Result.choices, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "node"], name="job_preparation_unique"),
            models.CheckConstraint(
                condition=Q(prep_state__in=JobPreparationState.values),
                name="job_preparation_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(release_state__in=["", *JobPreparationState.values]),
                name="job_release_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}@{self.node_id}"
