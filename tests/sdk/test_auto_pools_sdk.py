"""azure-batch 15.1.0: a job with an auto pool runs its tasks on the pool's real nodes (the
reconciler and the local provider start them, or the slurm one on a real Slurm), and the pool
is deleted once the job completes."""

from __future__ import annotations

import pytest
from azure.batch import models as m
from azure.core.exceptions import ResourceNotFoundError

from tasks.models import Pool
from tests.local_nodes import reconcile_until


def auto_pool_info(**kw) -> m.BatchPoolInfo:
    return m.BatchPoolInfo(
        auto_pool_specification=m.BatchAutoPoolSpecification(
            auto_pool_id_prefix="sdk",
            pool_lifetime_option=m.BatchPoolLifetimeOption.JOB,
            keep_alive=False,
            pool=m.BatchPoolSpecification(
                vm_size="standard_d2s_v3",
                target_dedicated_nodes=2,
                task_slots_per_node=2,
                virtual_machine_configuration=m.VirtualMachineConfiguration(
                    image_reference=m.BatchVmImageReference(
                        publisher="canonical",
                        offer="0001-com-ubuntu-server-jammy",
                        sku="22_04-lts",
                        version="latest",
                    ),
                    node_agent_sku_id="batch.node.ubuntu 22.04",
                ),
            ),
            **kw,
        )
    )


@pytest.mark.django_db(transaction=True)
def test_a_job_with_an_auto_pool_runs_its_tasks_and_its_pool_goes_after_it(
    client15, provider_reconciler, node_provider
):
    reconciler = provider_reconciler
    client15.create_job(
        m.BatchJobCreateOptions(
            id="auto",
            pool_info=auto_pool_info(),
            all_tasks_complete_mode=m.BatchAllTasksCompleteMode.TERMINATE_JOB,
        )
    )
    job = client15.get_job("auto")
    pool_id = job.execution_info.pool_id
    assert pool_id.startswith("sdk_") and job.pool_info.pool_id is None
    assert job.pool_info.auto_pool_specification.auto_pool_id_prefix == "sdk"
    pool = client15.get_pool(pool_id)
    assert (pool.vm_size, pool.target_dedicated_nodes, pool.task_slots_per_node) == (
        "standard_d2s_v3",
        2,
        2,
    )
    assert Pool.objects.get(pool_id=pool_id).provider == node_provider.name

    client15.create_tasks(
        "auto",
        [
            m.BatchTaskCreateOptions(
                id=f"t{i}", command_line=f"/bin/sh -c 'test $AZ_BATCH_POOL_ID = {pool_id}'"
            )
            for i in range(6)
        ],
    )
    reconcile_until(
        reconciler,
        lambda: client15.get_job("auto").state == m.BatchJobState.COMPLETED,
        timeout=60,
        message="the job to complete",
    )
    tasks = list(client15.list_tasks("auto"))
    assert {t.execution_info.result for t in tasks} == {m.BatchTaskExecutionResult.SUCCESS}
    assert {t.node_info.pool_id for t in tasks} == {pool_id}
    # The pool's nodes are gone with it, and the task files with them, as on Batch.

    def pool_gone():
        try:
            client15.get_pool(pool_id)
        except ResourceNotFoundError:
            return True
        return False

    reconcile_until(reconciler, pool_gone, timeout=40, message="the auto pool to be deleted")
    reconcile_until(reconciler, lambda: not node_provider.running(), message="its agents to exit")
    assert not Pool.objects.exists()
