"""Which Unix user runs a task's processes, as on a Batch Linux node.

A task's `userIdentity` decides it: `autoUser` (scope `pool` or `task`, elevationLevel
`nonadmin` or `admin`) or `userName`, one of the pool's `userAccounts`. Omitted, a task
runs as the pool's non-admin auto-user (Batch's default scope is pool) and a start task
as a non-admin auto-user of its own (the task scope, as Batch reports a start task's
default). `admin` runs as the agent's elevated user, root, unless the deployment refuses
that (BATCHSITE_ADMIN_TASKS_AS_ROOT: root on this host reaches every account).

This host may run nodes of many pools of many accounts, where Batch gives each pool its
own machines; so the Unix users are the pool's, never shared across pools:

- the pool's non-admin auto-user (Batch's `_azbatch`) is `_azbp<h>`, `<h>` a hash of the
  account and pool; a task-scope non-admin auto-user is `_azbt<hash>` of the task's
  directory, one per task, removed with that directory (`forget_task_user`): a Batch
  node's task users go with the VM, and here they would pile up on the host;
- a user account keeps its name, with the pool's `linuxUserConfiguration` uid/gid when
  given; a name the host already has for something else (root, a service, another pool's
  account) is never taken over: the task fails;
- every user of the pool gets the pool's group `_azbg<h>` as a supplementary group: the
  node's shared directory is the group's (setgid, sticky), so the pool's tasks share it
  and no other pool's can reach it.

Each user made here carries `batchsite pool <account>/<pool>` as its comment (GECOS): that is
how an existing user is known to be the pool's. Users are made with the system's
`groupadd`/`useradd`, under a host-wide lock (two agents of one host make the same pool
user at once); pool users and user accounts are never removed.

An agent that is not root cannot switch users: it runs every task as itself (its node's
errors and its log say so), and a task that asks for another user (admin, or a user
account) fails with UserIdentityUnavailable.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import hashlib
import logging
import os
import pwd
import re
import stat
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass

from .errors import LaunchError

log = logging.getLogger("batchsite.node")

POOL, TASK = "pool", "task"
NONADMIN, ADMIN = "nonadmin", "admin"
# batchsite's own failure codes (category UserError): Batch documents none for these.
NOT_FOUND = "UserIdentityNotFound"
UNAVAILABLE = "UserIdentityUnavailable"
MARK = "batchsite pool "
_UNIX_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_LOCK = "batchsite-users.lock"
_made: dict[str, tuple[int, int]] = {}  # user name -> (uid, gid), made or checked by this process
_groups: dict[str, int] = {}  # group name -> gid, likewise
_made_lock = threading.Lock()


@dataclass(frozen=True)
class Identity:
    """The Unix user a task's processes run as, and what the task asked for."""

    user: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()  # supplementary groups: the pool's
    scope: str = POOL  # an auto-user's scope; "" for a user account
    elevation: str = NONADMIN
    account_name: str = ""  # the userName, for a user account
    agent_user: bool = False  # not root: the agent's own user, whatever was asked

    @property
    def batch_identity(self) -> str:
        """AZ_BATCH_TASK_USER_IDENTITY: PoolNonAdmin, TaskAdmin..., or the user account's name."""
        if self.account_name:
            return self.account_name
        return f"{self.scope.capitalize()}{'Admin' if self.elevation == ADMIN else 'NonAdmin'}"

    @property
    def description(self) -> str:
        if self.agent_user:
            return "the agent's own user: the agent is not root"
        level = "admin" if self.elevation == ADMIN else "non-admin"
        if self.account_name:
            # An account's admin elevation is not given here (no sudo): say so.
            return (
                "user account, admin (not elevated)"
                if self.elevation == ADMIN
                else "user account, non-admin"
            )
        return f"auto-user, {self.scope} scope, {level}"

    @property
    def label(self) -> str:
        """What the task's attempt records: `_azbp1234 (auto-user, pool scope, non-admin)`."""
        return f"{self.user} ({self.description})"

    @property
    def switches(self) -> bool:
        """The processes run as another user than the agent's."""
        return self.uid != os.geteuid()

    def popen_kwargs(self) -> dict:
        """subprocess.Popen's arguments that start a process as this user (none for the
        agent's own user)."""
        if not self.switches:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def environment(self, home: str) -> dict[str, str]:
        """The variables a task of this user gets: HOME is its working directory, as on a
        Batch Linux node."""
        return {
            "HOME": home,
            "USER": self.user,
            "LOGNAME": self.user,
            "AZ_BATCH_TASK_USER": self.user,
            "AZ_BATCH_TASK_USER_IDENTITY": self.batch_identity,
        }


