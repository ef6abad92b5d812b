"""Compute-node operations: a node's life (register, start task, heartbeat, lost, stop,
leave the pool) and the actions on it (reboot, reimage, disable/enable scheduling).

The Batch node states as batchsite uses them:

    creating             the reconciler asked the provider for the node; no agent yet
    starting             the agent registered; the pool's start task is about to run
    waitingforstarttask  the start task runs with waitForSuccess: no work yet
    starttaskfailed      it failed after its retries (waitForSuccess): no work until a
                         reboot or reimage
    idle, running        takes work; running while at least one task (other than the
                         start task) runs
    offline              takes no work and runs nothing: its scheduling is disabled, or its
                         agent stopped or stopped heartbeating
    rebooting, reimaging a Reboot/Reimage is under way: its tasks are handled per the
                         option, then the agent restarts and the start task runs again
    leavingpool          asked to leave the pool (resize down, Remove Nodes, pool deletion)
    unusable             the agent cannot use the node's disk

Reboot, reimage and removal are orders: the operation records `pending_action` and
`action_option` and applies the option to the running tasks at once (requeue: back to
active, requeueCount + 1; terminate: completed with failureInfo TaskEnded); the agent sees
the order at its next control pass, waits for what the option lets finish (taskcompletion;
retaineddata), carries it out and reports back through these operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q

from tasks.errors import BatchError
from tasks.models import (
    DISABLE_SCHEDULING_OPTIONS,
    Attempt,
    ComputeNode,
    Job,
    NodeCleanup,
    NodeDeallocationOption,
    Pool,
    Task,
)
from tasks.nodehost.layout import NODE_ID_PATTERN
from tasks.timefmt import format_datetime_wire

from .attempt_store import skip_locked as _locked
from .common import Precondition, lock_checked, now
from .job_ends import complete_job_if_all_tasks_done
from .node_leaving import requeue_all
from .task_ends import requeue_attempts, terminate_locked_task

State = ComputeNode.State
Action = ComputeNode.Action

Option = NodeDeallocationOption

# States in which a node's agent heartbeats: one whose heartbeat stops is lost.
LIVE_STATES = (
    State.IDLE,
    State.RUNNING,
    State.STARTING,
    State.WAITINGFORSTARTTASK,
    State.STARTTASKFAILED,
    State.REBOOTING,
    State.REIMAGING,
    State.LEAVINGPOOL,
    State.UNUSABLE,
    State.UNKNOWN,
)
# States the heartbeat keeps up to date (idle / running / offline from what the agent runs
# and the scheduling flag); every other state is moved by an operation.
_STEADY_STATES = (State.IDLE, State.RUNNING, State.OFFLINE, State.UNKNOWN)
# Reboot and reimage: only a node that is up (or whose start task failed, or that is
# unusable: what a reboot is for). The states of a node in transition refuse with their own code.
_ACTIONABLE_STATES = (
    State.IDLE,
    State.RUNNING,
    State.STARTTASKFAILED,
    State.UNUSABLE,
    State.OFFLINE,
)
_TRANSITION_REFUSALS = {
    State.CREATING: BatchError.node_being_created,
    State.STARTING: BatchError.node_being_started,
    State.WAITINGFORSTARTTASK: BatchError.node_being_started,
    State.REBOOTING: BatchError.node_being_rebooted,
    State.REIMAGING: BatchError.node_being_reimaged,
}
FAILURE_EXIT_MESSAGE = "The task exited with an exit code representing a failure"


# --- registering and starting --------------------------------------------------------------


def register_node(
    pool: Pool,
    *,
    node_id: str,
    slots: int,
    hostname: str = "",
    ip_address: str = "",
    root_dir: str = "",
    agent_pid: int | None = None,
    is_dedicated: bool = True,
    resume_order: bool = False,
    errors: list[dict] | None = None,
) -> ComputeNode:
    """Register a node agent in its pool, or register it again after a restart.

    The node the reconciler created (`creating`), a node being rebooted or reimaged (the
    agent restarted: the order is done) and a node seen before all take the new agent; a
    hand-started agent gets a new row. The node is `starting` when the pool has a start task
    (the agent runs it next: start_task_started), else `idle` (`offline` when its scheduling
    is disabled); a node asked to leave the pool is `leavingpool`. lastBootTime is now.
    Attempts the database still shows running on it belong to the agent's previous life
    (it killed what it left behind before registering), so their tasks are requeued: no
    task is lost. With `resume_order` (an agent that restarted while a reimage with
    retaineddata still waited for its tasks' retention) the order stays and the node stays
    `reimaging`. `errors` are the node's errors from its agent's start (ComputeNodeError:
    an agent that is not root says its tasks all run as it). Refuses a node id that is not `[A-Za-z0-9_.-]` (400 InvalidPropertyValue)
    or a slot count below 1.
    """
    if not NODE_ID_PATTERN.match(node_id or ""):
        raise BatchError.invalid_property(
            "nodeId", node_id, "A node id is 1-128 of A-Z a-z 0-9 _ . -"
        )
    if slots < 1:
        raise BatchError.invalid_property("slots", slots, "A node has at least one task slot.")
    t = now()
    starts = bool(pool.spec.get("startTask"))
    fields = {
        "slots": slots,
        "hostname": hostname,
        "ip_address": ip_address,
        "root_dir": root_dir,
        "agent_pid": agent_pid,
        "is_dedicated": is_dedicated,
        "registered": t,
        "last_heartbeat": t,
        "start_task_info": None,
        "errors": list(errors or []),
        "cpu_percent": None,
        "memory_bytes": None,
    }
    with transaction.atomic():
        node = ComputeNode.objects.select_for_update().filter(pool=pool, node_id=node_id).first()
        if node is None:
            try:
                with transaction.atomic():
                    return ComputeNode.objects.create(
                        pool=pool,
                        node_id=node_id,
                        allocation_time=t,
                        state=State.STARTING if starts else State.IDLE,
                        state_transition_time=t,
                        **fields,
                    )
            except IntegrityError:
                node = ComputeNode.objects.select_for_update().get(pool=pool, node_id=node_id)
        if node.pending_action in (Action.REBOOT, Action.REIMAGE) and not resume_order:
            node.pending_action, node.action_option = Action.NONE, ""
        if node.pending_action == Action.REBOOT:
            state = State.REBOOTING
        elif node.pending_action == Action.REIMAGE:
            state = State.REIMAGING
        elif node.pending_action == Action.REMOVE:
            state = State.LEAVINGPOOL
        elif starts:
            state = State.STARTING
        else:
            state = _ready_state(node.scheduling_enabled)
        for name, value in fields.items():
            setattr(node, name, value)
        node.move_to(state, t)  # a (re)start is a move even to the state it had
        node.save()
    requeue_all(node)
    return node


def _ready_state(scheduling_enabled: bool) -> str:
    return State.IDLE if scheduling_enabled else State.OFFLINE


def start_task_started(node: ComputeNode, *, retry: bool = False) -> ComputeNode:
    """The agent started the pool's start task (again, for a retry). startTaskInfo becomes
    `running` with its startTime (and retryCount + 1, lastRetryTime for a retry). With
    waitForSuccess (the default) the node waits in `waitingforstarttask` and takes no
    work; without it the node is ready at once and takes work while the start task runs."""
    t = now()
    spec = node.pool.spec.get("startTask") or {}
    with transaction.atomic():
        locked = ComputeNode.objects.select_for_update().filter(pk=node.pk).first()
        if locked is None:
            return node
        info = {
            "state": Task.State.RUNNING.value,
            "startTime": format_datetime_wire(t),
            "retryCount": 0,
        }
        if retry:
            previous = locked.start_task_info or {}
            info["retryCount"] = previous.get("retryCount", 0) + 1
            info["lastRetryTime"] = info["startTime"]
        locked.start_task_info = info
        if locked.state in (State.STARTING, State.WAITINGFORSTARTTASK):
            state = (
                State.WAITINGFORSTARTTASK
                if spec.get("waitForSuccess", True)
                else _ready_state(locked.scheduling_enabled)
            )
            if state != locked.state:
                locked.move_to(state, t)
        locked.save(update_fields=["start_task_info", *ComputeNode.MOVE_FIELDS])
    return locked


def start_task_ended(
    node: ComputeNode, *, exit_code: int | None, failure_code: str = "", failure_message: str = ""
) -> bool:
    """The start task's process ended. Returns True when the agent must run it again.

    Batch rules: exit code 0 succeeds; another exit code fails with failureInfo
    FailureExitCode and is retried while retryCount < maxTaskRetryCount (-1: without limit);
    a command that could not start (CommandProgramNotFound / CommandLaunchFailed) fails
    without retry. When it is over, startTaskInfo is `completed` with its exitCode, result
    and failureInfo; with waitForSuccess the node becomes `idle` after a success and
    `starttaskfailed` after the last failure (it takes no work then); without it the node's
    state does not depend on the start task.
    """
    t = now()
    spec = node.pool.spec.get("startTask") or {}
    if failure_code:
        failure = {"category": "usererror", "code": failure_code, "message": failure_message}
    elif exit_code != 0:
        failure = {
            "category": "usererror",
            "code": "FailureExitCode",
            "message": FAILURE_EXIT_MESSAGE,
        }
    else:
        failure = None
    with transaction.atomic():
        locked = ComputeNode.objects.select_for_update().filter(pk=node.pk).first()
        if locked is None:
            return False
        info = dict(
            locked.start_task_info or {"startTime": format_datetime_wire(t), "retryCount": 0}
        )
        info.update(
            state=Task.State.COMPLETED.value,
            endTime=format_datetime_wire(t),
            result=(Task.Result.FAILURE if failure else Task.Result.SUCCESS).value,
        )
        info.pop("exitCode", None)
        info.pop("failureInfo", None)
        if exit_code is not None:
            info["exitCode"] = exit_code
        if failure:
            info["failureInfo"] = failure
        limit = spec.get("maxTaskRetryCount", 0)
        retry = (
            bool(failure)
            and failure["code"] == "FailureExitCode"
            and (limit == -1 or info.get("retryCount", 0) < limit)
        )
        locked.start_task_info = info
        if not retry and locked.state == State.WAITINGFORSTARTTASK:
            locked.move_to(
                State.STARTTASKFAILED if failure else _ready_state(locked.scheduling_enabled), t
            )
        locked.save(update_fields=["start_task_info", *ComputeNode.MOVE_FIELDS])
    return retry


def mark_node_unusable(node: ComputeNode, *, code: str, message: str) -> None:
    """The agent cannot use the node (its directories cannot be made): the node is
    `unusable` with the reason in its errors, and takes no work until a reboot or reimage.
    The agent's copy of the node says so too."""
    t = now()
    errors = [{"code": code, "message": message, "errorDetails": []}]
    ComputeNode.objects.filter(pk=node.pk).update(
        **ComputeNode.move_values(State.UNUSABLE, t), errors=errors
    )
    node.move_to(State.UNUSABLE, t)
    node.errors = errors


# --- heartbeat, loss, stop -----------------------------------------------------------------


def heartbeat_node(
    node: ComputeNode,
    *,
    running: bool,
    tasks_run: int = 0,
    tasks_succeeded: int = 0,
    cpu_percent: float | None = None,
    memory_bytes: int | None = None,
) -> ComputeNode | None:
    """Record that the node's agent is alive: add the attempts it finished since the last
    heartbeat to totalTasksRun / totalTasksSucceeded and keep its latest CPU and memory
    samples ($CPUPercent, $MemoryBytes). A node that is up is `running` while it runs a
    task, else `idle`, or `offline` with its scheduling disabled (a node marked offline
    while its agent was unreachable comes back); a node in any other state (starting,
    rebooting, leaving...) keeps it: operations move those. Returns None when the node no
    longer exists (it left the pool, or its pool was deleted)."""
    t = now()
    changes = {
        "last_heartbeat": t,
        "total_tasks_run": F("total_tasks_run") + tasks_run,
        "total_tasks_succeeded": F("total_tasks_succeeded") + tasks_succeeded,
    }
    if cpu_percent is not None:
        changes["cpu_percent"] = cpu_percent
    if memory_bytes is not None:
        changes["memory_bytes"] = memory_bytes
    with transaction.atomic():
        row = (
            ComputeNode.objects.filter(pk=node.pk)
            .values_list("state", "scheduling_enabled")
            .first()
        )
        if row is None:
            return None
        current, enabled = row
        state = current
        if current in _STEADY_STATES:
            state = State.RUNNING if running else _ready_state(enabled)
        if state != current:
            # Only if no operation moved the node meanwhile (a reboot ordered since the read).
            if not ComputeNode.objects.filter(pk=node.pk, state=current).update(
                **ComputeNode.move_values(state, t), **changes
            ):
                ComputeNode.objects.filter(pk=node.pk).update(**changes)
                state = (
                    ComputeNode.objects.filter(pk=node.pk).values_list("state", flat=True).first()
                    or current
                )
        else:
            ComputeNode.objects.filter(pk=node.pk).update(**changes)
    node.state, node.last_heartbeat = state, t
    return node


def lost_nodes(*, lost_after: timedelta, hostname: str) -> list[ComputeNode]:
    """Nodes on this host whose heartbeat stopped and that are not yet marked offline."""
    return list(
        ComputeNode.objects.filter(
            state__in=LIVE_STATES, last_heartbeat__lt=now() - lost_after, hostname=hostname
        )
    )


def mark_lost_nodes_offline(*, lost_after: timedelta) -> int:
    """A node whose agent has not sent a heartbeat for `lost_after` is offline, and every
    task running on it is requeued to the other nodes (requeueCount counts it). Any agent
    and the sweep call this; the conditional update makes one of them do it. Returns how
    many nodes it marked offline."""
    t = now()
    lost = list(
        ComputeNode.objects.filter(
            state__in=LIVE_STATES, last_heartbeat__lt=t - lost_after
        ).values_list("pk", flat=True)
    )
    marked = 0
    for pk in lost:
        marked += ComputeNode.objects.filter(
            Q(pk=pk, state__in=LIVE_STATES, last_heartbeat__lt=t - lost_after)
        ).update(**ComputeNode.move_values(State.OFFLINE, t))
    # Also finish requeueing nodes marked offline earlier whose rows were busy then.
    stale = Attempt.objects.filter(
        node__state=State.OFFLINE,
        outcome=Attempt.Outcome.RUNNING,
        node__last_heartbeat__lt=t - lost_after,
    )
    for node_pk in set(stale.values_list("node_id", flat=True)):
        requeue_all(ComputeNode(pk=node_pk))
    return marked


def stop_node(node: ComputeNode) -> list[int]:
    """An agent is stopping (SIGTERM): the tasks it was running are requeued and the node
    goes offline without an agent (agent_pid cleared: see stopped_agents). Returns the
    attempts still to requeue (rows busy; call again)."""
    left = requeue_all(node)
    if not left:
        t = now()
        ComputeNode.objects.filter(pk=node.pk).exclude(state=State.OFFLINE).update(
            **ComputeNode.move_values(State.OFFLINE, t)
        )
        ComputeNode.objects.filter(pk=node.pk).update(agent_pid=None)
    return left


# --- what the agent is asked to do -----------------------------------------------------------


@dataclass(frozen=True)
class NodeOrders:
    """What a node's agent reads at each control pass."""

    state: str
    scheduling_enabled: bool
    pending_action: str
    action_option: str

    @property
    def option(self) -> str:
        """The option that applies to the running tasks now: the pending action's
        (requeue when none was given, Batch's default), else the one scheduling was
        disabled with."""
        if self.pending_action:
            return self.action_option or Option.REQUEUE
        return "" if self.scheduling_enabled else self.action_option

    @property
    def accepts_work(self) -> bool:
        return (
            self.scheduling_enabled
            and not self.pending_action
            and self.state in (State.IDLE, State.RUNNING)
        )


def get_node_orders(node: ComputeNode) -> NodeOrders | None:
    """The node's state, scheduling flag and pending order (one query); None when the node
    no longer exists. The caller's copy of the node takes the state read (the agent's
    copy follows the moves other writers made)."""
    row = (
        ComputeNode.objects.filter(pk=node.pk)
        .values_list("state", "scheduling_enabled", "pending_action", "action_option")
        .first()
    )
    if row is None:
        return None
    orders = NodeOrders(*row)
    node.state = orders.state
    return orders


def settle_node_tasks(node: ComputeNode) -> list[int]:
    """Apply the node's option to the tasks running on it: requeue (back to active,
    requeueCount + 1) or terminate (completed with failureInfo TaskEnded); taskcompletion
    and retaineddata let them finish. The operations that order it call this, and the
    agent again while it waits (rows another writer held are left for then). Returns the
    attempts still running on the node that the option ends."""
    orders = get_node_orders(node)
    if orders is None:
        return []
    return _settle(node, orders.option, orders.pending_action or "disable")


_WHY = {
    Action.REBOOT: "its node was rebooted",
    Action.REIMAGE: "its node was reimaged",
    Action.REMOVE: "its node was removed from the pool",
    "disable": "task scheduling was disabled on its node",
}


def _settle(node: ComputeNode, option: str, why: str) -> list[int]:
    if option not in (Option.REQUEUE, Option.TERMINATE):
        return []
    pks = list(
        Attempt.objects.filter(node_id=node.pk, outcome=Attempt.Outcome.RUNNING).values_list(
            "pk", flat=True
        )
    )
    if option == Option.REQUEUE:
        settled = set(requeue_attempts(pks))
    else:
        settled = set(
            terminate_attempts(pks, message=f"The task was terminated because {_WHY[why]}.")
        )
    return [pk for pk in pks if pk not in settled]


def terminate_attempts(attempt_pks: list[int], *, message: str) -> list[int]:
    """Terminate the tasks of these running attempts (their node is rebooted, reimaged,
    removed or disabled with the option terminate): each completes with result failure and
    failureInfo TaskEnded, and is not run again; its processes are killed by their agents,
    and its job ends when onAllTasksComplete says so. Returns the pks that are settled; the
    others' rows were busy (try again)."""
    if not attempt_pks:
        return []
    with transaction.atomic():
        heads = list(
            Attempt.objects.filter(pk__in=attempt_pks, outcome=Attempt.Outcome.RUNNING).values(
                "pk", "task_id", "job_id"
            )
        )
        settled = set(attempt_pks) - {h["pk"] for h in heads}
        jobs = {j.pk: j for j in _locked(Job.objects.filter(pk__in={h["job_id"] for h in heads}))}
        tasks = {
            t.pk: t
            for t in _locked(
                Task.objects.filter(pk__in={h["task_id"] for h in heads if h["job_id"] in jobs})
            ).order_by("pk")
        }
        ended: set[int] = set()
        for head in heads:
            task = tasks.get(head["task_id"])
            if task is None:
                continue
            settled.add(head["pk"])
            task.job = jobs[task.job_id]
            if task.state == Task.State.COMPLETED:
                # Already over (a subtask held for its primary): only its processes go.
                Attempt.objects.filter(pk=head["pk"], cancel_requested="").update(
                    cancel_requested="terminate"
                )
            elif task.pk not in ended:
                terminate_locked_task(task, code="TaskEnded", message=message)
                ended.add(task.pk)
        for job in {tasks[pk].job for pk in ended}:
            complete_job_if_all_tasks_done(job)
    return sorted(settled)


def holds_retained_data(node: ComputeNode) -> bool:
    """Whether a task that ran on the node still keeps its files there: not completed, or
    completed less than its retentionTime ago (none: forever), and not cleaned up. A node
    draining with the option retaineddata waits until none does."""
    t = now()
    ran_here = Attempt.objects.filter(node_id=node.pk).values("task_id")
    return (
        Task.objects.filter(pk__in=ran_here, files_cleaned=False)
        .alias(
            expiry=ExpressionWrapper(
                F("end_time") + F("retention_time"), output_field=DateTimeField()
            )
        )
        .filter(Q(end_time__isnull=True) | Q(retention_time__isnull=True) | Q(expiry__gt=t))
        .exists()
    )


# --- leaving the pool ----------------------------------------------------------------------


def start_leaving_pool(node: ComputeNode) -> str:
    """The agent saw the order to leave the pool (pending_action remove, set by a resize
    down, Remove Nodes or the pool's deletion): the node is `leavingpool` and takes no
    more work, and its running tasks are handled per the nodeDeallocationOption (requeue,
    the default; terminate; taskcompletion and retaineddata let them finish). Returns the
    option, so the agent knows what to wait for."""
    t = now()
    ComputeNode.objects.filter(pk=node.pk, pending_action=Action.REMOVE).exclude(
        state=State.LEAVINGPOOL
    ).update(**ComputeNode.move_values(State.LEAVINGPOOL, t))
    orders = get_node_orders(node)
    if orders is None:
        return Option.REQUEUE
    _settle(node, orders.option, Action.REMOVE)
    return orders.option


# --- reboot, reimage, scheduling -----------------------------------------------------------


def _lock_node(node: ComputeNode, precondition: Precondition, refusal) -> ComputeNode:
    return lock_checked(
        ComputeNode.objects.select_related("pool").filter(pk=node.pk),
        BatchError.node_not_found,
        precondition,
        refusal,
    )


def _alive(node: ComputeNode) -> bool:
    """An agent runs the node: it did not stop (stop_node clears its pid) and heartbeats."""
    return node.agent_pid is not None and node.last_heartbeat >= now() - timedelta(
        seconds=settings.BATCHSITE_NODE_LOST_SECONDS
    )


def _restart_refusal(node: ComputeNode) -> BatchError | None:
    """Reboot and reimage: a node that is up (idle, running, scheduling disabled), whose
    start task failed, or that is unusable. 409 PoolBeingDeleted; NodeBeingCreated,
    NodeBeingStarted, NodeBeingRebooted, NodeBeingReimaged for a node in transition;
    NodeNotReady for one leaving the pool or whose agent is gone."""
    if node.pool.state == Pool.State.DELETING:
        return BatchError.pool_being_deleted()
    if node.state in _TRANSITION_REFUSALS:
        return _TRANSITION_REFUSALS[node.state]()
    if node.pending_action == Action.REMOVE or node.state not in _ACTIONABLE_STATES:
        return BatchError.node_not_ready()
    if node.state == State.OFFLINE and (node.scheduling_enabled or not _alive(node)):
        return BatchError.node_not_ready()  # its agent stopped: nothing would carry it out
    return None


def _check_option(name: str, option: str, allowed: tuple[str, ...]) -> None:
    if option not in allowed:
        raise BatchError.invalid_property(
            name, option, f"The value must be one of: {', '.join(allowed)}."
        )


def can_reboot_node(node: ComputeNode) -> BatchError | None:
    return _restart_refusal(node)


def reboot_node(
    node: ComputeNode, *, option: str = Option.REQUEUE, precondition: Precondition = None
) -> ComputeNode:
    """Reboot a node: it is `rebooting` at once and takes no more work; its running tasks
    are handled per nodeRebootOption (requeue, the default: back to active; terminate:
    completed with TaskEnded; taskcompletion and retaineddata: they finish first — a reboot
    keeps the disk, so retaineddata waits for nothing more). Then its agent restarts
    (lastBootTime changes), the start task runs again, and the node is up with the same id.
    Refusals: can_reboot_node; 400 InvalidPropertyValue for an unknown option."""
    _check_option("nodeRebootOption", option, Option.values)
    return _order_restart(
        node, Action.REBOOT, State.REBOOTING, option, precondition, can_reboot_node
    )


def can_reimage_node(node: ComputeNode) -> BatchError | None:
    return _restart_refusal(node)


def reimage_node(
    node: ComputeNode, *, option: str = Option.REQUEUE, precondition: Precondition = None
) -> ComputeNode:
    """Reimage a node: as a reboot (`reimaging`, tasks per nodeReimageOption), and its disk
    is wiped before the agent restarts: the task directories, shared/ and startup/; the
    completed tasks that had files there answer TaskFilesCleanedup. With retaineddata the
    wipe waits until every task's retentionTime on the node has passed.
    Refusals: can_reimage_node; 400 InvalidPropertyValue for an unknown option."""
    _check_option("nodeReimageOption", option, Option.values)
    return _order_restart(
        node, Action.REIMAGE, State.REIMAGING, option, precondition, can_reimage_node
    )


def _order_restart(
    node: ComputeNode, action: str, state: str, option: str, precondition: Precondition, refusal
) -> ComputeNode:
    with transaction.atomic():
        locked = _lock_node(node, precondition, refusal)
        locked.pending_action, locked.action_option = action, option
        locked.save(
            update_fields=["pending_action", "action_option", *locked.move_to(state, now())]
        )
        _settle(locked, option, action)
    return locked


def _can_set_scheduling(node: ComputeNode, *, enabled: bool) -> BatchError | None:
    if node.pool.state == Pool.State.DELETING:
        return BatchError.pool_being_deleted()
    if node.pending_action == Action.REMOVE or node.state == State.LEAVINGPOOL:
        return BatchError.node_not_ready()
    if node.scheduling_enabled == enabled:
        return BatchError.node_already_in_scheduling_state()
    return None


def can_disable_node_scheduling(node: ComputeNode) -> BatchError | None:
    """Only a node whose scheduling is enabled (409 NodeAlreadyInTargetSchedulingState),
    not one leaving the pool (409 NodeNotReady) nor of a pool being deleted (409
    PoolBeingDeleted)."""
    return _can_set_scheduling(node, enabled=False)


def disable_node_scheduling(
    node: ComputeNode, *, option: str = Option.REQUEUE, precondition: Precondition = None
) -> ComputeNode:
    """Disable task scheduling on a node: it takes no new task; its running tasks are
    handled per nodeDisableSchedulingOption (requeue, the default: back to active;
    terminate: completed with TaskEnded; taskcompletion: they finish). A node that is up and
    runs nothing is `offline` (Batch's state for it). The scheduling state survives a
    reboot. Refusals: can_disable_node_scheduling; 400 InvalidPropertyValue for an unknown
    option."""
    _check_option("nodeDisableSchedulingOption", option, DISABLE_SCHEDULING_OPTIONS)
    with transaction.atomic():
        locked = _lock_node(node, precondition, can_disable_node_scheduling)
        locked.scheduling_enabled = False
        if not locked.pending_action:
            locked.action_option = option
        locked.save(update_fields=["scheduling_enabled", "action_option"])
        if not locked.pending_action:
            _settle(locked, option, "disable")
        if (
            locked.state in (State.IDLE, State.RUNNING)
            and not Attempt.objects.filter(
                node_id=locked.pk, outcome=Attempt.Outcome.RUNNING
            ).exists()
        ):
            locked.save(update_fields=locked.move_to(State.OFFLINE, now()))
    return locked


def can_enable_node_scheduling(node: ComputeNode) -> BatchError | None:
    """Only a node whose scheduling is disabled (409 NodeAlreadyInTargetSchedulingState),
    not one leaving the pool (409 NodeNotReady) nor of a pool being deleted (409
    PoolBeingDeleted)."""
    return _can_set_scheduling(node, enabled=True)


def enable_node_scheduling(node: ComputeNode, *, precondition: Precondition = None) -> ComputeNode:
    """Enable task scheduling on a node again: it takes work (an `offline` node whose agent
    is alive is `idle` again). Refusals: can_enable_node_scheduling."""
    with transaction.atomic():
        locked = _lock_node(node, precondition, can_enable_node_scheduling)
        locked.scheduling_enabled = True
        if not locked.pending_action:
            locked.action_option = ""
        fields = ["scheduling_enabled", "action_option"]
        if locked.state == State.OFFLINE and _alive(locked):
            fields += locked.move_to(State.IDLE, now())
        locked.save(update_fields=fields)
    return locked


# --- cleanups ------------------------------------------------------------------------------


def pending_cleanups(node: ComputeNode) -> list[NodeCleanup]:
    """Task directories queued for this node to remove (task deleted, job deleted,
    retentionTime passed), only those under the node's own root."""
    root = node.root_dir.rstrip("/") + "/"
    return [
        c
        for c in NodeCleanup.objects.filter(node_name=node.node_id).order_by("pk")[:500]
        if c.task_dir.startswith(root)
    ]


def complete_cleanups(pks: list[int]) -> None:
    """The node removed these directories."""
    NodeCleanup.objects.filter(pk__in=pks).delete()
