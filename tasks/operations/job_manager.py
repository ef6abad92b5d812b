"""The job manager task: a job's jobManagerTask, made a task of the job when the job is
added, scheduled before the job's other tasks, and ending the job when it completes.

Batch's rules (JobManagerTask in the REST spec): the task has the manager's id and is
listed with the job's tasks; the service schedules it before any other task of the job
(here: while it has never started, the job's other tasks are not claimed); runExclusive
(default true) gives it a node that runs nothing else while it runs; allowLowPriorityNode
false keeps it off spot/low-priority nodes; killJobOnCompletion (default true) terminates
the job when it completes (terminateReason JMComplete), ending its running tasks as Terminate
Job does (ends_job says when; jobs.end_job_of_manager does it). It is retried like any task
(constraints.maxTaskRetryCount) and requeued when its node is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.models import ComputeNode, Job, Task
from tasks.timefmt import parse_duration

from .constraints import check_max_task_retry_count
from .counts import CountDelta
from .pool_specs import wire
from .task_specs import new_task

MANAGER = "jobManagerTask"
# The JobManagerTask properties that describe how the job treats it, not the task itself:
# they stay in the job's jobManagerTask, where the claim and the finish read them.
_JOB_ONLY = ("killJobOnCompletion", "runExclusive", "allowLowPriorityNode")
TERMINATE_REASON = "JMComplete"


def stored(spec: dict) -> dict:
    """The job's stored spec with its jobManagerTask in wire form (durations as ISO 8601
    text), as Get Job returns it."""
    if isinstance(spec.get(MANAGER), dict):
        spec = {**spec, MANAGER: wire(spec[MANAGER])}
    return spec


def manager_of(job: Job) -> dict | None:
    """The job's jobManagerTask (wire form), or None."""
    found = (job.spec or {}).get(MANAGER)
    return found if isinstance(found, dict) and found.get("id") else None


def is_job_manager(job: Job, task: Task) -> bool:
    """Whether the task is its job's job manager task (ids compare case-insensitively)."""
    manager = manager_of(job)
    return manager is not None and manager["id"].lower() == task.task_id.lower()


def add_job_manager_task(job: Job) -> Task | None:
    """Make the job's jobManagerTask a task of the job: call inside the transaction that
    inserted the job. The task gets the manager's id, command line, files, environment,
    identity, token settings, requiredSlots and constraints (durations parsed: the spec may
    come from the API or, in wire form, from a job schedule). Refuses a maxTaskRetryCount
    below -1 (400 InvalidPropertyValue), which rolls the job's insert back."""
    manager = manager_of(job)
    if manager is None:
        return None
    spec = {k: v for k, v in manager.items() if k not in _JOB_ONLY}
    constraints = dict(spec.get("constraints") or {})
    for name in ("maxWallClockTime", "retentionTime"):
        if isinstance(constraints.get(name), str):
            constraints[name] = parse_duration(constraints[name])
    if constraints:
        check_max_task_retry_count(constraints, path=f"{MANAGER}.constraints")
        spec["constraints"] = constraints
    task = new_task(job, spec, job.creation_time)
    task.save(force_insert=True)
    delta = CountDelta()
    delta.add(Task.State.ACTIVE, "", task.required_slots)
    delta.apply(job.pk)
    return task


@dataclass(frozen=True)
class ClaimRule:
    """How a claim treats a job that has a job manager task."""

    key: str  # the manager's id, lower-cased
    exclusive: bool  # runExclusive
    low_priority_ok: bool  # allowLowPriorityNode

    def slots_for(self, task: Task, node: ComputeNode, free: int) -> int | None:
        """The slots `task` holds on `node` (which has `free` of its slots free), or None
        when the manager cannot run there: a low-priority node it may not use, or (with
        runExclusive) a node that runs something. An exclusive manager holds all of the
        node's slots, so nothing else is claimed there while it runs."""
        if task.task_id.lower() != self.key:
            return task.required_slots
        if not self.low_priority_ok and not node.is_dedicated:
            return None
        if self.exclusive:
            return node.slots if free == node.slots and task.required_slots <= node.slots else None
        return task.required_slots

    def holds_back(self, task: Task) -> bool:
        """A manager that has never started holds its job's other tasks back: Batch starts
        it first."""
        return task.task_id.lower() == self.key and not task.previous_state


def claim_rule(job: Job) -> ClaimRule | None:
    """The claim's rule for the job (None: it has no job manager task)."""
    manager = manager_of(job)
    if manager is None:
        return None
    return ClaimRule(
        manager["id"].lower(),
        manager.get("runExclusive", True) is not False,
        manager.get("allowLowPriorityNode", True) is not False,
    )


def ends_job(job: Job, task: Task) -> bool:
    """Whether the completion of `task` ends its job: it is the job manager and its
    killJobOnCompletion is true (the default). Reads the task's id_key."""
    manager = manager_of(job)
    return (
        manager is not None
        and manager.get("killJobOnCompletion", True) is not False
        and manager["id"].lower() == task.id_key
    )