def is_root() -> bool:
    return os.geteuid() == 0


def pool_hash(account: str, pool_id: str) -> str:
    return hashlib.sha256(f"{account}/{pool_id.lower()}".encode()).hexdigest()[:10]


def pool_group(account: str, pool_id: str) -> str:
    return f"_azbg{pool_hash(account, pool_id)}"


def pool_gid(account: str, pool_id: str) -> int:
    """The gid of the pool's group (made if missing): the node's shared directory's."""
    return _ensure_group(pool_group(account, pool_id))


def runs_as_root(user_identity: dict | None) -> bool:
    """Whether run_as gives this userIdentity root: an admin auto-user (not a user account,
    whose admin elevation is not given here), on an agent that is root, where the deployment
    runs tasks as root (BATCHSITE_ADMIN_TASKS_AS_ROOT)."""
    from django.conf import settings

    spec = user_identity or {}
    auto = spec.get("autoUser") or {}
    return (
        not (spec.get("username") or spec.get("userName"))
        and auto.get("elevationLevel") == ADMIN
        and is_root()
        and settings.BATCHSITE_ADMIN_TASKS_AS_ROOT
    )


def run_as(
    user_identity: dict | None,
    *,
    account: str,
    pool_id: str,
    user_accounts: list | None,
    task_key: str,
    default_scope: str = POOL,
) -> Identity:
    """The user a task (start task, job preparation/release, job manager) runs as, made on
    this host if it is not there yet. `task_key` names the task's directory (a
    task-scope auto-user is the task's own). Raises LaunchError UserIdentityNotFound (a
    userName the pool has no account for) or UserIdentityUnavailable (the user cannot be
    made, or the agent is not root and the task asks for admin or a user account)."""
    spec = user_identity or {}
    name = spec.get("username") or spec.get("userName") or ""
    auto = spec.get("autoUser") or {}
    scope = auto.get("scope") or default_scope
    elevation = auto.get("elevationLevel") or NONADMIN
    if name:
        entry = next((u for u in user_accounts or [] if u.get("name") == name), None)
        if entry is None:
            raise LaunchError(NOT_FOUND, f"The pool {pool_id} has no user account {name}.")
    if not is_root():
        if name or elevation == ADMIN:
            asked = f"the user account {name}" if name else "an admin auto-user"
            raise LaunchError(
                UNAVAILABLE,
                f"The task asks for {asked}, but this node's agent is not root and runs "
                f"every task as its own user {_me()}.",
            )
        return Identity(
            user=_me(),
            uid=os.geteuid(),
            gid=os.getegid(),
            scope=scope,
            elevation=elevation,
            agent_user=True,
        )
    mark = f"{MARK}{account}/{pool_id}"
    group = pool_gid(account, pool_id)
    if name:
        linux = entry.get("linuxUserConfiguration") or {}
        uid, gid = _ensure_user(
            name,
            mark,
            uid=linux.get("uid"),
            gid=linux.get("gid"),
            prefix=pool_hash(account, pool_id),
        )
        return Identity(
            user=name,
            uid=uid,
            gid=gid,
            groups=(group,),
            scope="",
            elevation=entry.get("elevationLevel") or NONADMIN,
            account_name=name,
        )
    if elevation == ADMIN:
        from django.conf import settings

        if not settings.BATCHSITE_ADMIN_TASKS_AS_ROOT:
            raise LaunchError(
                UNAVAILABLE,
                "The task asks for an admin auto-user, which is root on this node's host, and "
                "this batchsite runs no task as root (BATCHSITE_ADMIN_TASKS_AS_ROOT=false).",
            )
        return Identity(user="root", uid=0, gid=0, groups=(group,), scope=scope, elevation=ADMIN)
    if scope == TASK:
        user = task_user(account, pool_id, task_key)
    else:
        user = f"_azbp{pool_hash(account, pool_id)}"
    uid, gid = _ensure_user(user, mark)
    return Identity(user=user, uid=uid, gid=gid, groups=(group,), scope=scope, elevation=elevation)


