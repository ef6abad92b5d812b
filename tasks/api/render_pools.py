"""Batch JSON of pools, compute nodes and node counts (BatchPool / CloudPool, BatchNode /
ComputeNode, BatchPoolNodeCounts): camelCase, lowercase enums, absent values omitted, times
in the service's 7-digit form, int64 as strings on 2025-06-01.

A pool's specification is stored in wire form (tasks.operations.pool_specs.stored) and
returned as sent, with the defaults Batch fills in, except its secrets: passwords, keys,
private keys and protected settings are write-only, as a key vault's are.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from tasks.models import Attempt, ComputeNode, Pool, Task
from tasks.nodehost import AGENT_VERSION
from tasks.operations.pool_specs import DEFAULT_EVALUATION_INTERVAL, DEFAULT_RESIZE_TIMEOUT
from tasks.timefmt import format_datetime_wire as dt
from tasks.timefmt import format_duration
from tasks.wire.redaction import start_task_json, without_secrets

from .render import NEW_API, _drop_none, _int64, node_url, task_url

# Properties of a pool only the api-versions before 2025-06-01 have (REFERENCE §14).
OLD_API_ONLY = (
    "certificateReferences",
    "resourceTags",
    "targetNodeCommunicationMode",
    "applicationLicenses",
    "cloudServiceConfiguration",
)
# The node states Batch counts in BatchNodeCounts, by their property names there.
COUNTED_STATES = {
    "creating": "creating",
    "idle": "idle",
    "offline": "offline",
    "preempted": "preempted",
    "rebooting": "rebooting",
    "reimaging": "reimaging",
    "running": "running",
    "starting": "starting",
    "starttaskfailed": "startTaskFailed",
    "leavingpool": "leavingPool",
    "unknown": "unknown",
    "unusable": "unusable",
    "waitingforstarttask": "waitingForStartTask",
    "upgradingos": "upgradingOS",
}
NEW_API_COUNTED_STATES = {"deallocated": "deallocated", "deallocating": "deallocating"}
GIB = 1024**3


def pool_url(base: str, pool_id: str) -> str:
    return f"{base}/pools/{pool_id}"


def pool_json(
    pool: Pool,
    *,
    base: str,
    version: str,
    current: tuple[int, int] = (0, 0),
    stats: dict | None = None,
) -> dict:
    """BatchPool. `current` is (currentDedicatedNodes, currentLowPriorityNodes)
    (pools.current_nodes); `stats` the pool's statistics when $expand=stats asked."""
    spec = without_secrets(pool.spec)
    auto = pool.enable_auto_scale
    out = {
        "id": pool.pool_id,
        "displayName": spec.get("displayName"),
        "url": pool_url(base, pool.pool_id),
        "eTag": pool.etag,
        "lastModified": dt(pool.last_modified),
        "creationTime": dt(pool.creation_time),
        "state": pool.state,
        "stateTransitionTime": dt(pool.state_transition_time),
        "allocationState": pool.allocation_state,
        "allocationStateTransitionTime": dt(
            pool.allocation_state_transition_time or pool.creation_time
        ),
        "vmSize": pool.vm_size,
        "virtualMachineConfiguration": spec.get("virtualMachineConfiguration"),
        "resizeTimeout": format_duration(pool.resize_timeout or DEFAULT_RESIZE_TIMEOUT),
        # Batch shows the last resize's errors once the pool is steady again.
        "resizeErrors": (pool.resize_errors or None)
        if pool.allocation_state == Pool.AllocationState.STEADY
        else None,
        "currentDedicatedNodes": current[0],
        "currentLowPriorityNodes": current[1],
        "targetDedicatedNodes": pool.target_dedicated_nodes,
        "targetLowPriorityNodes": pool.target_low_priority_nodes,
        "enableAutoScale": auto,
        "autoScaleFormula": (pool.auto_scale_formula or None) if auto else None,
        "autoScaleEvaluationInterval": format_duration(
            pool.auto_scale_evaluation_interval or DEFAULT_EVALUATION_INTERVAL
        )
        if auto
        else None,
        "autoScaleRun": pool.auto_scale_run if auto else None,
        "enableInterNodeCommunication": spec.get("enableInterNodeCommunication", False),
        "networkConfiguration": spec.get("networkConfiguration"),
        "startTask": start_task_json(spec.get("startTask")),
        "applicationPackageReferences": spec.get("applicationPackageReferences"),
        "taskSlotsPerNode": pool.task_slots_per_node,
        "taskSchedulingPolicy": spec.get("taskSchedulingPolicy") or {"nodeFillType": "spread"},
        "userAccounts": spec.get("userAccounts"),
        "metadata": spec.get("metadata"),
        "stats": stats,
        "mountConfiguration": spec.get("mountConfiguration"),
        "upgradePolicy": spec.get("upgradePolicy"),
    }
    if version != NEW_API:
        for name in OLD_API_ONLY:
            out[name] = spec.get(name)
    return _drop_none(out)


