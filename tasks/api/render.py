"""Batch JSON of our resources (REFERENCE §7, §9, §12): camelCase, lowercase enums,
absent values omitted, times in the service's 7-digit form."""

from __future__ import annotations

from tasks.models import Job, SubTask, Task
from tasks.nodehost.layout import task_key_within_node
from tasks.timefmt import format_datetime_wire as dt
from tasks.timefmt import format_duration

NEW_API = "2025-06-01"


def _int64(value: int, version: str):
    # 2025-06-01 encodes int64 as JSON strings; older versions as numbers (both SDKs
    # accept either).
    return str(value) if version == NEW_API else value


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None and v != ""}


def task_url(base: str, job_id: str, task_id: str) -> str:
    return f"{base}/jobs/{job_id}/tasks/{task_id}"


def node_url(base: str, pool_id: str, node_id: str) -> str:
    return f"{base}/pools/{pool_id}/nodes/{node_id}"


def task_json(task: Task, *, base: str, job_id: str, version: str, stats: bool = False) -> dict:
    spec = task.spec
    execution = {
        "startTime": dt(task.start_time),
        "endTime": dt(task.end_time),
        "exitCode": task.exit_code,
        "failureInfo": task.failure_info,
        "retryCount": task.retry_count,
        "lastRetryTime": dt(task.last_retry_time),
        "requeueCount": task.requeue_count,
        "lastRequeueTime": dt(task.last_requeue_time),
        "result": task.result or None,
    }
    out = {
        "id": task.task_id,
        "displayName": task.display_name or None,
        "url": task_url(base, job_id, task.task_id),
        "eTag": task.etag,
        "lastModified": dt(task.last_modified),
        "creationTime": dt(task.creation_time),
        "exitConditions": spec.get("exitConditions"),
        "state": task.state,
        "stateTransitionTime": dt(task.state_transition_time),
        "previousState": task.previous_state or None,
        "previousStateTransitionTime": dt(task.previous_state_transition_time)
        if task.previous_state
        else None,
        "commandLine": task.command_line,
        "containerSettings": spec.get("containerSettings"),
        "resourceFiles": spec.get("resourceFiles"),
        "outputFiles": spec.get("outputFiles"),
        "environmentSettings": spec.get("environmentSettings"),
        "affinityInfo": spec.get("affinityInfo"),
        "constraints": {
            "maxWallClockTime": format_duration(task.max_wall_clock_time),
            "retentionTime": format_duration(task.retention_time),
            "maxTaskRetryCount": task.max_task_retry_count,
        },
        "requiredSlots": task.required_slots,
        "userIdentity": spec.get("userIdentity")
        or {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
        "executionInfo": _drop_none(execution),
        "nodeInfo": _node_info(task, base) if task.node_name else None,
        "multiInstanceSettings": spec.get("multiInstanceSettings"),
        "dependsOn": spec.get("dependsOn"),
        "applicationPackageReferences": spec.get("applicationPackageReferences"),
    }
    if version != NEW_API and "authenticationTokenSettings" in spec:
        out["authenticationTokenSettings"] = spec["authenticationTokenSettings"]
    if stats:
        out["stats"] = task_stats_json(task, base=base, job_id=job_id, version=version)
    return _drop_none(out)


def _node_info(task: Task, base: str) -> dict:
    return _drop_none(
        {
            "affinityId": task.affinity_id or None,
            "nodeUrl": node_url(base, task.pool_id, task.node_name),
            "poolId": task.pool_id,
            "nodeId": task.node_name,
            "taskRootDirectory": task.task_root_directory or None,
            "taskRootDirectoryUrl": f"{task_url(base, task.job.job_id, task.task_id)}/files"
            if task.task_root_directory
            else None,
        }
    )


def task_stats_json(task: Task, *, base: str, job_id: str, version: str) -> dict:
    zero = "PT0S"
    return {
        "url": task_url(base, job_id, task.task_id),
        "startTime": dt(task.start_time or task.creation_time),
        "lastUpdateTime": dt(task.last_modified),
        "userCPUTime": format_duration(task.user_cpu_time)
        if task.user_cpu_time is not None
        else zero,
        "kernelCPUTime": format_duration(task.kernel_cpu_time)
        if task.kernel_cpu_time is not None
        else zero,
        "wallClockTime": format_duration(task.wall_clock_time)
        if task.wall_clock_time is not None
        else zero,
        "readIOps": _int64(task.read_iops, version),
        "writeIOps": _int64(task.write_iops, version),
        "readIOGiB": task.read_io_gib,
        "writeIOGiB": task.write_io_gib,
        "waitTime": format_duration(task.wait_time) if task.wait_time is not None else zero,
    }


def subtask_json(sub: SubTask, *, base: str, job_id: str, task_id: str) -> dict:
    node = node_url(base, sub.pool_id, sub.node_name) if sub.node_name else None
    return _drop_none(
        {
            "id": sub.subtask_id,
            "nodeInfo": _drop_none(
                {
                    "affinityId": f"TVM:{sub.node_name}" if sub.node_name else None,
                    "nodeUrl": node,
                    "poolId": sub.pool_id or None,
                    "nodeId": sub.node_name or None,
                    "taskRootDirectory": sub.task_root_directory or None,
                    # A subtask's directory is on its own node: the node's files, as Batch gives it.
                    "taskRootDirectoryUrl": f"{node}/files/{task_key_within_node(job_id, task_id)}"
                    if node
                    else None,
                }
            )
            or None,
            "startTime": dt(sub.start_time),
            "endTime": dt(sub.end_time),
            "exitCode": sub.exit_code,
            "failureInfo": sub.failure_info,
            "state": sub.state,
            "stateTransitionTime": dt(sub.state_transition_time),
            "previousState": sub.previous_state or None,
            "previousStateTransitionTime": dt(sub.previous_state_transition_time)
            if sub.previous_state
            else None,
            "result": sub.result or None,
        }
    )


def job_json(job: Job, *, base: str, version: str, stats: bool = False) -> dict:
    spec = job.spec
    out = {
        "id": job.job_id,
        "displayName": job.display_name or None,
        "usesTaskDependencies": job.uses_task_dependencies,
        "url": f"{base}/jobs/{job.job_id}",
        "eTag": job.etag,
        "lastModified": dt(job.last_modified),
        "creationTime": dt(job.creation_time),
        "state": job.state,
        "stateTransitionTime": dt(job.state_transition_time),
        "previousState": job.previous_state or None,
        "previousStateTransitionTime": dt(job.previous_state_transition_time)
        if job.previous_state
        else None,
        "priority": job.priority,
        "allowTaskPreemption": spec.get("allowTaskPreemption"),
        "maxParallelTasks": job.max_parallel_tasks,
        "constraints": {
            "maxWallClockTime": format_duration(job.max_wall_clock_time),
            "maxTaskRetryCount": job.max_task_retry_count,
        },
        "jobManagerTask": spec.get("jobManagerTask"),
        "jobPreparationTask": spec.get("jobPreparationTask"),
        "jobReleaseTask": spec.get("jobReleaseTask"),
        "commonEnvironmentSettings": spec.get("commonEnvironmentSettings"),
        "poolInfo": spec.get("poolInfo") or {"poolId": job.pool_id},
        "onAllTasksComplete": job.on_all_tasks_complete,
        "onTaskFailure": job.on_task_failure,
        "networkConfiguration": spec.get("networkConfiguration"),
        "metadata": spec.get("metadata"),
        "executionInfo": _drop_none(
            {
                "startTime": dt(job.start_time),
                "endTime": dt(job.end_time),
                "poolId": job.pool_id,
                "terminateReason": job.terminate_reason or None,
            }
        ),
    }
    if stats:
        zero = "PT0S"
        out["stats"] = {
            "url": f"{base}/jobs/{job.job_id}",
            "startTime": dt(job.creation_time),
            "lastUpdateTime": dt(job.last_modified),
            "userCPUTime": zero,
            "kernelCPUTime": zero,
            "wallClockTime": zero,
            "readIOps": _int64(0, version),
            "writeIOps": _int64(0, version),
            "readIOGiB": 0.0,
            "writeIOGiB": 0.0,
            "numSucceededTasks": _int64(job.succeeded_count, version),
            "numFailedTasks": _int64(job.failed_count, version),
            "numTaskRetries": _int64(0, version),
            "waitTime": zero,
        }
    return _drop_none(out)


def task_counts_json(job: Job) -> dict:
    return {
        "taskCounts": {
            "active": job.active_count,
            "running": job.running_count,
            "completed": job.completed_count,
            "succeeded": job.succeeded_count,
            "failed": job.failed_count,
        },
        "taskSlotCounts": {
            "active": job.active_slots,
            "running": job.running_slots,
            "completed": job.completed_slots,
            "succeeded": job.succeeded_slots,
            "failed": job.failed_slots,
        },
    }
