"""A real Slurm for tests: the `slurm` fixture and marker.

Tests marked `slurm` (or using the fixture) need a controller that answers and three
usable nodes, as `.ci/slurm-up` starts them on this host. Without them they skip with the
reason, except under BATCHSITE_REQUIRE_SLURM=1 (`.ci/run` sets it), where they fail: CI
never lacks Slurm.

The fixture yields a `Cluster`: the provider of this test run (its instance key comes from
the test database, so a developer's own batchsite on the same cluster is never touched),
with the agents' settings short as for tests/agents.py, and what a test needs to look at
Slurm or to take a Slurm node down and bring it back. Before and after each test every
job of this test run is killed and the nodes are idle again, so tests never see each
other's nodes.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tasks.models import ComputeNode, Pool
from tasks.nodehost import layout
from tasks.providers.base import NodeLaunch
from tasks.providers.slurm import LIVE_STATES, SlurmProvider
from tests.agents import FAST, wait_for

NODES = 3  # what .ci/slurm-up starts: n1, n2, n3
USABLE = {"idle", "mix", "alloc", "comp"}
REQUIRED = os.environ.get("BATCHSITE_REQUIRE_SLURM") == "1"


@functools.cache
def unavailable() -> str | None:
    """Why there is no Slurm to test against, or None."""
    if not shutil.which("sbatch") or not shutil.which("scontrol"):
        return "Slurm's commands (sbatch, squeue, scancel, scontrol) are not installed: run .ci/slurm-up"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
        states = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "Slurm's controller does not answer within 30 s: run .ci/slurm-up"
    if " is UP" not in ping.stdout:
        said = (ping.stdout.strip() or ping.stderr.strip() or "no answer").splitlines()[0]
        return f"no Slurm controller answers (scontrol ping: {said}): run .ci/slurm-up"
    # A state with a suffix (down*, idle~, drain...) is a node Slurm will not give work to.
    usable = [
        line
        for line in states.stdout.splitlines()
        if line.split()[1:] and line.split()[1] in USABLE
    ]
    if len(usable) < NODES:
        return f"Slurm has {len(usable)} usable nodes, the tests need {NODES}: run .ci/slurm-up"
    return None


def require_slurm() -> None:
    reason = unavailable()
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"BATCHSITE_REQUIRE_SLURM=1, but {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item):
    if item.get_closest_marker("slurm"):
        require_slurm()


def squeue(*args: str) -> list[list[str]]:
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", *args], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return [line.split("|") for line in out.splitlines()]


def node_states() -> dict[str, str]:
    out = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N|%t"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return dict(line.split("|") for line in out.splitlines())


class Cluster:
    def __init__(self, provider: SlurmProvider, log_dir: Path) -> None:
        self.provider, self.log_dir = provider, log_dir
        self.launched: set[tuple[str, str, str]] = set()
        self.killed: set[str] = set()

    def launch(
        self, pool: Pool, node_id: str, *, slots: int = 1, options: dict | None = None
    ) -> str:
        """Start a node of the pool through the provider; its handle."""
        self.launched.add((pool.account.name, pool.pool_id, node_id))
        if options is None:
            options = {"log_dir": str(self.log_dir)}
        return self.provider.start(
            NodeLaunch(
                account=pool.account.name,
                pool_id=pool.pool_id,
                node_id=node_id,
                slots=slots,
                options=options,
            )
        )

    def wait_idle(self, pool: Pool, *node_ids: str, timeout: float = 60) -> list[ComputeNode]:
        def ready():
            nodes = list(ComputeNode.objects.filter(pool=pool, node_id__in=node_ids, state="idle"))
            return nodes if len(nodes) == len(node_ids) else None

        return wait_for(
            ready,
            timeout=timeout,
            interval=0.1,
            message=f"nodes {node_ids} to be idle:\n{self.logs()}",
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')}"
            for p in sorted(self.log_dir.rglob("*.log"))
        )

    def slurm_node(self, handle: str) -> str:
        """The Slurm node the job runs on."""
        rows = squeue("-j", handle, "-o", "%N")
        return rows[0][0] if rows else ""

    def state(self, handle: str) -> str:
        rows = squeue("-j", handle, "-o", "%T")
        return rows[0][0] if rows else ""

    def kill_slurm_node(self, node: str) -> None:
        """The machine is gone: SIGSTOP, then SIGKILL, to the node's slurmd and to every
        process of its jobs (slurmstepd, the agent, its tasks), found in the node's cgroup.
        This host's nodes only (.ci/slurm-up's pid files and cgroup/v1 layout)."""
        pid_file = Path(f"/run/slurmd-{node}.pid")
        cgroup = Path(f"/sys/fs/cgroup/freezer/slurm_{node}")
        if not pid_file.exists():
            pytest.skip(
                f"Slurm node {node} is not a slurmd of this host (no {pid_file}): it cannot be killed here"
            )
        self.killed.add(node)
        # All of them stop before any dies, as with a machine that goes: killed one by one,
        # an agent still alive would see its task killed and report it failed.
        stopped: set[int] = set()
        found = {int(pid_file.read_text())}
        while found - stopped:
            for pid in found - stopped:
                _signal(pid, signal.SIGSTOP)
                stopped.add(pid)
            found.update(_cgroup_pids(cgroup))
        for pid in stopped:
            _signal(pid, signal.SIGKILL)

    def restart_slurm_node(self, node: str) -> None:
        subprocess.run(
            ["slurmd", "-N", node],
            check=True,
            timeout=30,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        self.killed.discard(node)

    def clear(self) -> None:
        """Kill every job of this test run and wait until its Slurm nodes are free."""
        for node in self.provider.running():
            self.provider.stop(node.handle, graceful=False)
        wait_for(
            lambda: (
                not [
                    row
                    for row in squeue("--me", "-o", "%T|%j")
                    if row[1].startswith(f"batchsite:{self.provider.instance}:")
                    and row[0] in LIVE_STATES
                ]
            ),
            timeout=60,
            interval=0.1,
            message="this test run's Slurm jobs to end",
        )
        wait_for(
            lambda: all(state in ("idle", "mix") for state in node_states().values()),
            timeout=60,
            interval=0.1,
            message=f"the Slurm nodes to be idle: {node_states()}",
        )


@pytest.fixture
def slurm(transactional_db, settings, tmp_path):
    require_slurm()
    for name, value in FAST.items():
        setattr(settings, name, float(value))
    cluster = Cluster(SlurmProvider(), tmp_path / "slurm-logs")
    cluster.clear()
    yield cluster
    try:
        for node in list(cluster.killed):
            cluster.restart_slurm_node(node)
        cluster.clear()
    finally:
        nodes = set(cluster.launched) | set(
            ComputeNode.objects.values_list("pool__account__name", "pool__pool_id", "node_id")
        )
        for account, pool_id, node_id in nodes:
            shutil.rmtree(
                layout.node_root(settings.DATA_DIR, account, pool_id, node_id), ignore_errors=True
            )
            shutil.rmtree(
                settings.DATA_DIR / "slurm" / account, ignore_errors=True
            )  # the default log_dir


@pytest.fixture(params=["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def node_provider(request, settings, tmp_path):
    """Each real provider in turn, as a pool test's provider: the vmSize table maps every
    vmSize to it, so every pool the test adds gets its nodes from it."""
    if request.param == "local":
        provider, options = request.getfixturevalue("local_provider"), {}
    else:
        provider, options = (
            request.getfixturevalue("slurm").provider,
            {"log_dir": str(tmp_path / "slurm-logs")},
        )
    settings.BATCHSITE_VM_SIZES = {"*": {"provider": request.param, "options": options}}
    return provider


@pytest.fixture
def provider_reconciler(node_provider):
    from tasks.operations.reconcile import Reconciler

    return Reconciler(providers={node_provider.name: node_provider})


def _cgroup_pids(cgroup: Path) -> set[int]:
    pids = set()
    for procs in cgroup.rglob("cgroup.procs"):
        try:
            pids.update(int(pid) for pid in procs.read_text().split())
        except FileNotFoundError:  # a job step's cgroup removed as it ended
            pass
    return pids


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
