"""add_pool: every property stored, the targets and the provider, and every refusal."""

from datetime import timedelta

import pytest

from tasks.errors import BatchError
from tasks.models import Pool
from tasks.operations.pools import add_pool, ensure_pool
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

FULL = {
    "id": "MyPool",
    "displayName": "everything",
    "vmSize": "STANDARD_D2S_V3",
    "virtualMachineConfiguration": {
        "imageReference": {
            "publisher": "canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-lts",
            "version": "latest",
        },
        "nodeAgentSKUId": "batch.node.ubuntu 22.04",
        "dataDisks": [{"lun": 0, "diskSizeGB": 64}],
    },
    "targetDedicatedNodes": 2,
    "targetLowPriorityNodes": 1,
    "resizeTimeout": timedelta(minutes=20),
    "taskSlotsPerNode": 4,
    "taskSchedulingPolicy": {"nodeFillType": "pack"},
    "startTask": {"commandLine": "/bin/true", "waitForSuccess": True, "maxTaskRetryCount": 1},
    "userAccounts": [{"name": "u", "password": "p", "elevationLevel": "admin"}],
    "networkConfiguration": {"endpointConfiguration": {"inboundNATPools": []}},
    "mountConfiguration": [
        {"nfsMountConfiguration": {"source": "host:/x", "relativeMountPath": "x"}}
    ],
    "metadata": [{"name": "a", "value": "b"}],
    "enableInterNodeCommunication": True,
}


def refused(spec, account=None) -> BatchError:
    account = account or AccountFactory()
    with pytest.raises(BatchError) as info:
        add_pool(account, spec=spec)
    assert not Pool.objects.filter(account=account).exists()
    return info.value


def test_stores_every_property_and_starts_resizing_toward_its_targets():
    pool = add_pool(AccountFactory(), spec=FULL)
    pool.refresh_from_db()
    assert (pool.pool_id, pool.id_key, pool.vm_size, pool.task_slots_per_node) == (
        "MyPool",
        "mypool",
        "STANDARD_D2S_V3",
        4,
    )
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (2, 1)
    assert (pool.allocation_state, pool.resize_timeout, pool.provider) == (
        "resizing",
        timedelta(minutes=20),
        "local",
    )
    assert pool.spec == {
        k: v
        for k, v in FULL.items()
        if k
        not in (
            "id",
            "vmSize",
            "targetDedicatedNodes",
            "targetLowPriorityNodes",
            "resizeTimeout",
            "taskSlotsPerNode",
        )
    }
    assert pool.allocation_state_transition_time == pool.creation_time


def test_a_pool_without_targets_is_steady_with_none():
    pool = add_pool(AccountFactory(), spec={"id": "p", "vmSize": "a"})
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes, pool.allocation_state) == (
        0,
        0,
        "steady",
    )


def test_the_provider_comes_from_the_vm_size_table(settings):
    settings.BATCHSITE_VM_SIZES = {
        "standard_nc*": {"provider": "slurm", "cores": 6},
        "*": {"provider": "local"},
    }
    account = AccountFactory()
    assert add_pool(account, spec={"id": "gpu", "vmSize": "Standard_NC6"}).provider == "slurm"
    assert add_pool(account, spec={"id": "cpu", "vmSize": "standard_d2s_v3"}).provider == "local"


def test_nested_durations_are_stored_in_wire_form():
    spec = {
        "id": "p",
        "vmSize": "a",
        "startTask": {"commandLine": "x", "constraints": {"maxWallClockTime": timedelta(hours=1)}},
    }
    pool = add_pool(AccountFactory(), spec=spec)
    pool.refresh_from_db()
    assert pool.spec["startTask"]["constraints"]["maxWallClockTime"] == "PT1H"


