"""Tasks run as the user their userIdentity names, as on a Batch Linux node, by real agents
(root here, as on `make run` and in CI): a non-admin task tries to read the database, the
secret key, the agent's environment, another account's and (task scope) another task's
files, and to signal the agent; each fails. An admin task runs as root, a userName task
as the pool's user account with its uid and gid, and an agent that is not root runs
everything as itself and says so."""

from __future__ import annotations

import grp
import os
import pwd
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tasks.errors import BatchError
from tasks.models import Attempt, ComputeNode, NodeCleanup, Task
from tasks.nodehost import identity
from tasks.operations.pools import add_pool, remove_nodes
from tasks.operations.tasks import delete_task
from tests.agents import FAST, ROOT, database_url, wait_for
from tests.execution import add, fresh, make_job
from tests.factories import AccountFactory

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agents must be root to switch users")


def sh(script: str) -> str:
    return "/bin/sh -c " + shlex.quote(script)


def tries(*paths: str) -> str:
    """A script that says, for each path, whether it could read it."""
    return "; ".join(
        f'if cat {p} > /dev/null 2>&1; then echo "read {p}"; else echo "denied {p}"; fi'
        for p in paths
    )


def make_pool(pool_id: str, account: str | None = None, **spec):
    owner = AccountFactory(name=account) if account else AccountFactory()
    return add_pool(owner, spec={"id": pool_id, "vmSize": "local", **spec})


def completed(task: Task) -> Task:
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED,
        timeout=30,
        message=f"task {task.task_id} to complete",
    )
    return task


def output(task: Task) -> list[str]:
    return Path(task.task_root_directory, "stdout.txt").read_text().splitlines()


def ran_as(task: Task) -> str:
    return Attempt.objects.filter(task=task).latest("claimed").run_as


def test_a_default_task_runs_as_the_pools_non_admin_auto_user_and_reaches_no_secret(
    agents, transactional_db
):
    pool = make_pool("id-default")
    database = connection.settings_dict["NAME"] if connection.vendor == "sqlite" else ""
    secret_key = settings.DATA_DIR / ".secret_key"
    probes = [
        str(secret_key),
        "/proc/$PPID/environ",
        "/proc/$PPID/mem",
        *([database] if database else []),
    ]
    task = add(
        make_job(pool.account, pool),
        "t1",
        sh(
            "id -un; echo $HOME; echo $USER; echo $AZ_BATCH_TASK_USER; echo $AZ_BATCH_TASK_USER_IDENTITY; "
            + tries(*probes)
            + f"; ls {settings.DATA_DIR} > /dev/null 2>&1 && echo 'listed data dir' || echo 'denied data dir'"
            + "; kill -0 $PPID 2> /dev/null && echo 'signalled agent' || echo 'denied signal'"
            + "; env | grep -c -e DATABASE_URL -e SECRET -e postgres || true"
        ),
    )
    agents.start(pool, "n1", slots=1)
    task = completed(task)
    assert (task.result, task.exit_code) == ("success", 0), task.failure_info
    # Both were there when the task looked (the agent, like the web tier, makes the key at
    # its start when the data dir has none): a "denied" is not a file that was missing.
    assert secret_key.exists() and (not database or Path(database).exists())
    user = f"_azbp{identity.pool_hash(pool.account.name, pool.pool_id)}"
    wd = f"{task.task_root_directory}/wd"
    lines = output(task)
    assert lines[:5] == [user, wd, user, user, "PoolNonAdmin"]
    assert all(line.startswith("denied") for line in lines[5 : 5 + len(probes)]), lines[5:]
    assert lines[5 + len(probes) :] == ["denied data dir", "denied signal", "0"]
    assert ran_as(task) == f"{user} (auto-user, pool scope, non-admin)"
    # The task's directory, its wd/ and its output are its user's, and its alone.
    uid = pwd.getpwnam(user).pw_uid
    for path in (task.task_root_directory, wd, f"{task.task_root_directory}/stdout.txt"):
        assert os.stat(path).st_uid == uid, path
    assert os.stat(task.task_root_directory).st_mode & 0o777 == 0o700
    assert os.stat(wd).st_mode & 0o777 == 0o700


