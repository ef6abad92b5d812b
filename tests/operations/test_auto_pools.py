"""Auto pools: Add Job with poolInfo.autoPoolSpecification, and the pool's end with the job."""

import pytest

from tasks.errors import BatchError
from tasks.models import ComputeNode, Job, Pool
from tasks.operations.attempts import finish_attempt
from tasks.operations.jobs import add_job, delete_job, terminate_job
from tasks.operations.nodes import register_node
from tests.execution import add, claim
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

POOL = {
    "vmSize": "standard_d2s_v3",
    "targetDedicatedNodes": 2,
    "taskSlotsPerNode": 2,
    "virtualMachineConfiguration": {
        "imageReference": {"publisher": "canonical", "offer": "ubuntu", "sku": "22_04-lts"},
        "nodeAgentSKUId": "batch.node.ubuntu 22.04",
    },
    "resizeTimeout": "PT20M",
}


def auto_job(account, job_id="j", *, keep_alive=None, prefix="ap", pool=None, **spec) -> Job:
    auto = {"poolLifetimeOption": "job", "pool": pool or POOL}
    if prefix is not None:
        auto["autoPoolIdPrefix"] = prefix
    if keep_alive is not None:
        auto["keepAlive"] = keep_alive
    return add_job(
        account, spec={"id": job_id, "poolInfo": {"autoPoolSpecification": auto}, **spec}
    )


def test_the_pool_is_created_with_the_job_and_named_by_it():
    account = AccountFactory()
    job = auto_job(account)
    pool = Pool.objects.get(account=account)
    assert (
        job.pool_id == pool.pool_id and pool.pool_id.startswith("ap_") and len(pool.pool_id) == 39
    )
    assert (pool.owner_job_id, pool.keep_alive, pool.vm_size, pool.task_slots_per_node) == (
        job.pk,
        False,
        "standard_d2s_v3",
        2,
    )
    assert (
        pool.target_dedicated_nodes,
        pool.allocation_state,
        pool.resize_timeout.total_seconds(),
    ) == (2, "resizing", 1200)
    assert pool.spec["virtualMachineConfiguration"] == POOL["virtualMachineConfiguration"]
    info = Job.objects.get(pk=job.pk).spec["poolInfo"]
    assert "poolId" not in info and info["autoPoolSpecification"]["autoPoolIdPrefix"] == "ap"


def test_without_a_prefix_the_id_is_a_guid_and_two_jobs_get_two_pools():
    account = AccountFactory()
    first, second = auto_job(account, "a", prefix=None), auto_job(account, "b", prefix=None)
    assert len(first.pool_id) == 36 and first.pool_id != second.pool_id
    assert Pool.objects.filter(account=account).count() == 2


def test_the_jobs_tasks_run_on_its_pool():
    account = AccountFactory()
    job = auto_job(account)
    pool = Pool.objects.get(account=account)
    node = register_node(pool, node_id="n1", slots=2)
    add(job, "t1")
    assert [a.task.task_id for a in claim(node)] == ["t1"]


def test_terminating_the_job_deletes_its_pool():
    account = AccountFactory()
    job = auto_job(account)
    terminate_job(job)
    assert not Pool.objects.filter(account=account).exists()


def test_a_pool_with_nodes_is_deleting_until_they_leave():
    account = AccountFactory()
    job = auto_job(account)
    pool = Pool.objects.get(account=account)
    register_node(pool, node_id="n1", slots=2)
    terminate_job(job)
    assert Pool.objects.get(pk=pool.pk).state == "deleting"
    assert ComputeNode.objects.get(pool=pool).pending_action == "remove"


def test_keep_alive_keeps_the_pool_after_the_job():
    account = AccountFactory()
    job = auto_job(account, keep_alive=True)
    terminate_job(job)
    pool = Pool.objects.get(account=account)
    assert (pool.state, pool.keep_alive) == ("active", True)


def test_deleting_the_job_deletes_its_pool():
    account = AccountFactory()
    job = auto_job(account)
    delete_job(job)
    assert (
        not Pool.objects.filter(account=account).exists()
        and not Job.objects.filter(pk=job.pk).exists()
    )


