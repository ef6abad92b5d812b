"""The agent against links its tasks plant in the node's directories: in the place of
their job's directory, of startup/ and shared/, of their own stdout.txt, of the node's root
or of the directory above it. The agent makes, writes and removes nothing in what a link
points to (tasks.nodehost.disk): a link where it makes a directory is replaced by a real one,
and a removal never goes through one."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tasks.models import ComputeNode, NodeCleanup, Task
from tasks.node.agent import NodeAgent
from tasks.nodehost import layout
from tasks.operations import nodes as node_ops
from tasks.operations.pools import add_pool
from tasks.operations.tasks import delete_task
from tests.agents import wait_for
from tests.execution import add, fresh, make_job
from tests.factories import AccountFactory

# A task of job1 that moves its job's job-1 directory aside and leaves a link in its place.
SWAP_JOB_DIR = "/bin/sh -c 'cd ../../.. && mv job-1 moved && ln -s {outside} job-1'"
# Only root may touch the job's directory (the agent's, 0711): an admin task swaps it.
ADMIN = {"autoUser": {"elevationLevel": "admin"}}


@pytest.fixture
def pool(transactional_db):
    return add_pool(AccountFactory(name="linked"), spec={"id": "links", "vmSize": "local"})


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside every node, which nothing the agent does may change."""
    folder = tmp_path / "outside"
    (folder / "t1").mkdir(parents=True)
    (folder / "keep.txt").write_text("must survive\n")
    (folder / "t1" / "keep.txt").write_text("must survive\n")
    return folder


def everything_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


UNTOUCHED = ["keep.txt", "t1", "t1/keep.txt"]


def completed(task: Task) -> Task:
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED,
        timeout=20,
        message=f"task {task.task_id} to end",
    )
    return task


def root_of(pool, node_id: str = "n1") -> Path:
    return layout.node_root(settings.DATA_DIR, pool.account.name, pool.pool_id, node_id)


def test_the_next_task_of_a_job_whose_directory_a_task_swapped_for_a_link_is_made_in_a_real_directory(
    agents, pool, outside
):
    agents.start(pool, "n1", slots=1)
    job = make_job(pool.account, pool)
    swap = completed(add(job, "swap", SWAP_JOB_DIR.format(outside=outside), userIdentity=ADMIN))
    assert (
        swap.result == "success" and (root_of(pool) / "workitems" / "job1" / "job-1").is_symlink()
    )
    after = completed(add(job, "t2", "/bin/sh -c 'echo two; echo made > made.txt'"))
    assert after.result == "success", after.failure_info
    assert everything_in(outside) == UNTOUCHED
    job_dir = root_of(pool) / "workitems" / "job1" / "job-1"
    assert job_dir.is_dir() and not job_dir.is_symlink()
    assert (job_dir / "t2" / "stdout.txt").read_text() == "two\n"
    assert (job_dir / "t2" / "wd" / "made.txt").read_text() == "made\n"


def test_a_task_directory_is_never_removed_through_a_link_a_sibling_planted(agents, pool, outside):
    """t1 ran; t2 of the same job swaps the job's directory for a link to a folder that
    holds a t1/ of its own; deleting t1 must not empty that folder."""
    agents.start(pool, "n1", slots=1)
    job = make_job(pool.account, pool)
    first = completed(add(job, "t1", "/bin/sh -c 'echo one'"))
    completed(add(job, "t2", SWAP_JOB_DIR.format(outside=outside), userIdentity=ADMIN))
    delete_task(first)
    node = ComputeNode.objects.get(pool=pool, node_id="n1")
    wait_for(
        lambda: not NodeCleanup.objects.filter(node_name=node.node_id).exists(),
        message="the agent to carry out the cleanup",
    )
    assert everything_in(outside) == UNTOUCHED


