"""Start tasks and job preparation tasks that run as root on one host take turns.

On Batch every node is a machine of its own, so a pool's start tasks that install software
(`apt-get update && apt-get install -y ffmpeg` as an admin auto-user, as Azure's ffmpeg
tutorial does) each have a package manager to themselves. Here the local nodes of a pool
share this host: started together, all but one failed on apt's lock (exit code 100,
"Could not get lock /var/lib/apt/lists/lock"), leaving the pool's other nodes
starttaskfailed. So a start task that runs as root waits for its turn: a lock held from
its start (its resource files' download included) to its end, one at a time among the
agents of this batchsite (its data dir) on this host. Start tasks of other users change
nothing of the host's and run at once. A job preparation task is a node's setup too (its
installs, as often as a start task's) and takes the same turns; tasks and releases do not.

The lock is a flock on a file of the data dir, taken without waiting (the agent's loop
tries again at its next pass) and held by an open descriptor: closed when the start task
ends, and by the kernel when the agent exits or execs (O_CLOEXEC), so a task's processes
never hold it. Who needs a turn is identity.runs_as_root's to say.
"""

from __future__ import annotations

import fcntl
import os

from django.conf import settings

LOCK_NAME = "root-start-tasks.lock"


def take_turn() -> int | None:
    """The descriptor that holds the turn, or None while another agent's start task has it."""
    path = os.path.join(settings.DATA_DIR, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def end_turn(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)
