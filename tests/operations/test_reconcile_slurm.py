"""The reconciler with the slurm provider when Slurm loses a machine: what only a cluster
does (the pool tests shared with the local provider are in test_reconcile_local.py)."""

from __future__ import annotations

import pytest

from tasks.models import ComputeNode, Pool, Task
from tasks.operations.jobs import add_job
from tasks.operations.pools import add_pool
from tasks.operations.reconcile import Reconciler
from tasks.operations.tasks import add_task
from tests.factories import AccountFactory
from tests.local_nodes import reconcile_until
from tests.slurm import node_states

pytestmark = pytest.mark.slurm


def test_a_node_lost_in_slurm_has_its_task_completed_elsewhere_and_comes_back_on_another_slurm_node(
    slurm, settings, tmp_path
):
    settings.BATCHSITE_NODE_LOST_SECONDS, settings.BATCHSITE_NODE_HEARTBEAT_SECONDS = 2.0, 0.3
    settings.BATCHSITE_VM_SIZES = {
        "*": {"provider": "slurm", "options": {"log_dir": str(tmp_path / "logs")}}
    }
    reconciler = Reconciler(providers={"slurm": slurm.provider})
    pool = add_pool(
        AccountFactory(name="lost"),
        spec={"id": "p", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 2},
    )
    reconcile_until(
        reconciler,
        lambda: ComputeNode.objects.filter(pool=pool, state="idle").count() == 2,
        timeout=60,
        message="2 idle nodes",
    )
    # The first node to run the task keeps it for minutes; wherever it runs next, it is quick.
    first = tmp_path / "first"
    script = f"if [ ! -e {first} ]; then echo $AZ_BATCH_NODE_ID > {first}; exec sleep 300; fi"
    job = add_job(pool.account, spec={"id": "j", "poolInfo": {"poolId": "p"}})
    task = add_task(
        job,
        spec={
            "id": "t",
            "commandLine": f"/bin/sh -c '{script}'",
            "userIdentity": {"autoUser": {"elevationLevel": "admin"}},
        },
    )  # root: it writes in tmp_path
    reconcile_until(reconciler, lambda: first.exists(), message="the task to start")
    doomed = ComputeNode.objects.get(pool=pool, node_id=first.read_text().strip())
    lost = slurm.slurm_node(doomed.provider_handle)

    slurm.kill_slurm_node(lost)  # the machine goes: slurmd, slurmstepd, agent and task
    reconcile_until(
        reconciler,
        lambda: Task.objects.get(pk=task.pk).state == "completed",
        timeout=30,
        message="the task to complete on the other node",
    )
    task.refresh_from_db()
    assert (task.result, task.requeue_count) == ("success", 1) and task.node_name != doomed.node_id

    # Once Slurm has failed the lost node's job, the reconciler starts that node again, with
    # the same id, on the Slurm node still free.
    back = reconcile_until(
        reconciler,
        lambda: (
            ComputeNode.objects.filter(pk=doomed.pk, state="idle")
            .exclude(provider_handle=doomed.provider_handle)
            .first()
        ),
        timeout=120,
        message="the lost node to be started again",
    )
    assert slurm.state(doomed.provider_handle) == "NODE_FAIL"
    assert slurm.slurm_node(back.provider_handle) not in ("", lost)
    assert node_states()[lost] == "down*"
    fresh = Pool.objects.get(pk=pool.pk)
    assert (fresh.allocation_state, fresh.resize_errors) == ("steady", [])
    assert ComputeNode.objects.filter(pool=pool, state="idle").count() == 2
