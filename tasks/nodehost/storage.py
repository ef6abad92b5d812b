"""Task and node files through one storage interface (Django's storage API, alias "taskfiles").

The web tier reads, lists and deletes task and node files only here. By default the storage
is a FileSystemStorage over `<BATCHSITE_DATA_DIR>/nodes`, which is where agents on the same
machine write their task directories: nothing is copied, and the stdout of a running task
reads as far as it has been written. Agents on other machines point the storage at a
shared backend (BATCHSITE_TASK_FILES_BACKEND / _OPTIONS, e.g. django-storages' S3) and
publish their task directories into it (`publish_dir`): while a task runs, every
BATCHSITE_NODE_PUBLISH_SECONDS, and when it ends.

Keys are `<account>/<pool-id>/<node-id>/workitems/<job-id>/job-1/<task-id>/<name>`
(tasks.nodehost.layout); a node's own files are under `<account>/<pool-id>/<node-id>/`.

Nothing here follows a symbolic link. A task writes what it likes into its directory:
links to anywhere (`ln -s /etc/passwd x`), loops (`ln -s . a; ln -s . b`), FIFOs, and it
can swap a link in for a directory above its own. On a local disk every path is opened one
component at a time, each relative to the descriptor of the directory before it and with
O_NOFOLLOW, from the storage's location down (the location itself is the operator's and
may be a link; tasks.nodehost.disk, whose walk the agent uses too), so no link anywhere below it leads a read, a listing or a delete out of
the task's (or node's) directory, and no check can be raced by swapping a link in after
it. A link, a FIFO or a device is listed as `ls -l` shows it, a file entry with its own
properties (`kind` says what it is), and is never read or descended into; deleting one
removes the link itself. Object stores have no links; an agent publishing into one copies
only regular files, opened the same way.

Listings are bounded however the directory looks: a call looks at no more than
MAX_VISITED entries and runs no longer than LIST_SECONDS, a directory gives at most
MAX_DIRECTORY_ENTRIES entries, and a call that stopped early says where to go on
(`Listing.resume`), so the API answers a short page with a nextLink instead of running on.
Entries come depth first, each directory's entries by name (the order of their paths'
components), so a listing resumes after any path by rereading only the directories above it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

from . import disk, layout

ALIAS = "taskfiles"

FILE, DIRECTORY, LINK, SPECIAL = "file", "directory", "link", "special"
MAX_VISITED = 20_000
MAX_DIRECTORY_ENTRIES = 100_000
LIST_SECONDS = 2.0
PAGE = 1000

# O_NONBLOCK: opening a FIFO a task left must not wait for a writer.
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
# What a path that cannot be reached without following a link raises: ELOOP for a link at
# the end, ENOTDIR for one standing in for a directory.
_UNREACHABLE = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR)


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
    name: str  # relative to the task (or node) directory, with "/"
    kind: str  # FILE, DIRECTORY, LINK (never followed) or SPECIAL (a FIFO, a socket, a device)
    size: int = 0
    modified: datetime | None = None
    created: datetime | None = None
    mode: str | None = None  # octal, e.g. "0644", when the storage knows it

    @property
    def is_directory(self) -> bool:
        return self.kind == DIRECTORY

    @property
    def is_file(self) -> bool:
        """A regular file: the only kind whose bytes are ever read."""
        return self.kind == FILE


@dataclass
class Listing:
    """One bounded part of a directory's entries; iterating it gives the entries."""

    entries: list[FileInfo] = field(default_factory=list)
    more: bool = False  # stopped before the end (page full, or the budget spent)
    resume: str | None = None  # with `more`: go on after this name

    def __iter__(self) -> Iterator[FileInfo]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def clean_name(path: str) -> str | None:
    """A file path as the API received it, made relative and checked: None if it leaves
    the task directory, is empty, or holds a NUL (no file system name can)."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or any(p == ".." or "\x00" in p for p in parts):
        return None
    return "/".join(parts)


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _may_hold(directory: str, prefix: str) -> bool:
    """Whether entries below `directory` can start with `prefix`."""
    below = directory + "/"
    return below.startswith(prefix) or prefix.startswith(below)


class TaskFiles:
    """The files of one directory in the storage: a task's on the node that ran it last, or
    a node's root."""

    def __init__(self, prefix: str, storage: Storage | None = None) -> None:
        self.storage = storage or task_file_storage()
        self.prefix = prefix
        self._parts = prefix.split("/")
        self._tree = (
            _DiskTree(self.storage.location)
            if isinstance(self.storage, FileSystemStorage)
            else _StorageTree(self.storage)
        )

    @classmethod
    def of_task(cls, task) -> TaskFiles:
        """The files of the task's latest run (nodeInfo: the node that ran it last)."""
        node = layout.node_key(task.job.account.name, task.pool_id, task.node_name)
        return cls(layout.storage_key(node, task.job.job_id, task.task_id))

    @classmethod
    def of_node(cls, node) -> TaskFiles:
        """A compute node's root directory (AZ_BATCH_NODE_ROOT_DIR): startup/, shared/,
        workitems/."""
        return cls(layout.node_key(node.pool.account.name, node.pool.pool_id, node.node_id))

    def _path(self, name: str) -> list[str]:
        return self._parts + name.split("/") if name else list(self._parts)

    def stat(self, name: str) -> FileInfo | None:
        """The entry `name` (a clean_name), never through a link; None if there is none."""
        try:
            return self._tree.info(self._path(name), name)
        except (OSError, ValueError, SuspiciousFileOperation):
            return None

    def open(self, name: str) -> File:
        """A regular file's bytes. OSError for anything else (a link, a FIFO, a directory),
        and for a path that leads through a link."""
        return self._tree.open(self._path(name))

    def exists(self) -> bool:
        """Whether the directory is in the storage at all."""
        try:
            return self._tree.is_dir(self._parts)
        except (OSError, ValueError, SuspiciousFileOperation):
            return False

    def list(
        self,
        *,
        recursive: bool,
        prefix: str = "",
        after: str | None = None,
        limit: int = PAGE,
        directories: bool = True,
        seconds: float | None = LIST_SECONDS,
        max_visited: int | None = MAX_VISITED,
    ) -> Listing:
        """Up to `limit` entries whose names start with `prefix` (without directories if
        asked), after the name `after`: the top level, or everything below with
        `recursive` (never into a link). Stops early, with `more` and `resume`, once it has
        looked at `max_visited` entries or run for `seconds`."""
        after_key = tuple(after.split("/")) if after else None
        deadline = None if seconds is None else time.monotonic() + seconds
        found: list[FileInfo] = []
        visited = 0
        stack = [iter(self._children(""))]
        while stack:
            info = next(stack[-1], None)
            if info is None:
                stack.pop()
                continue
            key = tuple(info.name.split("/"))
            descend = recursive and info.is_directory and _may_hold(info.name, prefix)
            if after_key is not None and key <= after_key:
                # Listed on an earlier page; only a directory above `after` has more.
                if descend and after_key[: len(key)] == key:
                    stack.append(iter(self._children(info.name)))
                continue
            if info.name.startswith(prefix) and (directories or not info.is_directory):
                if len(found) == limit:
                    return Listing(found, more=True, resume=found[-1].name)
                found.append(info)
            if descend:
                stack.append(iter(self._children(info.name)))
            visited += 1
            if (max_visited is not None and visited >= max_visited) or (
                deadline is not None and time.monotonic() > deadline
            ):
                return Listing(found, more=True, resume=info.name)
        return Listing(found)

    def _children(self, name: str) -> list[FileInfo]:
        try:
            entries = self._tree.children(self._path(name), name)
        except (OSError, ValueError, SuspiciousFileOperation):
            return []  # gone meanwhile, or unreadable: nothing to list
        entries.sort(key=lambda i: i.name.rsplit("/", 1)[-1])
        return entries

    def delete(self, name: str, *, recursive: bool) -> bool:
        """Delete a file or a link (never what it points to), or a directory (with recursive,
        and its contents, links removed and never followed). False when the directory is not
        empty and recursive was not asked for; FileNotFoundError when there is nothing to
        delete there (or only through a link)."""
        try:
            return self._tree.delete(self._path(name), recursive=recursive)
        except OSError as e:
            if e.errno in _UNREACHABLE:
                raise FileNotFoundError(errno.ENOENT, "No such file", name) from None
            raise


