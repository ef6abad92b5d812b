"""The node's directories on disk, made, opened and removed without following a link.

A task runs as its own user (tasks.nodehost.identity) and writes what it likes in its own
directory, and as the agent's user where the agent is not root, or as root when it asks
for admin: it can swap a link in for its job's directory, for `job-1`, for a sibling
task's directory, for `startup/` or `shared/`, or for its own stdout.txt, and it can leave
a FIFO where the agent will open a file. The agent must then neither make, write nor
remove anything in what such a link points to. So every path here is walked one component
at a time from a base directory (the nodes' directory, BATCHSITE_DATA_DIR/nodes, which is
the operator's and may itself be a link), each component opened relative to the
descriptor of the one before with O_NOFOLLOW; no check can be raced by swapping a link in
after it, because nothing is looked up by path again.

Where a directory of the node's layout is being made and a link (or a file, a FIFO)
stands in its place, that entry is removed and a real directory made instead: the
node's layout is the agent's, the link is only unlinked (never what it points to), and
the next task of the job runs instead of failing for what an earlier one did. A removal
that finds a link where a directory was expected on the way down removes nothing (the
path is not there); a link at the end of the path is unlinked.

What this does not cover: the command's working directory is given to the process by
path (Popen's cwd), right after the walk made it a real directory; a task racing to swap
a link in at that instant moves only the new process's own writes, which a task running
as the agent's user could make anyway.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

_TOP = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_BELOW = _TOP | os.O_NOFOLLOW
# O_NONBLOCK: opening a FIFO a task left must not wait for a reader.
_OUTPUT = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
# What a walk raises where a link or a file stands for a directory (O_DIRECTORY with
# O_NOFOLLOW gives ENOTDIR for a link, some systems ELOOP), or nothing is there.
_NOT_A_DIRECTORY = (errno.ENOTDIR, errno.ELOOP)
_UNREACHABLE = (errno.ENOENT, *_NOT_A_DIRECTORY)
_TRIES = 3  # a component made or removed by someone else meanwhile: look again
# The layout's directories are the agent's and only traversable by others: a task's user
# reaches its own directory through them but lists none (another account's jobs, nodes).
# A task's own directory is then given to its user (agent._own).
DIR_MODE = 0o711


def parts_of(key: str) -> list[str]:
    """The components of a key of the layout ("acct/pool/node/workitems/..."). ValueError
    for an empty component, "." or "..": a key never leaves the base it is walked from."""
    parts = key.split("/")
    if any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise ValueError(f"not a key of the node layout: {key!r}")
    return parts


@contextlib.contextmanager
def directory(base: str | Path, parts: Sequence[str], *, make: bool = False) -> Iterator[int]:
    """A descriptor of the directory base/parts, every component below `base` opened
    without following a link. OSError (ENOTDIR, ELOOP, ENOENT) when one is a link, not a
    directory, or missing. With `make`, missing components are made, and one that is not
    a directory (a link, a file, a FIFO) is unlinked and made a directory."""
    try:
        fd = os.open(base, _TOP)
    except FileNotFoundError:
        if not make:
            raise
        os.makedirs(base, DIR_MODE, exist_ok=True)
        fd = os.open(base, _TOP)
    try:
        for part in parts:
            if part in ("", ".", "..") or "/" in part:
                raise ValueError(f"not a path component: {part!r}")
            below = _open_below(fd, part) if make else os.open(part, _BELOW, dir_fd=fd)
            os.close(fd)
            fd = below
        yield fd
    finally:
        os.close(fd)


def _open_below(fd: int, name: str) -> int:
    for _ in range(_TRIES):
        try:
            return os.open(name, _BELOW, dir_fd=fd)
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno not in _NOT_A_DIRECTORY:
                raise
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=fd)  # the link itself, never its target
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, DIR_MODE, dir_fd=fd)
    return os.open(name, _BELOW, dir_fd=fd)


def make_dirs(base: str | Path, key: str) -> None:
    """Make the directory base/key and those above it, as `directory(make=True)` does."""
    with directory(base, parts_of(key), make=True):
        pass


def make_below(dir_fd: int, name: str) -> None:
    """Make the directory `name` in the directory `dir_fd`, as `directory(make=True)`
    makes each component."""
    try:
        os.mkdir(name, DIR_MODE, dir_fd=dir_fd)  # usually new (a task's wd/): one call then
    except FileExistsError:
        os.close(_open_below(dir_fd, name))  # a directory, or replaced by one


def open_output(dir_fd: int, name: str, *, append: bool) -> int:
    """A descriptor for writing the regular file `name` in the directory `dir_fd` (a task's
    stdout.txt or stderr.txt), made if missing, emptied unless `append`. Never a link's
    target, a FIFO or a device: such an entry is unlinked and a new file made. OSError
    (EISDIR) for a directory in its place."""
    flags = _OUTPUT | (os.O_APPEND if append else os.O_TRUNC)
    for _ in range(_TRIES):
        try:
            fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
        except OSError as e:
            # ELOOP: a link; ENXIO: a FIFO nobody reads.
            if e.errno not in (errno.ELOOP, errno.ENXIO):
                raise
        else:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                fcntl.fcntl(
                    fd, fcntl.F_SETFL, flags & os.O_APPEND
                )  # blocking again, as a file should be
                return fd
            os.close(fd)  # a FIFO with a reader, a device: not where output goes
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
    raise OSError(errno.EEXIST, "The file keeps being replaced", name)


def remove(base: str | Path, key: str) -> None:
    """Remove base/key: a directory with everything in it (links in it unlinked, never
    followed), or a file or link. Best effort, as rmtree(ignore_errors=True): what cannot
    be removed stays, and a path that leads through a link (or is not there) removes
    nothing."""
    parts = parts_of(key)
    with contextlib.suppress(OSError), directory(base, parts[:-1]) as fd:
        _remove_entry(fd, parts[-1])


def empty(base: str | Path, key: str) -> None:
    """Remove everything in the directory base/key, best effort as `remove`. If a link or
    a file stands in its place, that is removed instead (it is made again as a
    directory when needed)."""
    try:
        with directory(base, parts_of(key)) as fd, os.scandir(fd) as entries:
            names = [entry.name for entry in entries]
            for name in names:
                with contextlib.suppress(OSError):
                    _remove_entry(fd, name)
    except OSError as e:
        if e.errno in _NOT_A_DIRECTORY:
            remove(base, key)


def _remove_entry(fd: int, name: str) -> None:
    if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
        # shutil's descriptor-based rmtree: it unlinks links and never follows one.
        shutil.rmtree(name, dir_fd=fd, ignore_errors=True)
    else:
        os.unlink(name, dir_fd=fd)


def own(fd: int, uid: int, gid: int, mode: int) -> None:
    """Give the directory (or file) `fd` to uid:gid with `mode`: a task's directory to its
    user. chown first: it clears set-id bits a mode would set."""
    os.fchown(fd, uid, gid)
    os.fchmod(fd, mode)


def own_below(dir_fd: int, name: str, uid: int, gid: int, mode: int) -> None:
    """`own` the directory `name` in `dir_fd`, opened without following a link."""
    fd = os.open(name, _BELOW, dir_fd=dir_fd)
    try:
        own(fd, uid, gid, mode)
    finally:
        os.close(fd)
