"""A task's exitConditions and dependsOn as Batch reads them, as plain functions over plain
values: which exitOptions apply to a completed task (exit_options), and whether it
satisfies the tasks that depend on it. Below the reads (tasks.queries.dependencies: the
task page's dependencies, the job page's "blocked" filter) and the rules layer (the claim,
tasks.operations.attempt_rules' exits and job actions), so that both decide a dependency
the same way. Tested without a database (tests/operations/test_attempt_rules.py).
"""

from __future__ import annotations

from tasks.models import DependencyAction, ExitJobAction, Task

LAUNCH_FAILURES = ("CommandProgramNotFound", "CommandLaunchFailed")
# Batch's pre-processing errors (the command never ran: it could not start, or a resource
# file could not be placed) and file upload errors (its outputFiles could not be uploaded):
# the exit conditions preProcessingError and fileUploadError (tasks/node/resource_files.py
# and output_files.py give these codes).
PRE_PROCESSING_FAILURES = (
    *LAUNCH_FAILURES,
    "BlobAccessDenied",
    "BlobDownloadMiscError",
    "BlobDownloadTimedOut",
    "BlobNotFound",
    "ResourceFileCreateFailed",
    "ResourceFileWriteFailed",
    "ResourceContainerNotFound",
    "ResourceContainerAccessDenied",
    "ResourceContainerListTimedOut",
    "ResourceContainerListMiscError",
)
FILE_UPLOAD_FAILURES = (
    "FileUploadAccessDenied",
    "FileUploadContainerNotFound",
    "FileUploadConflict",
    "FileUploadTimedOut",
    "FileUploadMiscError",
)


# --- exit options ----------------------------------------------------------------------


def _matching_exit_code(conditions: dict, exit_code: int) -> dict | None:
    for entry in conditions.get("exitCodes") or []:
        if entry.get("code") == exit_code:
            return entry.get("exitOptions") or {}
    for entry in conditions.get("exitCodeRanges") or []:
        if entry.get("start", 0) <= exit_code <= entry.get("end", -1):
            return entry.get("exitOptions") or {}
    return None


def _failure_code(failure_info: dict | None) -> str | None:
    return failure_info.get("code") if failure_info else None


def exit_options(spec: dict, exit_code: int | None, failure_info: dict | None) -> dict[str, str]:
    """The exitOptions Batch applies to a completed task: an exitCodes entry for its code,
    else an exitCodeRanges entry, else preProcessingError for a task that could not start
    (or get its resource files), else fileUploadError for one whose outputFiles could not
    be uploaded, else `default` for anything but exit 0. Unset members take the defaults:
    jobAction none and dependencyAction satisfy for exit 0, terminate and block otherwise."""
    conditions = spec.get("exitConditions") or {}
    succeeded = exit_code == 0 and not failure_info
    code = _failure_code(failure_info)
    chosen: dict | None = None
    if exit_code is not None:
        chosen = _matching_exit_code(conditions, exit_code)
    elif code in PRE_PROCESSING_FAILURES:
        chosen = conditions.get("preProcessingError")
    if chosen is None and code in FILE_UPLOAD_FAILURES:
        chosen = conditions.get("fileUploadError")
    if chosen is None and not succeeded:
        chosen = conditions.get("default")
    chosen = chosen or {}
    return {
        "jobAction": chosen.get("jobAction")
        or (ExitJobAction.NONE if succeeded else ExitJobAction.TERMINATE),
        "dependencyAction": chosen.get("dependencyAction")
        or (DependencyAction.SATISFY if succeeded else DependencyAction.BLOCK),
    }


# --- dependencies ----------------------------------------------------------------------


def dependency_ids(depends_on: dict) -> list[str]:
    """The lower-cased ids a task's dependsOn names: taskIds, then each taskIdRanges
    entry's integers start..end inclusive (task "9".."12" for 9..12)."""
    keys = [str(i).lower() for i in depends_on.get("taskIds") or []]
    for r in depends_on.get("taskIdRanges") or []:
        keys.extend(str(i) for i in range(int(r["start"]), int(r["end"]) + 1))
    return keys


def satisfies_dependency(
    result: str, spec: dict, exit_code: int | None, failure_info: dict | None
) -> bool:
    """Whether a completed task satisfies the tasks that depend on it: it succeeded, or its
    exit options' dependencyAction is satisfy (Batch's exitConditions)."""
    if result == Task.Result.SUCCESS:
        return True
    return (
        exit_options(spec, exit_code, failure_info)["dependencyAction"] == DependencyAction.SATISFY
    )


def dependencies_met(wanted: dict[int, list[str]], satisfied: set[str]) -> set[int]:
    """Of the tasks whose dependency ids `wanted` gives (by pk), those whose every
    dependency is in `satisfied` (the completed tasks that satisfy their dependents)."""
    return {pk for pk, keys in wanted.items() if all(k in satisfied for k in keys)}
