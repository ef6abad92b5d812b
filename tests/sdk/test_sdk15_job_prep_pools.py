"""azure-batch 15.1.0: a job with preparation and release tasks on an auto pool whose nodes
come from each real node provider in turn (local processes, then Slurm jobs): the
preparation runs on the nodes before their tasks, the job completes only after the
releases, and the pool goes after it."""

from __future__ import annotations

import pytest
from azure.batch import models as m

from tests.local_nodes import reconcile_until
from tests.sdk.test_auto_pools_sdk import auto_pool_info


@pytest.mark.django_db(transaction=True)
def test_preparation_and_release_on_an_auto_pool_of_each_provider(
    client15, provider_reconciler, node_provider
):
    client15.create_job(
        m.BatchJobCreateOptions(
            id="autoprep",
            pool_info=auto_pool_info(),
            all_tasks_complete_mode=m.BatchAllTasksCompleteMode.TERMINATE_JOB,
            job_preparation_task=m.BatchJobPreparationTask(
                command_line="/bin/sh -c 'echo ok > marker'"
            ),
            job_release_task=m.BatchJobReleaseTask(command_line="/bin/sh -c 'echo bye'"),
        )
    )
    client15.create_tasks(
        "autoprep",
        [
            m.BatchTaskCreateOptions(
                id=f"t{i}", command_line="/bin/sh -c 'cat $AZ_BATCH_JOB_PREP_WORKING_DIR/marker'"
            )
            for i in range(4)
        ],
    )
    reconcile_until(
        provider_reconciler,
        lambda: client15.get_job("autoprep").state == m.BatchJobState.COMPLETED,
        timeout=120,
        message="the job to complete",
    )
    tasks = list(client15.list_tasks("autoprep"))
    assert {t.execution_info.exit_code for t in tasks} == {0}
    statuses = list(client15.list_job_preparation_and_release_task_status("autoprep"))
    assert {t.node_info.node_id for t in tasks} <= {s.node_id for s in statuses}
    for s in statuses:
        assert s.job_preparation_task_execution_info.result == m.BatchTaskExecutionResult.SUCCESS
        assert s.job_release_task_execution_info.state == m.BatchJobReleaseTaskState.COMPLETED
        assert s.job_release_task_execution_info.exit_code == 0
    reconcile_until(
        provider_reconciler,
        lambda: not node_provider.running(),
        timeout=60,
        message="its agents to exit",
    )