def test_the_pool_goes_when_all_tasks_complete_and_the_job_terminates():
    account = AccountFactory()
    job = auto_job(account, onAllTasksComplete="terminatejob")
    pool = Pool.objects.get(account=account)
    node = register_node(pool, node_id="n1", slots=2)
    add(job, "t1")
    (attempt,) = claim(node)
    ComputeNode.objects.filter(
        pk=node.pk
    ).delete()  # the node left meanwhile; the report still arrives
    finish_attempt(attempt, exit_code=0)
    assert Job.objects.get(pk=job.pk).state == "completed"
    assert not Pool.objects.filter(pk=pool.pk).exists()


def test_a_pool_of_another_job_stays():
    account = AccountFactory()
    auto_job(account, "a")
    other = auto_job(account, "b")
    terminate_job(other)
    assert Pool.objects.filter(account=account).count() == 1


def test_refuses_a_job_schedule_lifetime():
    account = AccountFactory()
    with pytest.raises(BatchError) as info:
        add_job(
            account,
            spec={
                "id": "j",
                "poolInfo": {
                    "autoPoolSpecification": {"poolLifetimeOption": "jobschedule", "pool": POOL}
                },
            },
        )
    error = info.value
    assert (error.code, dict(error.values)["PropertyName"]) == (
        "InvalidPropertyValue",
        "poolInfo.autoPoolSpecification.poolLifetimeOption",
    )
    assert not Pool.objects.filter(account=account).exists()


@pytest.mark.parametrize(
    "auto, code, name",
    [
        (
            {"pool": POOL},
            "MissingRequiredProperty",
            "poolInfo.autoPoolSpecification.poolLifetimeOption",
        ),
        (
            {"poolLifetimeOption": "job"},
            "MissingRequiredProperty",
            "poolInfo.autoPoolSpecification.pool",
        ),
        (
            {"poolLifetimeOption": "job", "pool": POOL, "autoPoolIdPrefix": "x" * 21},
            "InvalidPropertyValue",
            "poolInfo.autoPoolSpecification.autoPoolIdPrefix",
        ),
        (
            {"poolLifetimeOption": "job", "pool": {**POOL, "vmSize": ""}},
            "MissingRequiredProperty",
            "poolInfo.autoPoolSpecification.pool.vmSize",
        ),
        (
            {
                "poolLifetimeOption": "job",
                "pool": {**POOL, "networkConfiguration": {"subnetId": "/x"}},
            },
            "InvalidPropertyValue",
            "poolInfo.autoPoolSpecification.pool.networkConfiguration.subnetId",
        ),
        (
            {"poolLifetimeOption": "job", "pool": {**POOL, "resizeTimeout": "PT1M"}},
            "InvalidPropertyValue",
            "poolInfo.autoPoolSpecification.pool.resizeTimeout",
        ),
        (
            {"poolLifetimeOption": "job", "pool": {**POOL, "resizeTimeout": "soon"}},
            "InvalidPropertyValue",
            "poolInfo.autoPoolSpecification.pool.resizeTimeout",
        ),
    ],
)
def test_refuses_a_bad_auto_pool_specification_and_adds_nothing(auto, code, name):
    account = AccountFactory()
    with pytest.raises(BatchError) as info:
        add_job(account, spec={"id": "j", "poolInfo": {"autoPoolSpecification": auto}})
    assert (info.value.code, dict(info.value.values)["PropertyName"]) == (code, name)
    assert (
        not Job.objects.filter(account=account).exists()
        and not Pool.objects.filter(account=account).exists()
    )


def test_refuses_a_pool_id_beside_a_specification():
    account = AccountFactory()
    with pytest.raises(BatchError) as info:
        add_job(
            account,
            spec={
                "id": "j",
                "poolInfo": {
                    "poolId": "p",
                    "autoPoolSpecification": {"poolLifetimeOption": "job", "pool": POOL},
                },
            },
        )
    assert (info.value.code, dict(info.value.values)["PropertyName"]) == (
        "InvalidPropertyValue",
        "poolInfo.poolId",
    )


def test_a_duplicate_job_id_leaves_no_pool_behind():
    account = AccountFactory()
    auto_job(account)
    with pytest.raises(BatchError) as info:
        auto_job(account)
    assert info.value.code == "JobExists"
    assert Pool.objects.filter(account=account).count() == 1
