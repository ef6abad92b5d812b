"""The attempt lifecycle's Batch rules as plain functions over plain values: which tasks a
claim takes, what an exit means (failure information, exit options, retries, the job
action), requeue, and the hand-off between the instances of a multi-instance task.

Nothing here reads or writes the database: tasks/operations/attempts.py reads the values
(through tasks/operations/attempt_store.py), asks these rules, and writes the answers.
They are tested without a database (tests/operations/test_attempt_rules.py). Which
exitOptions apply to an exit, and whether a task satisfies its dependants, are
tasks/exit_conditions.py's: the dependency reads (tasks/queries) apply them too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from tasks.exit_conditions import exit_options
from tasks.models import Attempt, ComputeNode, ExitJobAction, Job, Task

# Node states in which a node takes new work.
SCHEDULABLE_NODE_STATES = (ComputeNode.State.IDLE, ComputeNode.State.RUNNING)
FAILURE_EXIT_MESSAGE = "The task exited with an exit code representing a failure"


# --- claim -------------------------------------------------------------------------------


def takes_work(state: str, scheduling_enabled: bool, free_slots: int) -> bool:
    """A node takes work only while idle or running, with scheduling enabled and a free
    slot."""
    return state in SCHEDULABLE_NODE_STATES and scheduling_enabled and free_slots > 0


def fill_type(pool_spec: dict) -> str:
    """The pool's taskSchedulingPolicy.nodeFillType: spread (Batch's default) or pack."""
    policy = pool_spec.get("taskSchedulingPolicy") or {}
    return (policy.get("nodeFillType") or "spread").lower()


def needs_placement(active_tasks: int, free: int, others_capacity: int) -> bool:
    """Whether the fill type must place the work: with at least as many active tasks as the
    whole pool has slots, every slot fills whatever the fill type, and with no other node
    taking work there is nowhere else to put it."""
    return bool(others_capacity) and active_tasks < free + others_capacity


class Placement:
    """nodeFillType for one claim, given the other nodes' load as it was when it began.

    spread: a node takes a task only while it uses no more slots than the least loaded
    other node that could take it, so four tasks on two idle 4-slot nodes run two and two.
    pack: a node takes a task only if no other node that could take it is fuller (fewer
    free slots; the lower node id on a tie), so they run four on one node. Only nodes with
    free slots for the task count: a full node holds nothing back, and neither does one
    whose heartbeat is stale (the caller leaves those out of `others`).
    """

    def __init__(
        self, fill: str, node_id: str, slots: int, others: list[tuple[str, int, int]]
    ) -> None:
        # others: (node id, slots in use, free slots) of each other node taking work
        self.pack = fill == "pack"
        self.node_id, self.slots, self.others = node_id, slots, others

    def allows(self, required_slots: int, free: int) -> bool:
        able = [o for o in self.others if o[2] >= required_slots]
        if not able:
            return True
        if self.pack:
            return not any(
                left < free or (left == free and node_id < self.node_id)
                for node_id, _, left in able
            )
        return self.slots - free <= min(used for _, used, _ in able)


def parallel_allowance(left: int, max_parallel_tasks: int, running: int) -> int:
    """How many more of a job's tasks a claim may start: what is left of its limit, and
    within maxParallelTasks (-1: no cap) given the job's running tasks."""
    if max_parallel_tasks == -1:
        return left
    return min(left, max_parallel_tasks - running)


class ManagerRule(Protocol):
    """What the claim asks of a job's job manager task (tasks.operations.job_manager)."""

    def slots_for(self, task, node, free: int) -> int | None: ...

    def holds_back(self, task) -> bool: ...


# slots_to_take's answer for a task that holds its job's other tasks back.
HOLD_BACK = -1


def slots_to_take(
    task, *, node, free: int, manager: ManagerRule | None, placement: Placement | None
) -> int | None:
    """The slots `task` takes on a node with `free` free slots: its requiredSlots (a job
    manager's may differ: job_manager.ClaimRule), or None when it cannot start here now
    (too few free slots, or the fill type leaves it to another node), or HOLD_BACK when it
    is a job manager that has not started and cannot start here: Batch starts a job's
    manager before its other tasks."""
    slots = task.required_slots if manager is None else manager.slots_for(task, node, free)
    if slots is None:
        return HOLD_BACK if manager.holds_back(task) else None
    if slots > free:
        return None
    if placement is not None and not placement.allows(slots, free):
        return None
    return slots