def task_user(account: str, pool_id: str, task_key: str) -> str:
    """The name of the task-scope non-admin auto-user of the task directory `task_key`."""
    return (
        "_azbt"
        + hashlib.sha256(f"{account}/{pool_id.lower()}/{task_key}".encode()).hexdigest()[:16]
    )


def forget_task_user(account: str, pool_id: str, task_key: str) -> bool:
    """Remove the task-scope auto-user of a task directory that is gone, if this host has
    it and it is the pool's; True when it was removed. Called after the directory is
    removed, so no file of the task is left to a later user given the same uid. A user
    that still runs a process (a daemon the task left) is kept, logged: `userdel`
    refuses it."""
    if not is_root():
        return False
    name = task_user(account, pool_id, task_key)
    try:
        pwd.getpwnam(name)
    except KeyError:
        # Never made (the task ran as the pool's or a named user: the default): no need
        # to queue for the host-wide lock behind other agents' useradd and userdel, which
        # held up the agent's loop (its next kill, its next cleanup) on a busy host.
        return False
    with _host_lock():
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return False
        if entry.pw_gecos != f"{MARK}{account}/{pool_id}":
            return False  # not the pool's: never touched
        result = subprocess.run(["userdel", name], capture_output=True, text=True, check=False)
    with _made_lock:
        _made.pop(name, None)
    if result.returncode != 0:
        log.warning(
            "the task user %s was not removed: %s", name, (result.stderr or result.stdout).strip()
        )
        return False
    return True


def _me() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


