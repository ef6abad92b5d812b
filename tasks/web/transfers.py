"""A task's resource files and output files as its page shows them: where each comes from
or goes (never with a SAS query: a signature is a secret), and what became of it, read
from the task's state and failureInfo (tasks/node/resource_files.py and output_files.py
name the failed entries in failureInfo.details)."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.exit_conditions import FILE_UPLOAD_FAILURES, PRE_PROCESSING_FAILURES
from tasks.models import Task
from tasks.wire.redaction import without_query

UPLOAD_LOGS = ("fileuploadout.txt", "fileuploaderr.txt")


@dataclass
class Transfer:
    source: str  # where from (a resource file) or the pattern (an output file)
    target: str  # where to: a path in wd/, or a container URL and blob path
    note: str  # fileMode, uploadCondition
    status: str  # "pending", "done", "failed", "skipped"
    label: str  # what the status says
    error: str = ""


def _failed_indexes(task: Task, name: str, codes: tuple[str, ...]) -> set[int] | None:
    info = task.failure_info or {}
    if info.get("code") not in codes:
        return None
    found = set()
    for detail in info.get("details") or []:
        if detail.get("name") == name and str(detail.get("value", "")).isdigit():
            found.add(int(detail["value"]))
    return found


def resource_files(task: Task) -> list[Transfer]:
    """In the order the node downloads them: a multi-instance task's commonResourceFiles
    (into the task directory) first, then its resourceFiles (into wd/)."""
    multi = task.spec.get("multiInstanceSettings") or {}
    specs = [
        ("", f) for f in (multi.get("commonResourceFiles") or []) if task.number_of_instances > 1
    ]
    specs += [("wd/", f) for f in task.spec.get("resourceFiles") or []]
    failed = _failed_indexes(task, "resourceFile", PRE_PROCESSING_FAILURES)
    first_failed = min(failed) if failed else None
    rows = []
    for i, (where, spec) in enumerate(specs):
        if spec.get("httpUrl"):
            source = without_query(spec["httpUrl"])
        elif spec.get("storageContainerUrl"):
            source = without_query(spec["storageContainerUrl"]) + (
                f" (blobs under {spec['blobPrefix']})" if spec.get("blobPrefix") else ""
            )
        else:
            source = f"auto-storage container {spec.get('autoStorageContainerName', '')}"
        target = where + (spec.get("filePath") or "")
        note = f"mode {spec['fileMode']}" if spec.get("fileMode") else ""
        if not task.is_completed:
            status, label = (
                "pending",
                "not downloaded yet" if task.state == Task.State.ACTIVE else "downloading or done",
            )
        elif task.exit_code is not None:  # the command ran: every file was in place
            status, label = "done", "downloaded"
        elif first_failed is not None and i == first_failed:
            status, label = "failed", (task.failure_info or {}).get("code", "failed")
        elif first_failed is not None and i < first_failed:
            status, label = "done", "downloaded"
        else:
            status, label = "skipped", "not downloaded"
        error = (task.failure_info or {}).get("message", "") if status == "failed" else ""
        rows.append(Transfer(source, target or "wd/", note, status, label, error))
    return rows


def output_files(task: Task) -> list[Transfer]:
    failed = _failed_indexes(task, "outputFile", FILE_UPLOAD_FAILURES) or set()
    rows = []
    for i, spec in enumerate(task.spec.get("outputFiles") or []):
        container = (spec.get("destination") or {}).get("container") or {}
        target = without_query(container.get("containerUrl") or "")
        if container.get("path"):
            target += f" → {container['path']}"
        condition = ((spec.get("uploadOptions") or {}).get("uploadCondition") or "").lower()
        wanted = condition == "taskcompletion" or (condition == "tasksuccess") == (
            task.exit_code == 0
        )
        if not task.is_completed:
            status, label = "pending", "after the command"
        elif task.exit_code is None:
            status, label = "skipped", "not uploaded: the command did not run to its end"
        elif not wanted:
            status, label = "skipped", f"not uploaded: {condition}"
        elif i in failed:
            status, label = "failed", (task.failure_info or {}).get("code", "failed")
        else:
            status, label = "done", "uploaded"
        error = (
            (task.failure_info or {}).get("message", "")
            if status == "failed" and i == min(failed)
            else ""
        )
        rows.append(Transfer(spec.get("filePattern", ""), target, condition, status, label, error))
    return rows


def upload_logs(listing) -> list[str]:
    """The upload logs the node left in the task directory (Batch's names)."""
    names = {f.name for f in listing if getattr(f, "is_file", False)}
    return [name for name in UPLOAD_LOGS if name in names]