def _info(name: str, st: os.stat_result) -> FileInfo:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        kind = DIRECTORY
    elif stat.S_ISREG(mode):
        kind = FILE
    elif stat.S_ISLNK(mode):
        kind = LINK
    else:
        kind = SPECIAL
    return FileInfo(
        name,
        kind,
        size=0 if kind == DIRECTORY else st.st_size,
        modified=datetime.fromtimestamp(st.st_mtime, tz=UTC),
        created=datetime.fromtimestamp(st.st_ctime, tz=UTC),
        mode=format(stat.S_IMODE(mode), "04o"),
    )


class _DiskTree:
    """A FileSystemStorage's directories, walked by descriptor: each path component is opened
    relative to the one before with O_NOFOLLOW, so no link below the location is followed."""

    def __init__(self, location: str) -> None:
        self.location = location

    def _directory(self, parts: list[str]) -> contextlib.AbstractContextManager[int]:
        return disk.directory(self.location, parts)

    def info(self, parts: list[str], name: str) -> FileInfo:
        with self._directory(parts[:-1]) as fd:
            return _info(name, os.stat(parts[-1], dir_fd=fd, follow_symlinks=False))

    def is_dir(self, parts: list[str]) -> bool:
        try:
            with self._directory(parts):
                return True
        except OSError as e:
            if e.errno in _UNREACHABLE:
                return False
            raise

    def children(self, parts: list[str], base: str) -> list[FileInfo]:
        found = []
        with self._directory(parts) as fd, os.scandir(fd) as entries:
            for entry in entries:
                if len(found) >= MAX_DIRECTORY_ENTRIES:
                    break
                try:
                    found.append(_info(_join(base, entry.name), entry.stat(follow_symlinks=False)))
                except OSError:
                    continue  # removed while listed
        return found

    def open(self, parts: list[str]) -> File:
        with self._directory(parts[:-1]) as directory:
            fd = os.open(parts[-1], _READ, dir_fd=directory)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "Not a regular file", parts[-1])
            os.set_blocking(fd, True)
            handle = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        return File(handle, name=parts[-1])

    def delete(self, parts: list[str], *, recursive: bool) -> bool:
        with self._directory(parts[:-1]) as fd:
            name = parts[-1]
            if not stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                os.unlink(name, dir_fd=fd)
                return True
            if not recursive:
                try:
                    os.rmdir(name, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                        return False
                    raise
                return True
            # shutil's descriptor-based rmtree: it unlinks links and never follows one.
            shutil.rmtree(name, dir_fd=fd)
            return True


class _StorageTree:
    """Any other storage (object stores: no links, no directories but key prefixes)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def info(self, parts: list[str], name: str) -> FileInfo | None:
        key = "/".join(parts)
        if self.is_dir(parts):
            return FileInfo(
                name,
                DIRECTORY,
                modified=self._time(self.storage.get_modified_time, key),
                created=self._time(self.storage.get_created_time, key),
            )
        if not self.storage.exists(key):
            return None
        return FileInfo(
            name,
            FILE,
            size=self.storage.size(key),
            modified=self._time(self.storage.get_modified_time, key),
            created=self._time(self.storage.get_created_time, key),
        )

    def is_dir(self, parts: list[str]) -> bool:
        try:
            dirs, files = self.storage.listdir("/".join(parts))
        except (OSError, NotImplementedError):
            return False
        return bool(dirs or files)

    def children(self, parts: list[str], base: str) -> list[FileInfo]:
        key = "/".join(parts)
        dirs, files = self.storage.listdir(key)
        found = []
        for d in dirs[:MAX_DIRECTORY_ENTRIES]:
            found.append(
                FileInfo(
                    _join(base, d),
                    DIRECTORY,
                    modified=self._time(self.storage.get_modified_time, f"{key}/{d}"),
                    created=self._time(self.storage.get_created_time, f"{key}/{d}"),
                )
            )
        for f in files[: MAX_DIRECTORY_ENTRIES - len(found)]:
            info = self.info([*parts, f], _join(base, f))
            if info is not None:
                found.append(info)
        return found

    def open(self, parts: list[str]) -> File:
        return self.storage.open("/".join(parts), "rb")

    def delete(self, parts: list[str], *, recursive: bool) -> bool:
        key = "/".join(parts)
        if not self.is_dir(parts):
            if not self.storage.exists(key):
                raise FileNotFoundError(errno.ENOENT, "No such file", key)
            self.storage.delete(key)
            return True
        dirs, files = self.storage.listdir(key)
        if not recursive:
            return False
        for f in files:
            self.storage.delete(f"{key}/{f}")
        for d in dirs:
            self.delete([*parts, d], recursive=True)
        return True

    @staticmethod
    def _time(getter, key: str) -> datetime | None:
        try:
            return getter(key)
        except (OSError, NotImplementedError, AttributeError):
            return None


# --- agents publishing into a shared storage ---------------------------------------------


def publish_dir(storage: Storage, nodes_dir: Path, key: str) -> int:
    """Copy the directory `key` of this node's disk (under `nodes_dir`, layout.nodes_dir)
    into the storage under the same key, replacing what is there. Returns how many files it
    copied. Only regular files are copied, each opened without following a link, and the
    walk never goes through one: a link or a FIFO a task made (`ln -s /etc/passwd x`) is
    not published, nor is anything a link swapped in for a directory leads to. Only for
    storages that are not the node's disk."""
    source = TaskFiles(key, FileSystemStorage(location=nodes_dir))
    copied, after = 0, None
    while True:
        page = source.list(
            recursive=True, after=after, directories=False, seconds=None, max_visited=None
        )
        for info in page:
            if not info.is_file:
                continue
            target = f"{key}/{info.name}"
            try:
                with source.open(info.name) as handle:
                    if storage.exists(target):
                        storage.delete(target)
                    storage.save(target, handle)
                copied += 1
            except OSError:
                continue  # gone or swapped for a link meanwhile: the next publish catches up
        if not page.more:
            return copied
        after = page.resume


def unpublish_dir(storage: Storage, key: str) -> None:
    """Remove a published task directory from the storage."""
    with contextlib.suppress(OSError, SuspiciousFileOperation):
        TaskFiles(key, storage).delete("", recursive=True)