def pick_instance_nodes(free_by_node: dict, count: int) -> list | None:
    """For the `count` other instances of a multi-instance task, one slot each on distinct
    other nodes, those with most free slots first (ties in the order given), so instances
    spread over idle nodes; None unless every instance has a node (all or nothing: no
    node is held for a task that cannot start)."""
    ranked = sorted(
        (k for k, free in free_by_node.items() if free > 0), key=lambda k: -free_by_node[k]
    )
    if len(ranked) < count:
        return None
    return ranked[:count]


def scan_budgets(limit: int, resuming: bool) -> tuple[int, int]:
    """How many of a job's active tasks a claim reads from the oldest, and how many from
    where the last pass over the job stopped: all `limit` from the oldest unless a
    previous pass read `limit` without reaching the end; then half each, so that the oldest
    tasks keep their turn and every task behind a long run of tasks that cannot start is
    reached within a bounded number of passes."""
    if not resuming:
        return limit, 0
    head = max(limit // 2, 1)
    return head, limit - head


# --- exits -------------------------------------------------------------------------------


def failure(code: str, message: str, details: list[dict] | None = None) -> dict:
    """A task's failureInfo (category usererror)."""
    found = {"category": "usererror", "code": code, "message": message}
    if details:
        found["details"] = details
    return found


def failure_of(
    exit_code: int | None,
    *,
    failure_code: str = "",
    failure_message: str = "",
    failure_details: list[dict] | None = None,
    timed_out: bool = False,
) -> dict | None:
    """The failureInfo of an attempt's end, None for a success: the agent's failure (the
    command could not start, a file could not be placed or uploaded), TaskEnded for a task
    killed for exceeding maxWallClockTime, FailureExitCode for a non-zero exit code."""
    if failure_code:
        return failure(failure_code, failure_message, failure_details)
    if timed_out:
        return failure(
            "TaskEnded", "The task exceeded its maximum wall clock time and was terminated."
        )
    if exit_code != 0:
        return failure("FailureExitCode", FAILURE_EXIT_MESSAGE)
    return None


def may_retry(retry_count: int, max_task_retry_count: int) -> bool:
    """maxTaskRetryCount: a task is retried while retryCount is below it (-1: always)."""
    return max_task_retry_count == -1 or retry_count < max_task_retry_count


def retries(failed: dict | None, retry_count: int, max_task_retry_count: int) -> bool:
    """Whether a failed run is retried: only a failure of the exit code (not a command that
    could not start, a file error, or the wall clock), within maxTaskRetryCount."""
    return (
        failed is not None
        and failed["code"] == "FailureExitCode"
        and may_retry(retry_count, max_task_retry_count)
    )


def cancelled_outcome(cancel_requested: str) -> str:
    """The outcome of an attempt whose task was terminated or deleted while it ran."""
    return Attempt.Outcome.DELETED if cancel_requested == "delete" else Attempt.Outcome.TERMINATED


@dataclass(frozen=True)
class Exit:
    """What an attempt's end means.

    outcome: the attempt's outcome ("": it keeps running, a subtask that succeeded holds
    its slot until the primary ends); failure: the attempt's failureInfo; subtask: whether
    the attempt's subtask completes, with `subtask_failure`; task: "" (the task keeps its
    state), "retry" or "complete" (with `task_exit_code`, `task_failure`); instances: how
    the task's other running instances end ("": not at all; "retry", "finished",
    "failed"); stats: whether the run counts in the task's statistics.
    """

    outcome: str
    failure: dict | None = None
    subtask: bool = False
    subtask_failure: dict | None = None
    task: str = ""
    task_exit_code: int | None = None
    task_failure: dict | None = None
    instances: str = ""
    stats: bool = False


@dataclass(frozen=True)
class Ended:
    """An attempt's end and its task, as plain values (attempts.py fills it)."""

    exit_code: int | None
    failed: dict | None  # failure_of(...) of the report
    cancel_requested: str  # "", "terminate", "delete", ...
    task_running: bool  # the task is still running (not terminated or deleted meanwhile)
    subtask_id: int | None
    number_of_instances: int
    retry_count: int
    max_task_retry_count: int


def exit_of(ended: Ended) -> Exit:
    """The Batch outcome of an attempt's end.

    A task terminated or deleted meanwhile keeps the state that gave it; the attempt ends
    terminated (deleted) and its subtask with TaskEnded. A subtask that succeeded completes
    and its attempt keeps its slot until the primary ends; one that failed fails (or
    retries, within maxTaskRetryCount) the whole task and ends its other instances. A
    primary or single instance completes the task (success for exit 0 without failure),
    or retries it after a failing exit code while retryCount < maxTaskRetryCount; a command
    that could not start, a file error or the wall clock fail it without retry.
    """
    if ended.cancel_requested or not ended.task_running:
        return Exit(
            cancelled_outcome(ended.cancel_requested),
            subtask=ended.subtask_id is not None,
            subtask_failure=failure("TaskEnded", "The task was terminated."),
        )
    failed, subtask = ended.failed, ended.subtask_id is not None
    if subtask and failed is None:
        return Exit("", subtask=True)
    retry = retries(failed, ended.retry_count, ended.max_task_retry_count)
    if subtask:
        message = f"Subtask {ended.subtask_id} failed: {failed['message']}"
        return Exit(
            Attempt.Outcome.FAILED,
            failed,
            subtask=True,
            subtask_failure=failed,
            task="retry" if retry else "complete",
            task_failure=None if retry else failure(failed["code"], message),
            instances="retry" if retry else "failed",
        )
    multi = ended.number_of_instances > 1
    return Exit(
        Attempt.Outcome.FAILED if failed else Attempt.Outcome.SUCCEEDED,
        failed,
        task="retry" if retry else "complete",
        task_exit_code=None if retry else ended.exit_code,
        task_failure=None if retry else failed,
        instances=("retry" if retry else "finished") if multi else "",
        stats=True,
    )


def job_action(
    on_task_failure: str,
    failed: Iterable[tuple[dict, int | None, dict | None]],
    manager_ended: bool,
) -> str:
    """What a job does after its tasks ended in one report: with onTaskFailure
    performexitoptionsjobaction, the jobAction of the first failed task's exit options
    that is not none (terminate or disable); else, when its job manager task completed
    with killJobOnCompletion, `jobmanager` (terminate, reason JMComplete); else "".
    `failed` gives each failed task's (spec, exit code, failureInfo), in report order."""
    if on_task_failure == Job.OnTaskFailure.PERFORMEXITOPTIONSJOBACTION:
        for spec, exit_code, failure_info in failed:
            action = exit_options(spec, exit_code, failure_info)["jobAction"]
            if action != ExitJobAction.NONE:
                return action
    return "jobmanager" if manager_ended else ""


# --- requeue and the instances of a multi-instance task ----------------------------------


def requeues(task_state: str) -> bool:
    """A task goes back to active when its node is lost or its job disabled with requeue
    only while it is preparing or running (a task that ended keeps its end)."""
    return task_state in Task.RUNNING_STATES


# Why a task's other instances end: the failureInfo message of their unfinished subtasks.
_INSTANCES_ENDED = {
    "retry": "Another instance of the task failed; the task is retried.",
    "failed": "Another instance of the task failed.",
    "requeue": "The task was requeued.",
}


def other_instance_outcome(reason: str, subtask_succeeded: bool) -> str:
    """The outcome of an instance still running when its task ended (`reason`: finished,
    failed, retry) or was requeued: requeued, succeeded when its coordination command
    succeeded, else terminated."""
    if reason == "requeue":
        return Attempt.Outcome.REQUEUED
    return Attempt.Outcome.SUCCEEDED if subtask_succeeded else Attempt.Outcome.TERMINATED


def unfinished_subtask_end(reason: str) -> tuple[str, dict | None]:
    """(result, failureInfo) of a subtask that had not finished when its task ended: a
    subtask still running when the primary finished has no result of its own; otherwise
    it failed with TaskEnded, saying why."""
    message = _INSTANCES_ENDED.get(reason)
    if message is None:
        return "", None
    return Task.Result.FAILURE, failure("TaskEnded", message)


def subtasks_done(succeeded_subtasks: int, number_of_instances: int) -> bool:
    """Every subtask's coordination command succeeded: the primary may run commandLine."""
    return succeeded_subtasks >= number_of_instances - 1