@contextlib.contextmanager
def _host_lock():
    """Held while users are looked up and made: agents of one host (whatever their data
    dirs) make one pool user at once."""
    directory = "/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir()
    fd = os.open(os.path.join(directory, _LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise LaunchError(
            UNAVAILABLE,
            f"The user cannot be made ({' '.join(argv[:1])}): "
            f"{reason[-1] if reason else result.returncode}.",
        )


def _ensure_group(name: str) -> int:
    with _made_lock:
        if name in _groups:
            return _groups[name]
    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError:
        with _host_lock():
            try:
                grp.getgrnam(name)
            except KeyError:
                _run(["groupadd", name])  # an ordinary gid, as the users' (see _ensure_user)
            gid = grp.getgrnam(name).gr_gid
    with _made_lock:
        _groups[name] = gid
    return gid


def _ensure_user(
    name: str, mark: str, *, uid: int | None = None, gid: int | None = None, prefix: str = ""
) -> tuple[int, int]:
    """The uid and gid of the pool's user `name`, made if missing. A user of that name
    that is not the pool's (no mark, another pool's mark, another uid or gid than the
    pool asks for) is refused, never taken over."""
    with _made_lock:
        known = _made.get(name)
    if known is not None and known[0] == (uid if uid is not None else known[0]):
        return known
    if not _UNIX_NAME.match(name):
        raise LaunchError(
            UNAVAILABLE,
            f"The user account name {name} is not a Linux user name "
            "(lower-case letters, digits, _ and -, at most 32).",
        )
    with _host_lock():
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            entry = None
        if entry is None:
            argv = [
                "useradd",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/bin/sh",
                "--comment",
                mark,
            ]
            if uid is None:
                # Ordinary ids, as Batch's auto-users have (uid >= 1000): task-scope users, one
                # per task or node start and never removed, would use up the ~900 system ids.
                argv += ["--user-group"]
            else:
                argv += ["--uid", str(uid)]
            if gid is not None:
                argv += ["--gid", str(_ensure_gid(gid, name, prefix))]
            elif uid is not None:
                argv += ["--user-group"]
            _run([*argv, name])
            entry = pwd.getpwnam(name)
    if entry.pw_gecos != mark:
        raise LaunchError(
            UNAVAILABLE,
            f"The user {name} exists on this host and is not this pool's: "
            "choose another user account name.",
        )
    if (uid is not None and entry.pw_uid != uid) or (gid is not None and entry.pw_gid != gid):
        raise LaunchError(
            UNAVAILABLE,
            f"The user {name} exists on this host with uid {entry.pw_uid} "
            f"gid {entry.pw_gid}, not the pool's.",
        )
    with _made_lock:
        _made[name] = (entry.pw_uid, entry.pw_gid)
    return entry.pw_uid, entry.pw_gid


def _ensure_gid(gid: int, user: str, prefix: str) -> int:
    """A linuxUserConfiguration gid: a group the pool made (its accounts may share one),
    made if no group has it; another group's gid is refused."""
    try:
        name = grp.getgrgid(gid).gr_name
    except KeyError:
        _run(["groupadd", "--gid", str(gid), f"_azbx{prefix}_{gid}"[:32]])
        return gid
    if not name.startswith(f"_azbx{prefix}"):
        raise LaunchError(
            UNAVAILABLE,
            f"The gid {gid} of the user account {user} is the host's group {name}, "
            "not one this pool made.",
        )
    return gid


def reachable(path: str) -> bool:
    """Whether any user may execute `path`: every directory above it traversable by
    others, and the file executable by them (conservative: a task's user is nobody's owner
    or group here)."""
    real = os.path.realpath(path)
    try:
        if not os.stat(real).st_mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(real)
        while True:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
            if parent == os.path.dirname(parent):
                return True
            parent = os.path.dirname(parent)
    except OSError:
        return False


def interpreter(user: Identity | None) -> str:
    """The Python a helper program of the task (the resourceFiles downloader, the
    outputFiles uploader) runs with as the task's user: the agent's own when that user can
    execute it, else the system's python3 (a pyenv under /root, say, is out of a task's
    reach). The helpers use the standard library only."""
    if user is None or not user.switches or reachable(sys.executable):
        return sys.executable
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"):
        if reachable(candidate):
            return candidate
    raise LaunchError(
        UNAVAILABLE,
        f"No Python the task's user {user.user} may run was found: "
        f"{sys.executable} is out of its reach and there is no /usr/bin/python3.",
    )


def agent_note() -> dict | None:
    """The node error a non-root agent reports (ComputeNodeError): its tasks all run as it."""
    if is_root():
        return None
    return {
        "code": "NodeAgentNotRoot",
        "message": f"The node's agent runs as {_me()}, not root: every task runs as {_me()}, tasks "
        "that ask for admin or a user account fail, and tasks are not isolated from each other.",
    }


def protect_data_dir(data_dir: str, keep: tuple[str, ...] = ("nodes",)) -> None:
    """Make the data dir only traversable by others and everything in it but `keep` (the
    nodes' directory) unreadable to them: the database file, the secret key, logs. Group
    permissions stay (no task's user is in the data dir's group). Best effort: what cannot
    be changed is left as it is."""
    with contextlib.suppress(OSError):
        mode = os.stat(data_dir).st_mode
        os.chmod(data_dir, (mode & 0o7770) | 0o001)
    with contextlib.suppress(OSError), os.scandir(data_dir) as entries:
        for entry in entries:
            if entry.name in keep:
                continue
            with contextlib.suppress(OSError):
                mode = entry.stat(follow_symlinks=False).st_mode
                if not entry.is_symlink() and mode & 0o007:
                    os.chmod(entry.path, mode & 0o7770)