@pytest.mark.parametrize("planted", ["link", "fifo"])
def test_a_retry_never_writes_its_output_through_what_the_first_attempt_left(
    agents, pool, tmp_path, planted
):
    """The first attempt leaves a link to a file outside (which opening stdout.txt again
    would empty), or a FIFO (whose opening would wait for a reader: the agent would hang)
    in the place of its stdout.txt and stderr.txt, and fails."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    agents.start(pool, "n1", slots=1)
    plant = {
        "link": f"ln -sf {victim} ../stdout.txt; ln -sf {victim} ../stderr.txt",
        "fifo": "rm ../stdout.txt ../stderr.txt; mkfifo ../stdout.txt ../stderr.txt",
    }[planted]
    script = f"if [ ! -e ../tried ]; then touch ../tried; {plant}; exit 1; fi; echo second"
    task = completed(
        add(
            make_job(pool.account, pool),
            "t1",
            f"/bin/sh -c '{script}'",
            constraints={"maxTaskRetryCount": 1},
        )
    )
    assert (task.result, task.retry_count) == ("success", 1)
    assert victim.read_text() == "precious\n"
    stdout = Path(task.task_root_directory, "stdout.txt")
    assert not stdout.is_symlink() and stdout.read_text() == "second\n"


def test_the_start_task_and_the_shared_directory_never_go_through_links_left_on_the_node(
    agents, transactional_db, tmp_path
):
    """Links left in the place of startup/ and shared/ (by a task of an earlier boot) are
    replaced by real directories when the node boots."""
    pool = add_pool(
        AccountFactory(name="linkedstart"),
        spec={
            "id": "links",
            "vmSize": "local",
            "startTask": {
                "commandLine": "/bin/sh -c 'echo set up; echo data > $AZ_BATCH_NODE_SHARED_DIR/data'"
            },
        },
    )
    root = root_of(pool)
    root.mkdir(parents=True)
    folders = {}
    for name in ("startup", "shared"):
        folders[name] = tmp_path / f"outside-{name}"
        folders[name].mkdir()
        (folders[name] / "keep.txt").write_text("must survive\n")
        (root / name).symlink_to(folders[name], target_is_directory=True)
    agents.start(pool, "n1", slots=1, clean=False)
    wait_for(
        lambda: (ComputeNode.objects.get(pool=pool, node_id="n1").start_task_info or {}).get(
            "result"
        ),
        message="the start task to end",
    )
    assert ComputeNode.objects.get(pool=pool, node_id="n1").start_task_info["result"] == "success"
    for name, folder in folders.items():
        assert everything_in(folder) == ["keep.txt"], name
        assert (root / name).is_dir() and not (root / name).is_symlink()
    assert (root / "startup" / "stdout.txt").read_text() == "set up\n"
    assert (root / "shared" / "data").read_text() == "data\n"


# --- the node's disk wiped (reimage, leaving the pool), in the agent's own process ---------


@pytest.fixture
def agent(pool, settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.STORAGES = {
        **settings.STORAGES,
        "taskfiles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(settings.DATA_DIR / "nodes")},
        },
    }
    had = getattr(connection, "writes_first", None)
    node_agent = NodeAgent(pool, node_id="inproc", slots=1)
    assert node_agent._make_dirs() == ""
    node_agent.node = node_ops.register_node(
        pool, node_id="inproc", slots=1, root_dir=str(node_agent.root)
    )
    yield node_agent
    connection.writes_first = had


def test_a_reimage_wipe_of_a_root_swapped_for_a_link_removes_the_link_only(agent, outside):
    agent.root.rename(agent.root.with_name("moved"))
    agent.root.symlink_to(outside, target_is_directory=True)
    agent._wipe_disk()
    assert everything_in(outside) == UNTOUCHED
    assert not agent.root.exists() and not agent.root.is_symlink()
    assert agent._make_dirs() == ""
    assert sorted(p.name for p in agent.root.iterdir()) == ["shared", "startup", "workitems"]
    assert not agent.root.is_symlink()


def test_leaving_never_removes_a_node_root_through_a_link_above_it(agent, outside):
    """The pool's directory (above the node's root) swapped for a link to a folder that
    holds a directory of the node's name."""
    (outside / "inproc").mkdir()
    (outside / "inproc" / "keep.txt").write_text("must survive\n")
    pool_dir = agent.root.parent
    pool_dir.rename(pool_dir.with_name("moved"))
    pool_dir.symlink_to(outside, target_is_directory=True)
    agent._wipe_disk(everything=True)
    assert everything_in(outside) == sorted([*UNTOUCHED, "inproc", "inproc/keep.txt"])
