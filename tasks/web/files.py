"""Reading a task's files for the dashboard: the output tail, the file list, downloads.

Files come through the task-file storage (tasks.node.storage, Django's storage API), the
same one the Batch task-files API reads, so the dashboard works wherever the nodes publish
their task directories; and the same rule (`can_read_task_files`) decides when there are
none to read.

A tail reads only the last TAIL_BYTES of a file (one seek), however large the file is.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File

from tasks.models import Task
from tasks.node.layout import STDERR, STDOUT
from tasks.node.storage import FileInfo, TaskFiles, clean_name
from tasks.operations.attempts import can_read_task_files

TAIL_BYTES = 64 * 1024
MAX_LISTED = 500
OUTPUT_FILES = (STDOUT, STDERR)


@dataclass
class Tail:
    name: str
    text: str
    size: int  # the whole file's size
    exists: bool
    truncated: bool = False


def _files(task: Task) -> TaskFiles | None:
    return None if can_read_task_files(task) else TaskFiles.of_task(task)


def stat(task: Task, name: str) -> tuple[TaskFiles, FileInfo] | None:
    """The task's file `name` (a file, not a directory), or None."""
    files, clean = _files(task), clean_name(name)
    if files is None or clean is None:
        return None
    info = files.stat(clean)
    if info is None or info.is_directory:
        return None
    return files, info


def open_file(task: Task, name: str) -> File | None:
    found = stat(task, name)
    if found is None:
        return None
    files, info = found
    try:
        return files.open(info.name)
    except (OSError, SuspiciousFileOperation):
        return None


def tail(task: Task, name: str, *, max_bytes: int = TAIL_BYTES) -> Tail:
    """The last `max_bytes` of a task file, decoded leniently; reads nothing before that."""
    found = stat(task, name)
    if found is None:
        return Tail(name, "", 0, False)
    files, info = found
    try:
        with files.open(info.name) as handle:
            handle.seek(max(0, info.size - max_bytes))
            data = handle.read(max_bytes)
    except (OSError, SuspiciousFileOperation):
        return Tail(name, "", 0, False)
    truncated = info.size > max_bytes
    if truncated:
        # Drop the partial first line so the tail starts at a line boundary.
        cut = data.find(b"\n")
        data = data[cut + 1:] if 0 <= cut < len(data) - 1 else data
    return Tail(name, data.decode("utf-8", errors="replace"), info.size, True, truncated)


def listing(task: Task) -> list[tuple[str, int]]:
    """(relative path, size) of the task's files, at most MAX_LISTED, by name."""
    files = _files(task)
    if files is None:
        return []
    return [(i.name, i.size) for i in files.list(recursive=True) if not i.is_directory][:MAX_LISTED]
