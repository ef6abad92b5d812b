"""Batch's value rules that more than one operation enforces, each written once. The
operations call them on every path that sets the value (add, update and patch of a job;
add, add-collection and update of a task), so the API, the dashboard and the admin get the same
answer: 400 InvalidPropertyValue naming the property."""

from __future__ import annotations

from tasks.errors import BatchError

PRIORITY_RANGE = (-1000, 1000)
# The job's own task definitions whose environmentSettings a node would export.
JOB_TASKS = ("jobManagerTask", "jobPreparationTask", "jobReleaseTask")


def check_priority(value: int, *, path: str = "priority") -> None:
    """A job's priority is from -1000 (lowest) to 1000 (highest)."""
    low, high = PRIORITY_RANGE
    if not low <= value <= high:
        raise BatchError.invalid_property(path, value, f"priority must be between {low} and {high}")


def check_max_parallel_tasks(value: int, *, path: str = "maxParallelTasks") -> None:
    """maxParallelTasks is -1 (no limit) or greater than 0: with 0 no task would ever run."""
    if value != -1 and value < 1:
        raise BatchError.invalid_property(
            path, value, "maxParallelTasks must be -1 or greater than 0"
        )


def check_max_task_retry_count(constraints: dict | None, *, path: str = "constraints") -> None:
    """maxTaskRetryCount is -1 (retry without limit), 0 or more."""
    value = (constraints or {}).get("maxTaskRetryCount")
    if value is not None and value < -1:
        raise BatchError.invalid_property(
            f"{path}.maxTaskRetryCount", value, "maxTaskRetryCount must be -1 or greater"
        )


def check_environment_settings(settings: list | None, *, path: str) -> None:
    """An environment variable's name holds no "=": no POSIX environment can carry one, so
    the node could never start the process."""
    for i, setting in enumerate(settings or []):
        name = setting.get("name") if isinstance(setting, dict) else None
        if isinstance(name, str) and "=" in name:
            raise BatchError.invalid_property(
                f"{path}[{i}].name", name, "An environment variable name cannot contain '='."
            )


def check_job_values(spec: dict) -> None:
    """The rules of the values a job's Add, Update or Patch body sets."""
    if "priority" in spec:
        check_priority(spec["priority"])
    if "maxParallelTasks" in spec:
        check_max_parallel_tasks(spec["maxParallelTasks"])
    check_max_task_retry_count(spec.get("constraints"))
    check_environment_settings(
        spec.get("commonEnvironmentSettings"), path="commonEnvironmentSettings"
    )
    for key in JOB_TASKS:
        task = spec.get(key)
        if isinstance(task, dict) and isinstance(task.get("environmentSettings"), list):
            check_environment_settings(
                task["environmentSettings"], path=f"{key}.environmentSettings"
            )


def check_task_values(spec: dict) -> None:
    """The rules of the values a task's Add body sets that do not depend on its job."""
    check_max_task_retry_count(spec.get("constraints"))
    check_environment_settings(spec.get("environmentSettings"), path="environmentSettings")
