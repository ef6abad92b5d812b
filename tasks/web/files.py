"""Reading a task's files for the dashboard: the output tail (also the preview of any other
file), the file list, downloads; and a node's: its start task's output and the files under its
root.

Files come through the task-file storage (tasks.nodehost.storage, Django's storage API), the
same one the Batch task-files API reads, so the dashboard works wherever the nodes publish
their task directories; and the same rule (`can_read_task_files`) decides when there are
none to read. The storage never follows a symbolic link and bounds every listing.

What a task wrote never runs on the dashboard's origin: a file is shown only as escaped text
in a `<pre>` (the tail), or downloaded as an attachment (tasks.web.views.task_file).

A tail reads only the last TAIL_BYTES of a file (one seek), however large the file is; the
log viewer reads a file in chunks of as much (`read_chunk`): the tail, what came since, what
came before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File

from tasks.models import ComputeNode, Task
from tasks.nodehost import layout
from tasks.nodehost.layout import STDERR, STDOUT
from tasks.nodehost.storage import FileInfo, Listing, TaskFiles, clean_name
from tasks.operations.task_files import can_read_task_files

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
        data = data[cut + 1 :] if 0 <= cut < len(data) - 1 else data
    if b"\x00" in data:
        return Tail(name, "", size, True, truncated, binary=True)
    return Tail(name, data.decode("utf-8", errors="replace"), size, True, truncated)


def node_listing(node: ComputeNode) -> Listing:
    """The files under a node's root (startup/, shared/, workitems/; links and FIFOs as what
    they are, never followed), at most MAX_LISTED, depth first by name, as `listing` lists
    a task's."""
    return TaskFiles.of_node(node).list(recursive=True, directories=False, limit=MAX_LISTED)


def listing(task: Task) -> Listing:
    """The task's files (not directories; links and FIFOs as what they are), at most
    MAX_LISTED, depth first by name; `more` when there are others."""
    files = _files(task)
    if files is None:
        return Listing()
    return files.list(recursive=True, directories=False, limit=MAX_LISTED)


# --- the log viewer: a file read in chunks -------------------------------------------------

CHUNK_BYTES = TAIL_BYTES
# What a file still being written may end in mid-way: part of a UTF-8 character, part of an
# escape sequence. A chunk stops before it; the next one starts there.
_OPEN_ESCAPE = re.compile(rb"\x1b(?:\[[0-9;:?<=>]*[ -/]*|\][^\x07\x1b]*)?\Z")


@dataclass
class Chunk:
    """Bytes [start, end) of a file of `size` bytes, decoded; `reset` when the reader's
    copy no longer continues where it asked (the file shrank, or the reader fell more than a
    chunk behind): it gets the tail instead and replaces what it has."""

    name: str
    exists: bool
    size: int = 0
    start: int = 0
    end: int = 0
    text: str = ""
    binary: bool = False
    reset: bool = False


def subtask_files(task: Task, subtask) -> TaskFiles | None:
    """A multi-instance subtask's directory, on the node it ran on (Batch lists it with the
    node's files, as this layout keeps it), or None if it has not run on one."""
    if not subtask.node_name or not subtask.task_root_directory or task.files_cleaned:
        return None
    node = layout.node_key(
        task.job.account.name, subtask.pool_id or task.pool_id, subtask.node_name
    )
    return TaskFiles(layout.storage_key(node, task.job.job_id, task.task_id))


def task_files(task: Task) -> TaskFiles | None:
    """The task's (or a multi-instance task's primary's) directory, or None."""
    return _files(task)


def sizes(files: TaskFiles | None) -> dict[str, int | None]:
    """Each output file's size (None where there is none): one stat per file."""
    found = {name: _stat(files, name) for name in OUTPUT_FILES}
    return {name: info[1].size if info else None for name, info in found.items()}


def first_output(task_or_instance, found: dict[str, int | None]) -> str:
    """The output file to open first: stderr when the run failed and left stdout empty
    while stderr has something to say, stdout otherwise."""
    failed = getattr(task_or_instance, "result", "") == Task.Result.FAILURE
    if failed and not found.get(STDOUT) and found.get(STDERR):
        return STDERR
    return STDOUT


def read_chunk(
    files: TaskFiles | None,
    name: str,
    *,
    after: int | None = None,
    before: int | None = None,
    growing: bool = False,
    max_bytes: int = CHUNK_BYTES,
) -> Chunk:
    """A chunk of a file, one seek and one read of at most `max_bytes`:
    - neither `after` nor `before`: the tail, from a line boundary;
    - `after`: what was written since byte `after` (the tail, `reset`, if that is too much
      or the file is now shorter);
    - `before`: the chunk before byte `before`, from a line boundary ("load earlier").
    A file still `growing` is read up to the last whole character and escape sequence."""
    handle = _open(files, name)
    if handle is None:
        return Chunk(name, False)
    try:
        with handle:
            size = handle.size
            reset = after is not None and (after > size or size - after > max_bytes)
            if after is not None and not reset:
                lo, hi = after, size
            elif before is not None and after is None:
                hi = min(before, size)
                lo = max(0, hi - max_bytes)
            else:
                lo, hi = max(0, size - max_bytes), size
            # One byte more in front: whether the chunk begins a line.
            handle.seek(max(0, lo - 1))
            data = handle.read(hi - lo + (lo > 0))
    except (OSError, SuspiciousFileOperation):
        return Chunk(name, False)
    begins_line = lo == 0 or data[:1] == b"\n"
    data = data[1:] if lo > 0 else data
    hi = lo + len(data)
    if not begins_line and (after is None or reset):
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            data, lo = data[cut + 1 :], lo + cut + 1
    if growing:
        keep = _whole(data)
        data, hi = data[:keep], lo + keep
    if b"\x00" in data:
        return Chunk(name, True, size, lo, hi, binary=True, reset=reset)
    return Chunk(name, True, size, lo, hi, data.decode("utf-8", errors="replace"), reset=reset)


def _whole(data: bytes) -> int:
    """How much of `data` ends at a whole UTF-8 character and outside an escape sequence."""
    keep = len(data)
    for back in range(1, min(4, keep) + 1):
        byte = data[keep - back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: look further back for its lead
        if byte >= 0xC0 and back < (2 if byte < 0xE0 else 3 if byte < 0xF0 else 4):
            keep -= back  # a lead byte whose character is not all here yet
        break
    escape = _OPEN_ESCAPE.search(data, max(0, keep - 256), keep)
    return escape.start() if escape else keep
