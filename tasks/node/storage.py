"""Task files through one storage interface (Django's storage API, alias "taskfiles").

The web tier reads, lists and deletes task files only here. By default the storage is a
FileSystemStorage over `<BATCHSITE_DATA_DIR>/nodes`, which is where agents on the same
machine write their task directories: nothing is copied, and the stdout of a running task
reads as far as it has been written. Agents on other machines point the storage at a
shared backend (BATCHSITE_TASK_FILES_BACKEND / _OPTIONS, e.g. django-storages' S3) and
publish their task directories into it (`publish_dir`): while a task runs, every
BATCHSITE_NODE_PUBLISH_SECONDS, and when it ends.

Keys are `<account>/<pool-id>/<node-id>/workitems/<job-id>/job-1/<task-id>/<name>`
(tasks.node.layout).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

from . import layout

ALIAS = "taskfiles"


def task_file_storage() -> Storage:
    return storages[ALIAS]


def is_local_to(storage: Storage, nodes_dir: Path) -> bool:
    """Whether this storage is the nodes' own directories (nothing to publish)."""
    if not isinstance(storage, FileSystemStorage):
        return False
    try:
        return Path(storage.location).resolve() == nodes_dir.resolve()
    except OSError:
        return False


@dataclass
class FileInfo:
    name: str  # relative to the task directory, with "/"
    is_directory: bool
    size: int = 0
    modified: datetime | None = None
    created: datetime | None = None
    mode: str | None = None  # octal, e.g. "0644", when the storage knows it


def clean_name(path: str) -> str | None:
    """A file path as the API received it, made relative and checked: None if it leaves
    the task directory or is empty."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return "/".join(parts)


class TaskFiles:
    """The files of one task's directory on the node that ran it last."""

    def __init__(self, prefix: str, storage: Storage | None = None) -> None:
        self.storage = storage or task_file_storage()
        self.prefix = prefix

    @classmethod
    def of_task(cls, task) -> TaskFiles:
        """The files of the task's latest run (nodeInfo: the node that ran it last)."""
        node = layout.node_key(task.job.account.name, task.pool_id, task.node_name)
        return cls(layout.storage_key(node, task.job.job_id, task.task_id))

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if name else self.prefix

    def stat(self, name: str) -> FileInfo | None:
        key = self._key(name)
        try:
            if self._is_dir(key):
                return FileInfo(name, True, modified=self._time(self.storage.get_modified_time, key),
                                created=self._time(self.storage.get_created_time, key))
            if not self.storage.exists(key):
                return None
            return FileInfo(name, False, size=self.storage.size(key),
                            modified=self._time(self.storage.get_modified_time, key),
                            created=self._time(self.storage.get_created_time, key), mode=self._mode(key))
        except (OSError, SuspiciousFileOperation):
            return None

    def open(self, name: str) -> File:
        return self.storage.open(self._key(name), "rb")

    def exists(self) -> bool:
        """Whether the task directory is in the storage at all."""
        try:
            return self._is_dir(self.prefix)
        except (OSError, SuspiciousFileOperation):
            return False

    def list(self, *, recursive: bool) -> list[FileInfo]:
        """Every entry of the task directory (or only its top level), sorted by name."""
        found: list[FileInfo] = []
        pending = [""]
        while pending:
            here = pending.pop()
            try:
                dirs, files = self.storage.listdir(self._key(here))
            except (OSError, SuspiciousFileOperation):
                continue
            for d in dirs:
                name = posixpath.join(here, d) if here else d
                found.append(FileInfo(name, True, modified=self._time(self.storage.get_modified_time, self._key(name)),
                                      created=self._time(self.storage.get_created_time, self._key(name))))
                if recursive:
                    pending.append(name)
            for f in files:
                name = posixpath.join(here, f) if here else f
                info = self.stat(name)
                if info is not None:
                    found.append(info)
        found.sort(key=lambda i: i.name)
        return found

    def delete(self, name: str, *, recursive: bool) -> bool:
        """Delete a file, or a directory (with recursive, and its contents). False when
        the directory is not empty and recursive was not asked for."""
        key = self._key(name)
        if self._is_dir(key):
            dirs, files = self.storage.listdir(key)
            if (dirs or files) and not recursive:
                return False
            for f in files:
                self.storage.delete(f"{key}/{f}")
            for d in dirs:
                self.delete(posixpath.join(name, d), recursive=True)
            if isinstance(self.storage, FileSystemStorage):
                with contextlib.suppress(OSError):
                    os.rmdir(self.storage.path(key))
            return True
        self.storage.delete(key)
        return True

    def _is_dir(self, key: str) -> bool:
        if isinstance(self.storage, FileSystemStorage):
            return os.path.isdir(self.storage.path(key))
        # Object stores have no directories: a key with entries under it is one.
        try:
            dirs, files = self.storage.listdir(key)
        except (OSError, NotImplementedError):
            return False
        return bool(dirs or files)

    def _mode(self, key: str) -> str | None:
        if isinstance(self.storage, FileSystemStorage):
            with contextlib.suppress(OSError):
                return format(os.stat(self.storage.path(key)).st_mode & 0o7777, "04o")
        return None

    @staticmethod
    def _time(getter, key: str) -> datetime | None:
        try:
            return getter(key)
        except (OSError, NotImplementedError, AttributeError):
            return None


# --- agents publishing into a shared storage ---------------------------------------------


def publish_dir(storage: Storage, local_dir: Path, key: str) -> int:
    """Copy a task directory into the storage under `key`, replacing what is there.
    Returns how many files it copied. Only for storages that are not the node's disk."""
    copied = 0
    for dirpath, _dirnames, filenames in os.walk(local_dir):
        for filename in filenames:
            full = Path(dirpath) / filename
            target = f"{key}/{full.relative_to(local_dir).as_posix()}"
            try:
                with full.open("rb") as handle:
                    if storage.exists(target):
                        storage.delete(target)
                    storage.save(target, File(handle))
                copied += 1
            except OSError:
                continue  # a file that vanished meanwhile: the next publish catches up
    return copied


def unpublish_dir(storage: Storage, key: str) -> None:
    """Remove a published task directory from the storage."""
    with contextlib.suppress(OSError, SuspiciousFileOperation):
        TaskFiles(key, storage).delete("", recursive=True)
