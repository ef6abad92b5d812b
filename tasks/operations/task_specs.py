"""A new task made from its wire spec: the unsaved Task row that Add Task, Add Task
Collection (tasks.py) and a job's job manager task (job_manager.py) all start from."""

from __future__ import annotations

from datetime import datetime, timedelta

from tasks.models import Job, Task, new_etag

from .fast_insert import new_instance

DEFAULT_RETENTION = timedelta(days=7)  # constraints.retentionTime when not given
# Wire properties kept verbatim in Task.spec (everything but what has its own column).
_COLUMNS = {"id", "displayName", "commandLine", "constraints", "requiredSlots"}


def new_task(job: Job, spec: dict, t: datetime) -> Task:
    """The active task `spec` makes in `job` at `t` (not saved): its columns from the spec,
    constraints defaulting to the job's maxTaskRetryCount and DEFAULT_RETENTION."""
    constraints = spec.get("constraints") or {}
    multi = spec.get("multiInstanceSettings") or {}
    return new_instance(
        Task,
        {"job": job},
        task_id=spec["id"],
        id_key=spec["id"].lower(),
        display_name=spec.get("displayName") or "",
        command_line=spec["commandLine"],
        required_slots=spec.get("requiredSlots", 1),
        number_of_instances=multi.get("numberOfInstances", 1) if multi else 1,
        max_wall_clock_time=constraints.get("maxWallClockTime"),
        retention_time=constraints.get("retentionTime", DEFAULT_RETENTION),
        max_task_retry_count=constraints.get("maxTaskRetryCount", job.max_task_retry_count),
        spec={k: v for k, v in spec.items() if k not in _COLUMNS},
        state=Task.State.ACTIVE,
        state_transition_time=t,
        creation_time=t,
        last_modified=t,
        etag=new_etag(),
    )
