"""Reading a task's files for the dashboard: the output tail (also the preview of any other
file), the file list, downloads; and a node's, for its start task's output.

Files come through the task-file storage (tasks.node.storage, Django's storage API), the
same one the Batch task-files API reads, so the dashboard works wherever the nodes publish
their task directories; and the same rule (`can_read_task_files`) decides when there are
none to read. The storage never follows a symbolic link and bounds every listing.

What a task wrote never runs on the dashboard's origin: a file is shown only as escaped text
in a `<pre>` (the tail), or downloaded as an attachment (tasks.web.views.task_file).

A tail reads only the last TAIL_BYTES of a file (one seek), however large the file is.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File

from tasks.models import ComputeNode, Task
from tasks.node.layout import STDERR, STDOUT
from tasks.node.storage import FileInfo, Listing, TaskFiles, clean_name
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
    binary: bool = False  # NUL bytes: not shown as text


def _files(task: Task) -> TaskFiles | None:
    return None if can_read_task_files(task) else TaskFiles.of_task(task)


def stat(task: Task, name: str) -> tuple[TaskFiles, FileInfo] | None:
    """The task's regular file `name` (not a directory, a link or a FIFO), or None."""
    return _stat(_files(task), name)


def _stat(files: TaskFiles | None, name: str) -> tuple[TaskFiles, FileInfo] | None:
    clean = clean_name(name)
    if files is None or clean is None:
        return None
    info = files.stat(clean)
    if info is None or not info.is_file:
        return None
    return files, info


def open_file(task: Task, name: str) -> File | None:
    return _open(_files(task), name)


def _open(files: TaskFiles | None, name: str) -> File | None:
    found = _stat(files, name)
    if found is None:
        return None
    files, info = found
    try:
        return files.open(info.name)
    except (OSError, SuspiciousFileOperation):
        return None


def tail(task: Task, name: str, *, max_bytes: int = TAIL_BYTES) -> Tail:
    """The last `max_bytes` of a task file, decoded leniently; reads nothing before that."""
    return _tail(_open(_files(task), name), name, max_bytes)


def node_tail(node: ComputeNode, name: str, *, max_bytes: int = TAIL_BYTES) -> Tail:
    """The last `max_bytes` of a file under a node's root (its start task's
    startup/stdout.txt), as `tail` reads a task's."""
    return _tail(open_node_file(node, name), name, max_bytes)


def open_node_file(node: ComputeNode, name: str) -> File | None:
    """A regular file under the node's root directory (the node-files API's files), or None."""
    return _open(TaskFiles.of_node(node), name)


def _tail(handle: File | None, name: str, max_bytes: int) -> Tail:
    if handle is None:
        return Tail(name, "", 0, False)
    try:
        with handle:
            size = handle.size
            handle.seek(max(0, size - max_bytes))
            data = handle.read(max_bytes)
    except (OSError, SuspiciousFileOperation):
        return Tail(name, "", 0, False)
    truncated = size > max_bytes
    if truncated:
        # Drop the partial first line so the tail starts at a line boundary.
        cut = data.find(b"\n")
        data = data[cut + 1:] if 0 <= cut < len(data) - 1 else data
    if b"\x00" in data:
        return Tail(name, "", size, True, truncated, binary=True)
    return Tail(name, data.decode("utf-8", errors="replace"), size, True, truncated)


def listing(task: Task) -> Listing:
    """The task's files (not directories; links and FIFOs as what they are), at most
    MAX_LISTED, depth first by name; `more` when there are others."""
    files = _files(task)
    if files is None:
        return Listing()
    return files.list(recursive=True, directories=False, limit=MAX_LISTED)
