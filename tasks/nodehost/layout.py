"""Where a node keeps a task's files, as on a Batch Linux node.

A node's root is `<BATCHSITE_DATA_DIR>/nodes/<account>/<pool-id>/<node-id>`
(AZ_BATCH_NODE_ROOT_DIR): node ids are unique only within a pool, so the account and the
pool are part of every path and key, and two accounts' nodes of one id never share a
directory, a process match or a storage key. A task's
directory is `<root>/workitems/<job-id>/job-1/<task-id>` (AZ_BATCH_TASK_DIR) holding
`stdout.txt`, `stderr.txt` and `wd/` (AZ_BATCH_TASK_WORKING_DIR). Job and task ids are
`[A-Za-z0-9_-]`, so they are safe as directory names. The pool's start task runs in
`<root>/startup` (AZ_BATCH_NODE_STARTUP_DIR: its own stdout.txt, stderr.txt and wd/), and
every task on the node may use `<root>/shared` (AZ_BATCH_NODE_SHARED_DIR).

The same path relative to `<BATCHSITE_DATA_DIR>/nodes` is the task's key in the task-file
storage (tasks.nodehost.storage), so the web tier finds a task's files from its nodeInfo alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

NODE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
STDOUT = "stdout.txt"
STDERR = "stderr.txt"
UPLOAD_OUT = (
    "fileuploadout.txt"  # outputFiles' upload log (tasks/node/output_files.py), as Batch names it
)
UPLOAD_ERR = "fileuploaderr.txt"
WORKING_DIR = "wd"
SHARED_DIR = "shared"  # AZ_BATCH_TASK_SHARED_DIR of a multi-instance task
WORKITEMS_DIR = "workitems"
NODE_SHARED_DIR = "shared"  # AZ_BATCH_NODE_SHARED_DIR
STARTUP_DIR = "startup"  # AZ_BATCH_NODE_STARTUP_DIR, the start task's directory


def nodes_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / "nodes"


def node_key(account: str, pool_id: str, node_id: str) -> str:
    """A node's directory relative to `nodes/`: also its prefix in the task-file storage."""
    return f"{account}/{pool_id}/{node_id}"


def node_root(data_dir: Path | str, account: str, pool_id: str, node_id: str) -> Path:
    return nodes_dir(data_dir) / node_key(account, pool_id, node_id)


def task_dir(root_dir: str, job_id: str, task_id: str) -> str:
    return f"{root_dir.rstrip('/')}/{task_key_within_node(job_id, task_id)}"


def task_key_within_node(job_id: str, task_id: str) -> str:
    return f"{WORKITEMS_DIR}/{job_id}/job-1/{task_id}"


def storage_key(node: str, job_id: str, task_id: str) -> str:
    """The task directory's key in the task-file storage; `node` is its node_key."""
    return f"{node}/{task_key_within_node(job_id, task_id)}"


def task_keys(nodes: Path | str, node: str) -> list[str]:
    """The keys of the task directories (and the start task's) a node has on disk now:
    the directories the agent made at `workitems/<job>/job-1/<task>`, by name only (no
    link a task left is followed: the levels above a task's directory are the agent's)."""
    root = Path(nodes) / node
    keys = [startup_key(node)] if (root / STARTUP_DIR).is_dir() else []
    for job in _names(root / WORKITEMS_DIR):
        keys += [
            f"{node}/{WORKITEMS_DIR}/{job}/job-1/{t}"
            for t in _names(root / WORKITEMS_DIR / job / "job-1")
        ]
    return keys


def _names(directory: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(directory) if e.is_dir(follow_symlinks=False))
    except OSError:  # not there (yet), or not a directory
        return []


def startup_key(node: str) -> str:
    """The start task's directory's key in the task-file storage; `node` is its node_key."""
    return f"{node}/{STARTUP_DIR}"
