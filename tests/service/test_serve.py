"""`manage.py serve` as `make run` starts it: one dead child no longer stops the service,
Ctrl-C stops everything cleanly, and a first start says how to sign in.

Each test serves its own SQLite database in a data dir of its own (tests/service/conftest.py),
never the test database."""

from __future__ import annotations

import stat

import pytest

from batchsite.env import DEV_ACCOUNT_KEY
from tests.agents import wait_for
from tests.service.live import Api, alive, until_replaced

pytestmark = pytest.mark.slow


def test_a_killed_agent_web_server_or_sweep_is_restarted_and_the_service_keeps_serving(fresh):
    serve = fresh(nodes=1, slots=1)
    serve.wait_ready()
    api = serve.api
    pids = serve.data_dir / "task-pids"
    # The first run hangs (until its agent dies); the rerun after the requeue ends at once.
    script = (
        f"if [ -s {pids} ]; then echo $$ >> {pids}; exit 0; fi; echo $$ >> {pids}; exec sleep 600"
    )
    assert api.call("POST", "/jobs", {"id": "j", "poolInfo": {"poolId": "local"}})[0] == 201
    # Admin (root): the pids file is in the data dir, which no other task may write in.
    assert (
        api.call(
            "POST",
            "/jobs/j/tasks",
            {
                "id": "t",
                "commandLine": f"/bin/sh -c '{script}'",
                "userIdentity": {"autoUser": {"elevationLevel": "admin"}},
            },
        )[0]
        == 201
    )
    wait_for(lambda: pids.exists() and pids.read_text().strip(), message="the task to start")
    orphan = int(pids.read_text().split()[0])

    # A node agent dies: the reconciler starts it again with the same node id; the new
    # agent kills what its predecessor left running, and the task it ran is requeued and
    # completes.
    ((node_id, agent),) = serve.agents().items()
    agent.kill()
    wait_for(
        lambda: (a := serve.agents().get(node_id)) is not None and a.pid != agent.pid,
        timeout=60,
        message=f"the reconciler to start {node_id} again\n{serve.log()}",
    )
    wait_for(
        lambda: not alive(orphan), timeout=30, message="the dead agent's task process to be killed"
    )
    task = wait_for(
        lambda: (b := api.call("GET", "/jobs/j/tasks/t")[1]).get("state") == "completed" and b,
        timeout=60,
        message="the requeued task to complete",
    )
    assert (task["executionInfo"]["result"], task["executionInfo"]["requeueCount"]) == (
        "success",
        1,
    )

    # The reconciler dies: it is restarted and adopts the running agent instead of starting
    # another one.
    agent = serve.agents()[node_id]
    reconciler = serve.children()["reconciler"]
    reconciler.kill()
    until_replaced(serve, "reconciler", reconciler.pid)
    assert alive(agent.pid)
    status, nodes = api.call("GET", "/pools/local/nodes")
    assert status == 200 and [n["id"] for n in nodes["value"]] == [node_id]

    # The web server dies (its workers with it): the API answers again.
    web = serve.children()["web"]
    workers = [p.pid for p in web.children()]
    web.kill()
    until_replaced(serve, "web", web.pid)
    wait_for(serve.api.answers, timeout=60, message=f"the API to answer again\n{serve.log()}")
    assert not any(alive(pid) for pid in workers)

    # The sweep dies.
    sweep = serve.children()["sweep"]
    sweep.kill()
    until_replaced(serve, "sweep", sweep.pid)

    assert serve.proc.poll() is None
    log = serve.log()
    for role, pid in (("reconciler", reconciler.pid), ("web", web.pid), ("sweep", sweep.pid)):
        assert f"{role} (pid {pid}) was killed by SIGKILL" in log
        assert f"restarting {role} in" in log


def test_ctrl_c_stops_every_child_cleanly_and_requeues_the_running_tasks(fresh):
    serve = fresh(nodes=2, slots=1)
    serve.wait_ready(nodes=2)
    api = serve.api
    assert api.call("POST", "/jobs", {"id": "j", "poolInfo": {"poolId": "local"}})[0] == 201
    assert api.call("POST", "/jobs/j/tasks", {"id": "t", "commandLine": "sleep 600"})[0] == 201
    wait_for(
        lambda: api.call("GET", "/jobs/j/tasks/t")[1].get("state") == "running",
        message="the task to run",
    )
    tree = serve.tree()
    assert sorted(serve.children()) == ["reconciler", "sweep", "web"] and len(serve.agents()) == 2

    assert serve.interrupt() == 0
    assert not any(alive(pid) for pid in tree)
    log = serve.log()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
    assert "2 local node agents stopped" in log  # SIGTERM from the reconciler: they requeued
    assert "was killed by" not in log and "restarting" not in log


def test_a_first_start_says_how_to_sign_in_and_later_starts_point_at_the_password_file(fresh):
    first = fresh(nodes=0)
    first.wait_ready(nodes=0)
    password_file = first.data_dir / "initial-admin-password"
    password = password_file.read_text().strip()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert len(password) >= 16
    banner = first.log()
    assert f"sign in as admin with the password {password}" in banner
    assert first.interrupt() == 0

    again = fresh(nodes=0)
    again.wait_ready(nodes=0)
    banner = again.log()
    assert password not in banner
    assert f"sign in as admin with the password in {password_file}" in banner
    assert again.interrupt() == 0


def test_each_instance_has_its_own_gunicorn_control_socket(fresh):
    serve = fresh(nodes=0)
    serve.wait_ready(nodes=0)
    own = serve.data_dir / "gunicorn.ctl"
    wait_for(own.exists, message="the instance's control socket")
    assert stat.S_ISSOCK(own.stat().st_mode)
    assert not (
        serve.data_dir / "home" / ".gunicorn" / "gunicorn.ctl"
    ).exists()  # gunicorn's shared default
    assert serve.interrupt() == 0


def test_the_local_pool_and_its_nodes_belong_to_the_default_account_only(fresh):
    other_key = "b3RoZXItYWNjb3VudC1rZXktZm9yLXRlc3RzLTAwMDAwMDAwMDAwMDAwMDA="
    serve = fresh(
        nodes=1, env={"BATCHSITE_ACCOUNTS": f"devbatch:{DEV_ACCOUNT_KEY};teamb:{other_key}"}
    )
    serve.wait_ready()
    other = Api(serve.port, "teamb", other_key)
    status, body = other.call("GET", "/pools")
    assert (status, body["value"]) == (200, [])
    assert other.call("GET", "/pools/local")[0] == 404
    assert [p["id"] for p in serve.api.call("GET", "/pools")[1]["value"]] == ["local"]
    assert serve.interrupt() == 0
