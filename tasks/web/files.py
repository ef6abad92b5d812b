"""Reading a task's files for the dashboard: the output tail, the file list, downloads.

This is the one seam between the dashboard and wherever task files live. Today it reads
the task's directory on the local filesystem (`Task.task_root_directory`, as a node on
this machine writes it: stdout.txt, stderr.txt, wd/...). When the compute-node issue
publishes files through a storage interface, only this module changes.

A tail reads only the last TAIL_BYTES of a file (one seek), however large the file is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tasks.models import Task

TAIL_BYTES = 64 * 1024
MAX_LISTED = 500
OUTPUT_FILES = ("stdout.txt", "stderr.txt")


@dataclass
class Tail:
    name: str
    text: str
    size: int  # the whole file's size
    exists: bool

    @property
    def truncated(self) -> bool:
        return self.size > len(self.text.encode(errors="replace"))


def task_dir(task: Task) -> Path | None:
    """The task's directory if this machine can read it."""
    root = task.task_root_directory
    if not root or not os.path.isabs(root):
        return None
    path = Path(root)
    return path if path.is_dir() else None


def resolve(task: Task, name: str) -> Path | None:
    """The file `name` inside the task's directory, or None (missing, or outside it)."""
    base = task_dir(task)
    if base is None or not name:
        return None
    path = (base / name).resolve()
    if not path.is_relative_to(base.resolve()) or not path.is_file():
        return None
    return path


def tail(task: Task, name: str, *, max_bytes: int = TAIL_BYTES) -> Tail:
    """The last `max_bytes` of a task file, decoded leniently; reads nothing before that."""
    path = resolve(task, name)
    if path is None:
        return Tail(name, "", 0, False)
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - max_bytes))
        data = handle.read(max_bytes)
    if size > max_bytes:
        # Drop the partial first line so the tail starts at a line boundary.
        cut = data.find(b"\n")
        data = data[cut + 1:] if 0 <= cut < len(data) - 1 else data
    return Tail(name, data.decode("utf-8", errors="replace"), size, True)


def listing(task: Task) -> list[tuple[str, int]]:
    """(relative path, size) of the task's files, at most MAX_LISTED, sorted."""
    base = task_dir(task)
    if base is None:
        return []
    found: list[tuple[str, int]] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for filename in sorted(filenames):
            full = Path(dirpath) / filename
            try:
                found.append((str(full.relative_to(base)), full.stat().st_size))
            except OSError:
                continue
            if len(found) >= MAX_LISTED:
                return found
    return found