def pool_stats_json(
    pool: Pool, *, base: str, version: str, nodes: dict, cores: int, at: datetime
) -> dict:
    """BatchPoolStatistics over the pool's current nodes: `nodes` holds their count of
    dedicated nodes and the sum of their ages in seconds (`dedicated`, `dedicated_seconds`),
    their average CPU percentage and average and peak memory in bytes as the agents last
    reported them (`cpu`, `memory`, `peak_memory`, None when none reported). Disk and
    network I/O are not measured: 0."""
    usage = {
        "startTime": dt(pool.creation_time),
        "lastUpdateTime": dt(at),
        "dedicatedCoreTime": format_duration(
            timedelta(seconds=round(nodes["dedicated_seconds"] * cores))
        ),
    }
    resource = {
        "startTime": dt(pool.creation_time),
        "lastUpdateTime": dt(at),
        "avgCPUPercentage": float(nodes["cpu"] or 0.0),
        "avgMemoryGiB": (nodes["memory"] or 0) / GIB,
        "peakMemoryGiB": (nodes["peak_memory"] or 0) / GIB,
        "avgDiskGiB": 0.0,
        "peakDiskGiB": 0.0,
        "diskReadIOps": _int64(0, version),
        "diskWriteIOps": _int64(0, version),
        "diskReadGiB": 0.0,
        "diskWriteGiB": 0.0,
        "networkReadGiB": 0.0,
        "networkWriteGiB": 0.0,
    }
    return {
        "url": pool_url(base, pool.pool_id),
        "startTime": dt(pool.creation_time),
        "lastUpdateTime": dt(at),
        "usageStats": usage,
        "resourceStats": resource,
    }


# --- nodes -------------------------------------------------------------------------------


_RESULTS = {
    Attempt.Outcome.SUCCEEDED: "success",
    Attempt.Outcome.FAILED: "failure",
    Attempt.Outcome.TERMINATED: "failure",
}


def recent_task_json(attempt: Attempt, *, base: str) -> dict:
    """BatchTaskInfo: one of the node's latest runs, with the task's state now."""
    task: Task = attempt.task
    execution = _drop_none(
        {
            "startTime": dt(attempt.start_time or attempt.claimed),
            "endTime": dt(attempt.end_time),
            "exitCode": attempt.exit_code,
            "failureInfo": attempt.failure_info,
            "retryCount": max(0, attempt.number - 1),
            "requeueCount": task.requeue_count,
            "result": _RESULTS.get(attempt.outcome),
        }
    )
    return _drop_none(
        {
            "taskUrl": task_url(base, attempt.job.job_id, task.task_id),
            "jobId": attempt.job.job_id,
            "taskId": task.task_id,
            "subtaskId": attempt.subtask_id,
            "taskState": task.state,
            "executionInfo": execution,
        }
    )


def node_json(
    node: ComputeNode,
    *,
    base: str,
    version: str,
    running_tasks: int = 0,
    running_slots: int = 0,
    recent: Iterable[Attempt] = (),
) -> dict:
    """BatchNode. `node.pool` must be loaded; `recent` are its latest attempts
    (tasks.queries.nodes.list_recent_tasks_of_nodes)."""
    pool = node.pool
    image = (pool.spec.get("virtualMachineConfiguration") or {}).get("imageReference") or {}
    out = {
        "id": node.node_id,
        "url": node_url(base, pool.pool_id, node.node_id),
        "state": node.state,
        "schedulingState": "enabled" if node.scheduling_enabled else "disabled",
        "stateTransitionTime": dt(node.state_transition_time),
        "lastBootTime": dt(node.registered),
        "allocationTime": dt(node.allocation_time or node.registered),
        "ipAddress": node.ip_address or "127.0.0.1",
        "affinityId": f"TVM:{node.node_id}",
        "vmSize": pool.vm_size,
        "totalTasksRun": node.total_tasks_run,
        "runningTasksCount": running_tasks,
        "runningTaskSlotsCount": running_slots,
        "totalTasksSucceeded": node.total_tasks_succeeded,
        "recentTasks": [recent_task_json(a, base=base) for a in recent] or None,
        "startTask": start_task_json(pool.spec.get("startTask")),
        "startTaskInfo": node.start_task_info or None,
        "errors": node.errors or None,
        "isDedicated": node.is_dedicated,
        "nodeAgentInfo": {"version": AGENT_VERSION, "lastUpdateTime": dt(node.registered)},
        "virtualMachineInfo": {"imageReference": image},
    }
    if node.state == ComputeNode.State.CREATING:
        out["ipAddress"] = node.ip_address or None  # no agent yet: no address, no agent version
        out["nodeAgentInfo"] = None
    return _drop_none(out)


def node_counts_json(pool_id: str, counts: dict[tuple[bool, str], int], *, version: str) -> dict:
    """BatchPoolNodeCounts: the pool's nodes by kind and state. `counts` maps
    (is_dedicated, state) to a number of nodes."""
    names = dict(COUNTED_STATES, **(NEW_API_COUNTED_STATES if version == NEW_API else {}))

    def kind(dedicated: bool) -> dict:
        out = {name: counts.get((dedicated, state), 0) for state, name in names.items()}
        out["total"] = sum(n for (d, _), n in counts.items() if d == dedicated)
        return out

    return {"poolId": pool_id, "dedicated": kind(True), "lowPriority": kind(False)}
