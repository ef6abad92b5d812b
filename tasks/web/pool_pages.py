"""What the pool and node pages show: the reads behind each view, each saying what it
costs. The rules (may this pool resize? may this node reboot?) come from the rules layer
(tasks.operations.pool_actions); this module only says how to show them, and when a page
stops polling because nothing on it can change without someone acting."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q
from django.urls import reverse

from tasks.models import Attempt, ComputeNode, Job, NodeDeallocationOption, Pool, Task
from tasks.nodehost import AGENT_VERSION
from tasks.nodehost.layout import STARTUP_DIR, STDERR, STDOUT, WORKITEMS_DIR
from tasks.nodehost.storage import FileInfo
from tasks.operations.pool_actions import NODE_ACTIONS, node_refusals, pool_refusals
from tasks.operations.pool_nodes import current_nodes
from tasks.operations.pool_specs import DEFAULT_RESIZE_TIMEOUT
from tasks.wire.redaction import start_task_json, without_secrets

from . import files
from .access import Access

NODE_LIMIT = 1000  # nodes listed on a pool page (a pool of more says so)
RECENT_RUNS = 50
START_TASK_FILES = (f"{STARTUP_DIR}/{STDOUT}", f"{STARTUP_DIR}/{STDERR}")

State = ComputeNode.State
# Node states in the order a node lives them, for legends and counts.
NODE_STATE_ORDER = [
    State.CREATING,
    State.STARTING,
    State.WAITINGFORSTARTTASK,
    State.IDLE,
    State.RUNNING,
    State.REBOOTING,
    State.REIMAGING,
    State.LEAVINGPOOL,
    State.OFFLINE,
    State.STARTTASKFAILED,
    State.UNUSABLE,
    State.PREEMPTED,
    State.UNKNOWN,
]
# States a node leaves by itself (its agent or the reconciler moves it on).
MOVING_NODE_STATES = {
    State.CREATING,
    State.STARTING,
    State.WAITINGFORSTARTTASK,
    State.RUNNING,
    State.REBOOTING,
    State.REIMAGING,
    State.LEAVINGPOOL,
}
READY_STATES = (State.IDLE, State.RUNNING)
COMING_STATES = (
    State.CREATING,
    State.STARTING,
    State.WAITINGFORSTARTTASK,
    State.REBOOTING,
    State.REIMAGING,
)

OPTION_HELP = {
    NodeDeallocationOption.REQUEUE: "Running tasks are stopped now and go back to the queue; they run again on another node.",
    NodeDeallocationOption.TERMINATE: "Running tasks are stopped now and complete as failed (TaskEnded); they do not run again.",
    NodeDeallocationOption.TASKCOMPLETION: "Running tasks finish first; no new task starts on the node meanwhile.",
    NodeDeallocationOption.RETAINEDDATA: "Running tasks finish, and the node waits until their files' retention time has passed.",
}
NODE_ACTION_TEXT = {
    "reboot": (
        "Reboot",
        "The node restarts: its agent comes back with the same id and runs the start task again.",
    ),
    "reimage": (
        "Reimage",
        "The node's disk is wiped (task directories, shared/, startup/) and it starts afresh.",
    ),
    "disable-scheduling": (
        "Disable scheduling",
        "The node takes no new task until scheduling is enabled again.",
    ),
    "enable-scheduling": ("Enable scheduling", "The node takes tasks again."),
    "remove": (
        "Remove from pool",
        "The node leaves the pool, which shrinks by one: it is not replaced.",
    ),
}
CONFIRMED_NODE_ACTIONS = {"reboot", "reimage", "disable-scheduling", "remove"}
POOL_ACTION_LABELS = {
    "resize": "Resize…",
    "stop-resize": "Stop resize",
    "enable-autoscale": "Enable autoscale…",
    "disable-autoscale": "Disable autoscale",
    "evaluate-autoscale": "Evaluate formula…",
    "delete": "Delete…",
}
# Pool actions that open a form (or a confirmation) first; the others post at once.
POOL_FORMS = {"resize", "enable-autoscale", "evaluate-autoscale", "delete"}

# Pool properties batchsite stores only so that they round-trip (README, "What a pool can ask
# for"): returned as sent, acted upon by nothing. The pool page marks each one it has.
STORED_ONLY = [
    (
        "virtualMachineConfiguration",
        "VM configuration",
        "Image, node agent SKU, containers, disks, extensions: a node is whatever host its provider gives it.",
    ),
    ("networkConfiguration", "Network", "Endpoints, public IPs and firewall rules are not set up."),
    ("mountConfiguration", "Mounts", "No file system is mounted on the nodes."),
    (
        "userAccounts",
        "User accounts",
        "No account is made: tasks run as the user the node's agent runs as.",
    ),
    ("upgradePolicy", "Upgrade policy", "Nodes are never upgraded."),
    ("resourceTags", "Resource tags", "No Azure resource carries them."),
    (
        "targetNodeCommunicationMode",
        "Node communication mode",
        "Nodes reach batchsite one way only.",
    ),
]
# Start task properties stored the same way.
START_TASK_STORED_ONLY = [
    (
        "containerSettings",
        "Container",
        "The start task runs on the node itself, not in a container.",
    ),
]


def stored_only(spec: dict, properties: list[tuple[str, str, str]]) -> list[dict]:
    """The round-trip-only properties `spec` holds (not empty), each with its label, what
    batchsite does not do with it, and its value as sent."""
    return [
        {"name": name, "label": label, "why": why, "value": spec[name]}
        for name, label, why in properties
        if spec.get(name) not in (None, "", [], {})
    ]


@dataclass
class Button:
    action: str
    label: str
    url: str
    reason: str  # why it is disabled; "" when it is enabled
    opens: bool  # opens a form or a confirmation first
    danger: bool = False


# --- when a page polls ---------------------------------------------------------------------


def node_is_moving(node: ComputeNode) -> bool:
    """Will this node change by itself (its agent or the reconciler at work)?"""
    return node.state in MOVING_NODE_STATES or bool(node.pending_action)


def pool_is_live(pool: Pool, states: dict[str, int], *, moving: int, waiting: bool) -> bool:
    """Can the pool's page change without anyone acting? While it is resized, stopped or
    deleted, autoscaled (the next evaluation), while a node is on the move (`moving`), or
    while work waits (`waiting`: active tasks in its jobs) and an idle node can take it."""
    return (
        pool.state == Pool.State.DELETING
        or pool.allocation_state != Pool.AllocationState.STEADY
        or pool.enable_auto_scale
        or moving > 0
        or (waiting and states.get(State.IDLE, 0) > 0)
    )


def _waiting_pools(accounts, pools: list[Pool]) -> set[tuple[int, str]]:
    """(account pk, lowercase pool id) of the pools whose active jobs have active tasks. One
    query (jobs name their pool case-insensitively, as Batch does)."""
    if not pools:
        return set()
    rows = (
        Job.objects.filter(account__in=accounts, state=Job.State.ACTIVE, active_count__gt=0)
        .values_list("account_id", "pool_id")
        .distinct()
    )
    return {(account_pk, (pool_id or "").lower()) for account_pk, pool_id in rows}


# --- the pool list ---------------------------------------------------------------------------


def pool_rows(accounts) -> dict:
    """The pools of these accounts, each with its current nodes, its nodes per state and
    whether it is live. Four queries, however many pools and nodes."""
    pools = list(
        Pool.objects.filter(account__in=accounts)
        .select_related("account")
        .order_by("account__name", "id_key")
    )
    current = current_nodes(pools)
    states: dict[int, dict[str, int]] = {pool.pk: {} for pool in pools}
    moving: dict[int, int] = dict.fromkeys(states, 0)
    if pools:
        rows = (
            ComputeNode.objects.filter(pool__in=pools)
            .values("pool_id", "state")
            .annotate(n=Count("pk"), pending=Count("pk", filter=~Q(pending_action="")))
        )
        for row in rows:
            states[row["pool_id"]][row["state"]] = row["n"]
            moving[row["pool_id"]] += row["pending"] + (
                row["n"] if row["state"] in MOVING_NODE_STATES else 0
            )
    waiting = _waiting_pools(accounts, pools)
    for pool in pools:
        pool.current_dedicated, pool.current_low_priority = current[pool.pk]
        pool.state_counts = [
            (s.value, states[pool.pk][s]) for s in NODE_STATE_ORDER if states[pool.pk].get(s)
        ]
        pool.node_total = sum(states[pool.pk].values())
        pool.live = pool_is_live(
            pool,
            states[pool.pk],
            moving=moving[pool.pk],
            waiting=(pool.account_id, pool.id_key) in waiting,
        )
    return {"pools": pools, "live": any(pool.live for pool in pools)}


# --- a pool ----------------------------------------------------------------------------------


def pool_context(access: Access, pool: Pool, *, node_state: str = "") -> dict:
    """Everything a pool's page shows: its nodes (one query) with what runs on them (one),
    its current node counts (one), the jobs that use it (one). With `node_state` the node
    table lists only the nodes in that state; every count is still of them all."""
    nodes = list(ComputeNode.objects.filter(pool=pool).order_by("node_id")[: NODE_LIMIT + 1])
    more_nodes, nodes = len(nodes) > NODE_LIMIT, nodes[:NODE_LIMIT]
    running = running_by_node(
        Attempt.objects.filter(node__in=nodes, outcome=Attempt.Outcome.RUNNING)
    )
    dedicated, low_priority = current_nodes([pool])[pool.pk]
    jobs = list(
        Job.objects.filter(account_id=pool.account_id, pool_id__iexact=pool.pool_id)
        .exclude(state=Job.State.COMPLETED)
        .order_by("id_key")[:50]
    )
    states: dict[str, int] = {}
    for node in nodes:
        node.pool = pool
        node.running = running.get(node.pk, [])
        node.slots_used = sum(a.slots for a in node.running)
        states[node.state] = states.get(node.state, 0) + 1
    waiting = any(job.state == Job.State.ACTIVE and job.active_count for job in jobs)
    live = pool_is_live(pool, states, moving=sum(node_is_moving(n) for n in nodes), waiting=waiting)
    spec = without_secrets(pool.spec)
    return {
        **_progress(pool, states, dedicated, low_priority),
        "access": access,
        "account": access.account,
        "pool": pool,
        "nodes": nodes,
        "more_nodes": more_nodes,
        "node_filter": node_state,
        "listed": [n for n in nodes if n.state == node_state] if node_state else nodes,
        "current_dedicated": dedicated,
        "current_low_priority": low_priority,
        "jobs": jobs,
        "state_counts": [(s.value, states[s]) for s in NODE_STATE_ORDER if states.get(s)],
        "buttons": pool_buttons(access, pool),
        "live": live,
        "spec": spec,
        "start_task": start_task_json(spec.get("startTask")),
        "stored_only": stored_only(spec, STORED_ONLY),
        "start_task_stored_only": stored_only(spec.get("startTask") or {}, START_TASK_STORED_ONLY),
        "slots_used": sum(n.slots_used for n in nodes),
        "slots": sum(n.slots for n in nodes),
        "run_results": autoscale_results(pool.auto_scale_run),
    }


def _progress(pool: Pool, states: dict[str, int], dedicated: int, low_priority: int) -> dict:
    """How far the pool is from its targets: nodes ready to work (idle or running), nodes on
    their way (being made, starting, running the start task, restarting), when the current
    resize times out, and how many nodes a steady pool is short of its targets."""
    deadline = None
    if (
        pool.allocation_state == Pool.AllocationState.RESIZING
        and pool.allocation_state_transition_time
    ):
        deadline = pool.allocation_state_transition_time + (
            pool.resize_timeout or DEFAULT_RESIZE_TIMEOUT
        )
    steady = pool.allocation_state == Pool.AllocationState.STEADY
    return {
        "ready": sum(states.get(s, 0) for s in READY_STATES),
        "coming": sum(states.get(s, 0) for s in COMING_STATES),
        "resize_deadline": deadline,
        "short_dedicated": max(0, pool.target_dedicated_nodes - dedicated) if steady else 0,
        "short_low_priority": max(0, pool.target_low_priority_nodes - low_priority)
        if steady
        else 0,
    }


def pool_buttons(access: Access, pool: Pool) -> list[Button]:
    """The pool's action buttons, each disabled with its rule's refusal. Stop resize shows
    only while there is a resize to stop and Disable autoscale only on an autoscaled pool
    (on any other pool Batch lets them change nothing). A viewer gets none: the page says
    why once, and a POST of theirs is refused (403) whatever the rules say."""
    if not access.can_act:
        return []
    refusals = pool_refusals(pool)
    args = [access.account.name, pool.pool_id]
    buttons = []
    for name, label in POOL_ACTION_LABELS.items():
        if name == "stop-resize" and pool.allocation_state == Pool.AllocationState.STEADY:
            continue
        if name == "disable-autoscale" and not pool.enable_auto_scale:
            continue
        if name == "enable-autoscale":
            label = "Change formula…" if pool.enable_auto_scale else "Enable autoscale…"
        buttons.append(
            Button(
                name,
                label,
                reverse(f"web:pool-{name}", args=args),
                access.refusal(refusals[name]),
                name in POOL_FORMS,
                name == "delete",
            )
        )
    return buttons


def pool_button(access: Access, pool: Pool, action: str) -> Button:
    """One action's button, shown or not on the page (its form or confirmation needs it)."""
    refusal = access.refusal(pool_refusals(pool)[action])
    url = reverse(f"web:pool-{action}", args=[access.account.name, pool.pool_id])
    return Button(
        action, POOL_ACTION_LABELS[action], url, refusal, action in POOL_FORMS, action == "delete"
    )