def test_a_task_cannot_read_another_accounts_task_directory_on_the_same_host(
    agents, transactional_db
):
    alpha, beta = make_pool("local", "idalpha"), make_pool("local", "idbeta")
    secret = add(
        make_job(alpha.account, alpha),
        "secret",
        sh("echo alpha-secret > secret.txt; echo alpha-out"),
    )
    agents.start(alpha, "local-1", slots=1)
    secret = completed(secret)
    assert secret.result == "success", secret.failure_info
    alpha_root = ComputeNode.objects.get(pool=alpha, node_id="local-1").root_dir
    nodes = Path(alpha_root).parents[2]
    spy = add(
        make_job(beta.account, beta),
        "spy",
        sh(
            tries(
                f"{secret.task_root_directory}/wd/secret.txt",
                f"{secret.task_root_directory}/stdout.txt",
            )
            + f"; ls {alpha_root} > /dev/null 2>&1 && echo listed || echo 'denied listing'"
            + f"; ls {nodes} > /dev/null 2>&1 && echo listed || echo 'denied listing'"
        ),
    )
    agents.start(beta, "local-1", slots=1, clean=False)
    spy = completed(spy)
    assert output(spy) == [
        f"denied {secret.task_root_directory}/wd/secret.txt",
        f"denied {secret.task_root_directory}/stdout.txt",
        "denied listing",
        "denied listing",
    ]
    assert (
        Path(secret.task_root_directory, "wd/secret.txt").read_text() == "alpha-secret\n"
    )  # root reads it


def test_task_scope_auto_users_cannot_read_each_others_working_directories(
    agents, transactional_db
):
    pool = make_pool("id-task-scope")
    job = make_job(pool.account, pool)
    scope = {"autoUser": {"scope": "task"}}
    first = add(
        job,
        "first",
        sh("echo mine > secret.txt; echo $AZ_BATCH_TASK_USER_IDENTITY"),
        userIdentity=scope,
    )
    agents.start(pool, "n1", slots=1)
    first = completed(first)
    second = add(
        job,
        "second",
        sh(tries(f"{first.task_root_directory}/wd/secret.txt") + "; id -un"),
        userIdentity=scope,
    )
    second = completed(second)
    assert output(first) == ["TaskNonAdmin"]
    denied, user = output(second)
    assert denied == f"denied {first.task_root_directory}/wd/secret.txt"
    assert (
        user.startswith("_azbt") and ran_as(second) == f"{user} (auto-user, task scope, non-admin)"
    )
    assert ran_as(first) != ran_as(second)


def test_pool_scope_tasks_share_the_nodes_shared_directory_and_other_pools_cannot_reach_it(
    agents, transactional_db
):
    pool, other = make_pool("id-share"), make_pool("id-other")
    job = make_job(pool.account, pool)
    writer = add(job, "writer", sh("echo from-the-writer > $AZ_BATCH_NODE_SHARED_DIR/shared.txt"))
    agents.start(pool, "n1", slots=1)
    assert completed(writer).result == "success", writer.failure_info
    reader = add(
        job,
        "reader",
        sh("cat $AZ_BATCH_NODE_SHARED_DIR/shared.txt; ls $AZ_BATCH_NODE_STARTUP_DIR/.."),
    )
    reader = completed(reader)
    assert output(reader)[0] == "from-the-writer"
    shared = Path(ComputeNode.objects.get(pool=pool, node_id="n1").root_dir, "shared")
    assert grp.getgrgid(shared.stat().st_gid).gr_name == identity.pool_group(
        pool.account.name, pool.pool_id
    )
    outsider = add(
        make_job(other.account, other, "job2"), "outsider", sh(tries(f"{shared}/shared.txt"))
    )
    agents.start(other, "n1", slots=1)
    assert output(completed(outsider)) == [f"denied {shared}/shared.txt"]


def test_an_admin_task_runs_elevated(agents, transactional_db):
    pool = make_pool("id-admin")
    task = add(
        make_job(pool.account, pool),
        "admin",
        sh(f"id -u; echo $AZ_BATCH_TASK_USER_IDENTITY; {tries(settings.DATA_DIR / '.secret_key')}"),
        userIdentity={"autoUser": {"elevationLevel": "admin"}},
    )
    agents.start(pool, "n1", slots=1)
    task = completed(task)
    assert output(task) == ["0", "PoolAdmin", f"read {settings.DATA_DIR / '.secret_key'}"]
    assert ran_as(task) == "root (auto-user, pool scope, admin)"