def test_an_autoscaled_pool_gets_its_targets_from_its_formula_at_once():
    pool = add_pool(
        AccountFactory(),
        spec={
            "id": "p",
            "vmSize": "a",
            "enableAutoScale": True,
            "autoScaleFormula": "$TargetDedicatedNodes=1;",
            "autoScaleEvaluationInterval": timedelta(minutes=10),
        },
    )
    pool.refresh_from_db()
    assert (pool.enable_auto_scale, pool.auto_scale_formula) == (True, "$TargetDedicatedNodes=1;")
    assert (pool.target_dedicated_nodes, pool.allocation_state) == (1, "resizing")
    assert pool.auto_scale_run["results"] == (
        "$TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    )
    assert (
        timedelta(minutes=10)
        <= pool.auto_scale_next - pool.creation_time
        < timedelta(minutes=10, seconds=5)
    )


def test_refuses_a_formula_batch_refuses():
    error = refused(
        {
            "id": "p",
            "vmSize": "a",
            "enableAutoScale": True,
            "autoScaleFormula": "$TargetDedicatedNodes=(",
        }
    )
    assert (error.code, error.status) == ("AutoScalingFormulaSyntaxError", 400)


def test_refuses_an_id_already_in_the_account_whatever_its_case():
    account = AccountFactory()
    add_pool(account, spec={"id": "Pool", "vmSize": "a"})
    with pytest.raises(BatchError) as info:
        add_pool(account, spec={"id": "pOOL", "vmSize": "a"})
    assert (info.value.code, info.value.status) == ("PoolExists", 409)
    assert Pool.objects.filter(account=account).count() == 1


def test_the_same_id_is_free_in_another_account():
    add_pool(AccountFactory(), spec={"id": "p", "vmSize": "a"})
    add_pool(AccountFactory(), spec={"id": "p", "vmSize": "a"})


def test_refuses_a_vm_size_the_deployment_has_no_size_for(settings):
    settings.BATCHSITE_VM_SIZES = {"standard_d2s_v3": {"provider": "local"}}
    error = refused({"id": "p", "vmSize": "standard_e64_v5"})
    assert (error.code, error.status, dict(error.values)["PropertyName"]) == (
        "InvalidPropertyValue",
        400,
        "vmSize",
    )


def test_refuses_more_task_slots_than_four_times_the_cores(settings):
    settings.BATCHSITE_VM_SIZES = {"*": {"provider": "local", "cores": 2}}
    error = refused({"id": "p", "vmSize": "a", "taskSlotsPerNode": 9})
    assert (error.code, dict(error.values)["PropertyName"]) == (
        "InvalidPropertyValue",
        "taskSlotsPerNode",
    )
    assert (
        add_pool(
            AccountFactory(), spec={"id": "p", "vmSize": "a", "taskSlotsPerNode": 8}
        ).task_slots_per_node
        == 8
    )


def test_refuses_more_than_256_task_slots():
    error = refused({"id": "p", "vmSize": "a", "taskSlotsPerNode": 257})
    assert dict(error.values)["PropertyName"] == "taskSlotsPerNode"


def test_refuses_a_resize_timeout_under_five_minutes():
    error = refused({"id": "p", "vmSize": "a", "resizeTimeout": timedelta(minutes=4)})
    assert (error.code, dict(error.values)["PropertyName"]) == (
        "InvalidPropertyValue",
        "resizeTimeout",
    )


def test_refuses_a_subnet():
    error = refused(
        {
            "id": "p",
            "vmSize": "a",
            "networkConfiguration": {"subnetId": "/subscriptions/x/subnets/y"},
        }
    )
    assert (error.code, error.status) == ("InvalidPropertyValue", 400)
    assert dict(error.values)["PropertyName"] == "networkConfiguration.subnetId"


@pytest.mark.parametrize(
    "key", ["virtualMachineImageId", "sharedGalleryImageId", "communityGalleryImageId"]
)
def test_refuses_a_custom_image(key):
    error = refused(
        {
            "id": "p",
            "vmSize": "a",
            "virtualMachineConfiguration": {
                "imageReference": {key: "/subscriptions/x/images/y"},
                "nodeAgentSKUId": "batch.node.ubuntu 22.04",
            },
        }
    )
    assert dict(error.values)["PropertyName"] == f"virtualMachineConfiguration.imageReference.{key}"


def test_refuses_application_packages():
    error = refused(
        {"id": "p", "vmSize": "a", "applicationPackageReferences": [{"applicationId": "blender"}]}
    )
    assert (error.code, error.status) == ("InvalidApplicationPackageReferences", 409)


def test_refuses_certificates():
    error = refused(
        {
            "id": "p",
            "vmSize": "a",
            "certificateReferences": [{"thumbprint": "ab", "thumbprintAlgorithm": "sha1"}],
        }
    )
    assert (error.code, error.status) == ("InvalidCertificateReferences", 409)


def test_refuses_autoscale_without_a_formula():
    error = refused({"id": "p", "vmSize": "a", "enableAutoScale": True})
    assert (error.code, dict(error.values)["PropertyName"]) == (
        "MissingRequiredProperty",
        "autoScaleFormula",
    )


@pytest.mark.parametrize("target", ["targetDedicatedNodes", "targetLowPriorityNodes"])
def test_refuses_targets_with_autoscale(target):
    error = refused(
        {
            "id": "p",
            "vmSize": "a",
            "enableAutoScale": True,
            "autoScaleFormula": "$TargetDedicatedNodes=1",
            target: 1,
        }
    )
    assert (error.code, dict(error.values)["PropertyName"]) == ("InvalidPropertyValue", target)


def test_refuses_a_formula_without_autoscale():
    error = refused({"id": "p", "vmSize": "a", "autoScaleFormula": "$TargetDedicatedNodes=1"})
    assert (error.code, dict(error.values)["PropertyName"]) == (
        "InvalidPropertyValue",
        "autoScaleFormula",
    )


@pytest.mark.parametrize("interval", [timedelta(minutes=4), timedelta(hours=169)])
def test_refuses_an_evaluation_interval_out_of_range(interval):
    error = refused(
        {
            "id": "p",
            "vmSize": "a",
            "enableAutoScale": True,
            "autoScaleFormula": "$TargetDedicatedNodes=1",
            "autoScaleEvaluationInterval": interval,
        }
    )
    assert dict(error.values)["PropertyName"] == "autoScaleEvaluationInterval"


def test_ensure_pool_creates_a_missing_pool_once():
    account = AccountFactory()
    first = ensure_pool(account, "local", slots_per_node=3)
    again = ensure_pool(account, "LOCAL", slots_per_node=8)
    assert (
        first.pk == again.pk
        and again.task_slots_per_node == 3
        and again.target_dedicated_nodes == 0
    )