def autoscale_results(run: dict | None) -> list[tuple[str, str]]:
    """An AutoScaleRun's `results` ("$TargetDedicatedNodes=1;$x=2") as (name, value) pairs."""
    text = (run or {}).get("results") or ""
    pairs = []
    for item in text.split(";"):
        name, sep, value = item.partition("=")
        if sep and name.strip():
            pairs.append((name.strip(), value))
    return pairs


def reload_pool(pool: Pool) -> Pool | None:
    """The pool as it is now (one query), keeping its account; None when it is gone."""
    fresh = Pool.objects.filter(pk=pool.pk).first()
    if fresh is not None:
        fresh.account = pool.account
    return fresh


# --- a node ----------------------------------------------------------------------------------


def running_by_node(attempts) -> dict[int, list[Attempt]]:
    """Running attempts with their task and job, by node pk. One query."""
    out: dict[int, list[Attempt]] = {}
    for attempt in attempts.select_related("task", "job").order_by("claimed"):
        out.setdefault(attempt.node_id, []).append(attempt)
    return out


def node_context(access: Access, node: ComputeNode) -> dict:
    """Everything a node's page shows: what runs there now (one query), its latest runs
    (one), whether work waits for its pool (one), and the start task's output (read from
    the task-file storage, no query)."""
    pool = node.pool
    running = running_by_node(
        Attempt.objects.filter(node=node, outcome=Attempt.Outcome.RUNNING)
    ).get(node.pk, [])
    recent = list(
        Attempt.objects.filter(node=node)
        .select_related("task", "job")
        .order_by("-claimed")[:RECENT_RUNS]
    )
    waiting = Job.objects.filter(
        account_id=pool.account_id,
        pool_id__iexact=pool.pool_id,
        state=Job.State.ACTIVE,
        active_count__gt=0,
    ).exists()
    live = node_is_moving(node) or (waiting and node.state == State.IDLE)
    return {
        **node_output_context(access, node),
        "running": running,
        "recent": recent,
        "slots_used": sum(a.slots for a in running),
        "live": live,
        "buttons": node_buttons(access, node),
        "start_task": start_task_json(without_secrets(pool.spec).get("startTask")),
        "start_info": node.start_task_info or {},
        "order": order_text(node),
        "agent_version": AGENT_VERSION,
        "tail": lambda: files.node_tail(node, START_TASK_FILES[0]),
    }


