"""The suite under pytest-xdist (`make test` runs `pytest -n <workers> --dist loadgroup`):
each worker a batchsite of its own, and the tests that share something of the host with
each other kept on one worker.

A pytest plugin (tests/conftest.py); without `-n` it changes nothing.

- Each worker's data dir is `$TMPDIR/batchsite-xdist-<run>-<worker>` (its node directories,
  wake-up sockets, reconcile lock, task files; removed at the end), also in
  BATCHSITE_DATA_DIR for the processes the tests start. Not under the data dir: an agent
  makes everything there but `nodes/` unreachable to other users (identity.protect_data_dir),
  and tasks run as users of their own. Its test database is pytest-django's per-worker copy (on SQLite in
  the worker's data dir, where the agents protect it from the tasks; `test_<name>_gw0` on PostgreSQL), so agents, providers and instance keys of two workers
  never meet. Ports are the OS's (live_server, Serve, Azurite: port 0), never fixed.
- `xdist_group`s (run on one worker, one after another, under `--dist loadgroup`): every
  test marked `slurm` or using the `slurm` fixture (one Slurm of three nodes: a test waits
  for all of them to be idle), and the tests in HOST_GROUPS, which make users and groups on
  the host or race agents. A test can name its own group with
  `@pytest.mark.xdist_group("name")`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

WORKER = os.environ.get("PYTEST_XDIST_WORKER")

# Tests (node-id prefixes) that share something of the host with each other: a group each.
HOST_GROUPS = {
    # Users and groups made on the host (uids picked from what is free, removed after).
    "tests/security/test_task_identity.py::": "host-users",
    # Agents racing for hundreds of tasks: one race at a time.
    "tests/node/test_agent_faults.py::test_two_agents_racing": "agent-races",
    "tests/node/test_agent_faults.py::test_four_agents_racing": "agent-races",
    "tests/node/test_wakeups.py::test_agents_woken_by_adds_race": "agent-races",
}


def worker_data_dir(worker: str) -> Path:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "run")[:12]
    return Path(tempfile.gettempdir()) / f"batchsite-xdist-{run}-{worker}"


def pytest_configure(config):
    del config
    if WORKER:
        _isolate(worker_data_dir(WORKER))


def pytest_unconfigure(config):
    del config
    if WORKER:
        shutil.rmtree(worker_data_dir(WORKER), ignore_errors=True)


def _isolate(data_dir: Path) -> None:
    """This worker's own data dir, in the settings (for this process) and the environment
    (for its children); the task-file storage follows it where it is the default one."""
    from django.conf import settings
    from django.test.utils import override_settings

    base = Path(settings.DATA_DIR)
    (data_dir / "nodes").mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o711)  # tasks' users reach their directories in nodes/
    storages = dict(settings.STORAGES)
    taskfiles = dict(storages.get("taskfiles", {}))
    if taskfiles.get("OPTIONS", {}).get("location") == str(base / "nodes"):
        taskfiles["OPTIONS"] = {**taskfiles["OPTIONS"], "location": str(data_dir / "nodes")}
        storages["taskfiles"] = taskfiles
    override_settings(DATA_DIR=data_dir, STORAGES=storages).enable()
    os.environ["BATCHSITE_DATA_DIR"] = str(data_dir)
    default = settings.DATABASES["default"]
    if default["ENGINE"] == "batchsite.sqlite":
        # The SQLite test database in the worker's data dir, as the database is in a served
        # batchsite's: the agents protect it there from the tasks' users (in var/ they would
        # not, and a task could read it: tests/security/test_task_identity.py checks).
        default.setdefault("TEST", {})["NAME"] = str(data_dir / "test.sqlite3")


def group_of(item: pytest.Item) -> str | None:
    if item.get_closest_marker("slurm") or "slurm" in getattr(item, "fixturenames", ()):
        return "slurm"
    return next(
        (group for prefix, group in HOST_GROUPS.items() if item.nodeid.startswith(prefix)), None
    )


# tryfirst: xdist turns the marks into the node ids' @group suffix in its own
# pytest_collection_modifyitems, which would otherwise run before this one.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    del config
    for item in items:
        group = group_of(item)
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))


# trylast: after xdist's own hook has (or has not) put the group into the node ids. A pytest
# whose node ids do not take it (9.2 with xdist 3.8) spreads a group over the workers: the
# Slurm tests raced each other for the three nodes and failed now and then, far from the
# cause. Such a test fails at once instead, saying why.
UNGROUPED = pytest.StashKey[set]()


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_check_groups(config, items):
    loadgroup = WORKER and config.getvalue("loadgroup")
    config.stash[UNGROUPED] = {
        item.nodeid
        for item in items
        if loadgroup and item.get_closest_marker("xdist_group") and "@" not in item.nodeid
    }


def pytest_runtest_setup(item):
    if item.nodeid in item.config.stash.get(UNGROUPED, ()):
        pytest.fail(
            "--dist loadgroup put no group into this test's node id, so it would run beside "
            "the others of its group: this pytest and pytest-xdist do not work together "
            "(pyproject.toml pins a pytest that does)",
            pytrace=False,
        )