def test_a_deployment_can_refuse_admin_tasks_which_would_be_root_on_its_host(
    agents, transactional_db
):
    """With BATCHSITE_ADMIN_TASKS_AS_ROOT=false an admin task fails without running, and the
    pool's other tasks run as before."""
    pool = make_pool("id-no-root")
    job = make_job(pool.account, pool)
    admin = add(
        job,
        "admin",
        sh(f"id -u > {settings.DATA_DIR}/ran-as-root"),
        userIdentity={"autoUser": {"elevationLevel": "admin"}},
    )
    plain = add(job, "plain", sh("id -u"))
    agents.start(pool, "n1", slots=1, BATCHSITE_ADMIN_TASKS_AS_ROOT="false")
    admin, plain = completed(admin), completed(plain)
    assert admin.failure_info["code"] == identity.UNAVAILABLE, admin.failure_info
    assert "BATCHSITE_ADMIN_TASKS_AS_ROOT=false" in admin.failure_info["message"]
    assert not (settings.DATA_DIR / "ran-as-root").exists()
    assert output(plain) != ["0"] and plain.result == Task.Result.SUCCESS


@pytest.fixture
def host_user():
    """A user-account name, uid and gid no host user has; the users and groups made for it
    are removed afterwards."""
    taken = {u.pw_uid for u in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    uid = random.choice([n for n in range(61000, 61999) if n not in taken])
    name = f"bsid{uid}"
    yield name, uid
    subprocess.run(["userdel", name], capture_output=True, check=False)
    for group in grp.getgrall():
        if group.gr_gid == uid:
            subprocess.run(["groupdel", group.gr_name], capture_output=True, check=False)


def test_a_user_name_task_runs_as_the_pools_user_account_with_its_uid_and_gid(
    agents, transactional_db, host_user
):
    name, uid = host_user
    pool = make_pool(
        "id-named",
        userAccounts=[
            {
                "name": name,
                "password": "not-used",
                "linuxUserConfiguration": {"uid": uid, "gid": uid},
            }
        ],
    )
    job = make_job(pool.account, pool)
    task = add(
        job,
        "named",
        sh("id -u; id -g; id -un; echo $AZ_BATCH_TASK_USER_IDENTITY"),
        userIdentity={"username": name},
    )
    unknown = add(job, "unknown", "/bin/true", userIdentity={"username": "nobody-here"})
    system = make_pool("id-system", userAccounts=[{"name": "daemon", "password": "x"}])
    taken = add(
        make_job(system.account, system, "job2"),
        "taken",
        "/bin/true",
        userIdentity={"username": "daemon"},
    )
    agents.start(pool, "n1", slots=1)
    agents.start(system, "n1", slots=1)
    assert output(completed(task)) == [str(uid), str(uid), name, name]
    assert ran_as(task) == f"{name} (user account, non-admin)"
    assert completed(unknown).failure_info["code"] == identity.NOT_FOUND
    assert unknown.failure_info["category"] == "usererror" and unknown.exit_code is None
    failure = completed(taken).failure_info
    assert failure["code"] == identity.UNAVAILABLE and "not this pool's" in failure["message"], (
        failure
    )


def test_a_start_task_user_name_must_be_one_of_the_pools_user_accounts(transactional_db):
    with pytest.raises(BatchError) as refused:
        make_pool(
            "id-bad-start",
            startTask={"commandLine": "/bin/true", "userIdentity": {"username": "ghost"}},
        )
    assert refused.value.code == "InvalidPropertyValue"
    with pytest.raises(BatchError) as refused:
        make_pool(
            "id-bad-uid",
            userAccounts=[{"name": "u1", "password": "x", "linuxUserConfiguration": {"uid": 5}}],
        )
    assert refused.value.code == "InvalidPropertyValue"
    make_pool(
        "id-good-start",
        userAccounts=[{"name": "u1", "password": "x"}],
        startTask={"commandLine": "/bin/true", "userIdentity": {"username": "u1"}},
    )


def test_the_start_task_runs_as_its_own_auto_user_and_the_pools_tasks_read_what_it_left(
    agents, transactional_db
):
    pool = make_pool(
        "id-start",
        startTask={
            "commandLine": sh("echo tool > tool; id -un; echo $AZ_BATCH_TASK_USER_IDENTITY"),
            "waitForSuccess": True,
        },
    )
    task = add(
        make_job(pool.account, pool),
        "t1",
        sh(
            "cat $AZ_BATCH_NODE_STARTUP_DIR/wd/tool; touch $AZ_BATCH_NODE_STARTUP_DIR/wd/mine 2> /dev/null || echo read-only"
        ),
    )
    agents.start(pool, "n1", slots=1)
    task = completed(task)
    startup = Path(ComputeNode.objects.get(pool=pool, node_id="n1").root_dir, "startup")
    start_user, start_identity = (startup / "stdout.txt").read_text().splitlines()
    assert start_user.startswith("_azbt") and start_identity == "TaskNonAdmin"
    assert output(task) == ["tool", "read-only"]


# --- an agent that is not root ----------------------------------------------------------


@pytest.fixture
def plain_user():
    """A throwaway non-root user to run an agent as, with a data dir of its own; on SQLite
    it gets (by its group) the test database file and its directory for the test."""
    name = f"bsidagent{random.randrange(10**5)}"
    subprocess.run(
        ["useradd", "--user-group", "--no-create-home", name], check=True, capture_output=True
    )
    entry = pwd.getpwnam(name)
    data = Path(tempfile.mkdtemp(prefix="bsid-agent-", dir="/tmp"))
    os.chown(data, entry.pw_uid, entry.pw_gid)
    restored = []
    if connection.vendor == "sqlite":
        db = Path(connection.settings_dict["NAME"])
        for path in [db.parent, *db.parent.glob(db.name + "*")]:
            st = path.stat()
            restored.append((path, st.st_gid, st.st_mode))
            os.chown(path, -1, entry.pw_gid)
            os.chmod(path, st.st_mode | (0o070 if path.is_dir() else 0o060))
    yield entry, data
    for path, gid, mode in restored:
        os.chown(path, -1, gid)
        os.chmod(path, mode)
    shutil.rmtree(data, ignore_errors=True)
    subprocess.run(["userdel", name], capture_output=True, check=False)


def test_an_agent_that_is_not_root_runs_every_task_as_itself_and_says_so(
    transactional_db, plain_user
):
    entry, data = plain_user
    pool = make_pool("id-plain")
    job = make_job(pool.account, pool)
    plain = add(job, "plain", sh("id -un; echo $AZ_BATCH_TASK_USER_IDENTITY"))
    elevated = add(
        job, "elevated", "/bin/true", userIdentity={"autoUser": {"elevationLevel": "admin"}}
    )
    # The agent's Python: the venv's packages with the system's interpreter (the venv's
    # may live where the user cannot reach, /root/.pyenv).
    python = identity.interpreter(
        identity.Identity(user=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)
    )
    site = next(p for p in sys.path if p.endswith("site-packages") and str(ROOT) in p)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data),
        "PYTHONPATH": f"{site}:{ROOT}",
        "DATABASE_URL": database_url(),
        "BATCHSITE_DATA_DIR": str(data),
        **FAST,
        **{k: v for k, v in os.environ.items() if k.startswith(("BATCHSITE_ACCOUNT", "DJANGO_"))},
    }
    log = data / "agent.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                "setpriv",
                f"--reuid={entry.pw_uid}",
                f"--regid={entry.pw_gid}",
                "--clear-groups",
                python,
                str(ROOT / "manage.py"),
                "runnode",
                "--pool",
                pool.pool_id,
                "--slots",
                "1",
                "--node-id",
                "n1",
                "--account",
                pool.account.name,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: (
                proc.poll() is not None
                or fresh(elevated).state == Task.State.COMPLETED
                and fresh(plain).state == Task.State.COMPLETED
            ),
            timeout=60,
            message="the tasks of the plain agent",
        )
        assert proc.poll() is None, log.read_text()
        plain, elevated = fresh(plain), fresh(elevated)
        assert output(plain) == [entry.pw_name, "PoolNonAdmin"], plain.failure_info
        assert os.stat(plain.task_root_directory).st_uid == entry.pw_uid
        assert ran_as(plain) == f"{entry.pw_name} (the agent's own user: the agent is not root)"
        assert elevated.failure_info["code"] == identity.UNAVAILABLE, elevated.failure_info
        assert "not root" in elevated.failure_info["message"]
        node = ComputeNode.objects.get(pool=pool, node_id="n1")
        assert [e["code"] for e in node.errors] == ["NodeAgentNotRoot"]
        assert "not root" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_agents_racing_to_make_one_pools_users_all_get_the_same_ones():
    pool_id = f"race{random.randrange(10**6)}"
    script = (
        "import sys; from tasks.nodehost import identity; u = identity.run_as(None, account='race', "
        f"pool_id='{pool_id}', user_accounts=None, task_key='k'); print(u.user, u.uid, u.groups[0])"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        results = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), results
        assert len({out for out, _ in results}) == 1, results
        user, uid, gid = results[0][0].split()
        assert pwd.getpwnam(user).pw_uid == int(uid)
        assert grp.getgrgid(int(gid)).gr_name == identity.pool_group("race", pool_id)
    finally:
        subprocess.run(
            ["userdel", f"_azbp{identity.pool_hash('race', pool_id)}"],
            capture_output=True,
            check=False,
        )
        subprocess.run(
            ["groupdel", identity.pool_group("race", pool_id)], capture_output=True, check=False
        )


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def test_a_task_scope_user_goes_with_its_task_directory_and_a_start_task_user_with_its_node(
    agents, transactional_db
):
    """A Batch node's task users go with the VM; here they would pile up on the host (one
    per task-scope task and per node start): each is removed once its directory is."""
    pool = make_pool("id-forget", startTask={"commandLine": "/bin/true", "waitForSuccess": True})
    job = make_job(pool.account, pool)
    task = add(job, "mine", sh("id -un"), userIdentity={"autoUser": {"scope": "task"}})
    keep = add(job, "keep", sh("id -un"), userIdentity={"autoUser": {"scope": "task"}})
    agents.start(pool, "n1", slots=1)
    task, keep = completed(task), completed(keep)
    user, kept = output(task)[0], output(keep)[0]
    node = ComputeNode.objects.get(pool=pool, node_id="n1")
    start_user = identity.task_user(
        pool.account.name, pool.pool_id, f"{pool.account.name}/{pool.pool_id}/n1/startup"
    )
    assert user.startswith("_azbt") and _exists(user) and _exists(kept) and _exists(start_user)
    delete_task(task)
    wait_for(
        lambda: not NodeCleanup.objects.filter(node_name=node.node_id).exists(),
        message="the agent to carry out the cleanup",
    )
    assert not Path(task.task_root_directory).exists()
    assert not _exists(user), "the deleted task's user is still on the host"
    assert _exists(kept) and _exists(start_user)
    remove_nodes(pool, node_ids=["n1"])
    wait_for(
        lambda: not ComputeNode.objects.filter(pk=node.pk).exists(),
        timeout=30,
        message="the node to leave the pool",
    )
    wait_for(
        lambda: not _exists(start_user) and not _exists(kept),
        timeout=15,
        message="the node's task users to go with its disk",
    )


