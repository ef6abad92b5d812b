"""What a run on a node needs to happen as its task's user (tasks.nodehost.identity): its
directory given to that user, the transfer manifest only that user reads, spawn()'s user
arguments, and the transfer programs' command lines. The agent's tasks and start task and
the job preparation and release tasks (job_tasks) all use these."""

from __future__ import annotations

import json
import os
import site
import sys
import tempfile

from tasks.nodehost import disk, identity, layout

from . import resource_files


def write_manifest(files: list | dict, user: identity.Identity | None = None) -> str:
    """The files to transfer, in a file only the task's user reads (their URLs may carry
    SAS tokens): the transfer program, which runs as that user, removes it once read."""
    fd, path = tempfile.mkstemp(prefix="batchsite-resource-files-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        if user is not None and user.switches:
            os.fchown(f.fileno(), user.uid, user.gid)
        json.dump(files, f)
    return path


def own_task_dir(task_dir: int, user: identity.Identity | None, *, mode: int = 0o700) -> None:
    """Give a task's directory and its wd/ to the task's user: readable by it alone (and
    root), or by the pool's group too for the start task's (`mode` 0750)."""
    if user is None:
        return
    group = user.groups[0] if mode & 0o070 and user.groups else user.gid
    disk.own(task_dir, user.uid, group, mode)
    disk.own_below(task_dir, layout.WORKING_DIR, user.uid, group, mode)


def spawn_user(user: identity.Identity | None) -> dict:
    """spawn()'s arguments that run the process as the task's user and give it its output files."""
    if user is None or not user.switches:
        return {}
    return {"user": user.popen_kwargs(), "owner": (user.uid, user.gid)}


def download_argv(manifest: str, user: identity.Identity | None = None) -> list[str]:
    """The resource files' download program (tasks/node/resource_files.py) for a manifest."""
    return program_argv(resource_files, manifest, user)


def program_argv(module, manifest: str, user: identity.Identity | None = None) -> list[str]:
    """A transfer program of tasks/node, run as the task's user with a Python that user may
    run, isolated from the task's environment variables. When that is not the agent's own
    interpreter, the program is given the agent's site-packages (azure-storage-blob) to
    import from."""
    python = identity.interpreter(user)
    extra = (
        [] if python == sys.executable else [p for p in site.getsitepackages() if os.path.isdir(p)]
    )
    return [python, "-I", module.__file__, manifest, *extra]