def node_output_context(access: Access, node: ComputeNode, name: str = START_TASK_FILES[0]) -> dict:
    """What the output panel of one of the node's files needs besides the tail (no query): it
    follows the start task's output while the start task runs, and any other file while
    tasks run on the node."""
    if name in START_TASK_FILES:
        info = node.start_task_info or {}
        following = info.get("state") == Task.State.RUNNING or node.state in (
            State.STARTING,
            State.WAITINGFORSTARTTASK,
        )
    else:
        following = node.state == State.RUNNING
    return {
        "access": access,
        "account": access.account,
        "pool": node.pool,
        "node": node,
        "start_files": START_TASK_FILES,
        "output_live": following,
    }


@dataclass
class NodeDirectory:
    """The files listed in one directory under a node's root, named relative to it."""

    name: str  # "" for the root itself
    task: tuple[str, str] | None  # (job id, task id) when it is (in) a task's directory
    files: list[tuple[str, FileInfo]]  # (name within the directory, entry)
    anchor: str = (
        ""  # the top directory (startup, shared, workitems) when it is the first listed in it
    )


def node_files_context(access: Access, node: ComputeNode) -> dict:
    """The node's files page: what is under its root (read from the task-file storage, no
    query), by directory, each task's directory naming its task."""
    listing = files.node_listing(node)
    directories: dict[str, NodeDirectory] = {}
    for info in listing:
        parent, _, base = info.name.rpartition("/")
        if parent not in directories:
            top = parent.split("/", 1)[0]
            first = bool(top) and all(d.name.split("/", 1)[0] != top for d in directories.values())
            directories[parent] = NodeDirectory(parent, _task_of(parent), [], top if first else "")
        directories[parent].files.append((base, info))
    return {
        "access": access,
        "account": access.account,
        "pool": node.pool,
        "node": node,
        "directories": list(directories.values()),
        "file_count": len(listing),
        "more": listing.more,
        "tops": list(
            dict.fromkeys(d.name.split("/", 1)[0] for d in directories.values() if d.name)
        ),
    }