def test_forgetting_a_task_user_never_touches_a_user_that_is_not_the_pools(transactional_db):
    name = identity.task_user("acct", "p", "acct/p/n1/workitems/j/job-1/t")
    subprocess.run(["useradd", "--no-create-home", "--comment", "someone else", name], check=True)
    try:
        assert identity.forget_task_user("acct", "p", "acct/p/n1/workitems/j/job-1/t") is False
        assert _exists(name)
        assert identity.forget_task_user("acct", "p", "acct/p/n1/workitems/j/job-1/other") is False
    finally:
        subprocess.run(["userdel", name], check=False)


def test_forgetting_a_task_user_that_was_never_made_does_not_wait_for_the_host_lock():
    import fcntl
    import threading

    directory = "/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir()
    fd = os.open(os.path.join(directory, identity._LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    answers = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another agent makes a user meanwhile
        forget = threading.Thread(
            target=lambda: answers.append(
                identity.forget_task_user("acct", "p", "acct/p/n1/workitems/j/job-1/never")
            ),
            daemon=True,
        )
        forget.start()
        forget.join(5)
        finished = not forget.is_alive()
    finally:
        os.close(fd)  # releases the lock: the thread, if it waited, goes on
    forget.join(5)
    assert finished, "it waited for the host-wide lock"
    assert answers == [False]