def _task_of(directory: str) -> tuple[str, str] | None:
    """workitems/<job>/job-1/<task> and what is below it name the task (tasks.nodehost.layout)."""
    parts = directory.split("/")
    if len(parts) >= 4 and parts[0] == WORKITEMS_DIR and parts[2] == "job-1":
        return parts[1], parts[3]
    return None


def node_buttons(access: Access, node: ComputeNode) -> list[Button]:
    """The node's action buttons, each disabled with its rule's refusal. Of Disable and
    Enable scheduling only the one that can change something shows (the other's rule would
    only say the node is in that state already). A viewer gets none, as on the pool page."""
    if not access.can_act:
        return []
    refusals = node_refusals(node)
    args = [access.account.name, node.pool.pool_id, node.node_id]
    hidden = "enable-scheduling" if node.scheduling_enabled else "disable-scheduling"
    return [
        Button(
            name,
            NODE_ACTION_TEXT[name][0],
            reverse(f"web:node-{name}", args=args),
            access.refusal(refusals[name]),
            name in CONFIRMED_NODE_ACTIONS,
            name in ("reimage", "remove"),
        )
        for name in NODE_ACTIONS
        if name != hidden
    ]


def node_button(access: Access, node: ComputeNode, action: str) -> Button:
    """One action's button, shown on the page or not (its confirmation needs it)."""
    refusal = access.refusal(node_refusals(node)[action])
    url = reverse(f"web:node-{action}", args=[access.account.name, node.pool.pool_id, node.node_id])
    return Button(
        action,
        NODE_ACTION_TEXT[action][0],
        url,
        refusal,
        action in CONFIRMED_NODE_ACTIONS,
        action in ("reimage", "remove"),
    )


def node_action_context(access: Access, node: ComputeNode, action: str) -> dict:
    """A node action's confirmation: what it does, its options and why it may be refused."""
    label, text = NODE_ACTION_TEXT[action]
    button = node_button(access, node, action)
    options = [(o, OPTION_HELP[o]) for o in NODE_ACTIONS[action].options]
    return {
        **node_context(access, node),
        "action": action,
        "label": label,
        "text": text,
        "button": button,
        "options": options,
    }


def order_text(node: ComputeNode) -> str:
    """The node's pending order, as people read it ("" when there is none)."""
    if node.pending_action == ComputeNode.Action.REMOVE:
        what = "leave the pool"
    elif node.pending_action:
        what = node.pending_action
    else:
        return ""
    option = node.action_option or NodeDeallocationOption.REQUEUE
    return f"Asked to {what} ({option}): {OPTION_HELP.get(option, '')}"


def reload_node(node: ComputeNode) -> ComputeNode | None:
    """The node as it is now (one query), keeping its pool; None when it has left."""
    fresh = ComputeNode.objects.filter(pk=node.pk).first()
    if fresh is not None:
        fresh.pool = node.pool
    return fresh
