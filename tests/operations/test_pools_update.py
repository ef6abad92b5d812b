"""update_pool_properties (replace), patch_pool (update) and can_update_pool."""

import pytest

from tasks.errors import BatchError
from tasks.models import Pool
from tasks.operations.pools import add_pool, can_update_pool, patch_pool, update_pool_properties
from tests.factories import AccountFactory, ComputeNodeFactory

pytestmark = pytest.mark.django_db

START = {"commandLine": "/bin/sh -c 'echo hi'", "waitForSuccess": True}


@pytest.fixture
def pool():
    return add_pool(
        AccountFactory(),
        spec={
            "id": "p",
            "vmSize": "a",
            "displayName": "old",
            "startTask": START,
            "metadata": [{"name": "k", "value": "v"}],
            "userAccounts": [{"name": "u", "password": "x"}],
        },
    )


def test_update_properties_replaces_and_removes_what_it_omits(pool):
    after = update_pool_properties(
        pool, spec={"metadata": [{"name": "n", "value": "2"}], "applicationPackageReferences": []}
    )
    after.refresh_from_db()
    assert after.spec["metadata"] == [{"name": "n", "value": "2"}]
    assert "startTask" not in after.spec and "applicationPackageReferences" not in after.spec
    assert after.spec["displayName"] == "old" and after.spec["userAccounts"] == [
        {"name": "u", "password": "x"}
    ]
    assert after.etag != pool.etag and after.last_modified > pool.last_modified


def test_update_properties_with_a_start_task_sets_it(pool):
    after = update_pool_properties(
        pool,
        spec={
            "startTask": {"commandLine": "/bin/true"},
            "metadata": [],
            "applicationPackageReferences": [],
        },
    )
    assert after.spec["startTask"] == {"commandLine": "/bin/true"} and "metadata" not in after.spec


def test_update_properties_refuses_application_packages(pool):
    with pytest.raises(BatchError) as info:
        update_pool_properties(
            pool, spec={"metadata": [], "applicationPackageReferences": [{"applicationId": "a"}]}
        )
    assert (info.value.code, info.value.status) == ("InvalidApplicationPackageReferences", 409)
    assert Pool.objects.get(pk=pool.pk).spec["startTask"] == START


def test_patch_changes_what_it_names_and_leaves_the_rest(pool):
    after = patch_pool(pool, spec={"metadata": [{"name": "n", "value": "2"}]})
    after.refresh_from_db()
    assert (
        after.spec["metadata"] == [{"name": "n", "value": "2"}] and after.spec["startTask"] == START
    )
    assert after.etag != pool.etag


def test_patch_of_an_empty_pool_changes_its_size_and_slots(pool, settings):
    settings.BATCHSITE_VM_SIZES = {
        "big": {"provider": "slurm", "cores": 8},
        "*": {"provider": "local"},
    }
    after = patch_pool(pool, spec={"vmSize": "BIG", "taskSlotsPerNode": 32, "displayName": "new"})
    after.refresh_from_db()
    assert (
        after.vm_size,
        after.provider,
        after.task_slots_per_node,
        after.spec["displayName"],
    ) == ("BIG", "slurm", 32, "new")


def test_patch_refuses_more_slots_than_the_size_allows(pool, settings):
    settings.BATCHSITE_VM_SIZES = {"*": {"provider": "local", "cores": 1}}
    with pytest.raises(BatchError) as info:
        patch_pool(pool, spec={"taskSlotsPerNode": 5})
    assert dict(info.value.values)["PropertyName"] == "taskSlotsPerNode"


def test_patch_refuses_structural_changes_while_the_pool_has_nodes(pool):
    ComputeNodeFactory(pool=pool)
    with pytest.raises(BatchError) as info:
        patch_pool(pool, spec={"taskSlotsPerNode": 2})
    assert (info.value.code, info.value.status) == ("OperationInvalidForCurrentState", 409)
    assert Pool.objects.get(pk=pool.pk).task_slots_per_node == 1
    patch_pool(pool, spec={"startTask": {"commandLine": "/bin/true"}})  # always allowed


def test_patch_refuses_a_subnet(pool):
    with pytest.raises(BatchError) as info:
        patch_pool(pool, spec={"networkConfiguration": {"subnetId": "/x"}})
    assert dict(info.value.values)["PropertyName"] == "networkConfiguration.subnetId"


def test_patch_refuses_an_unknown_vm_size(pool, settings):
    settings.BATCHSITE_VM_SIZES = {"a": {"provider": "local"}}
    with pytest.raises(BatchError) as info:
        patch_pool(pool, spec={"vmSize": "b"})
    assert dict(info.value.values)["PropertyName"] == "vmSize"


@pytest.mark.parametrize("operation", [update_pool_properties, patch_pool])
@pytest.mark.parametrize("state", Pool.State.values)
def test_can_update_agrees_with_update_and_patch(pool, operation, state):
    Pool.objects.filter(pk=pool.pk).update(state=state)
    pool.refresh_from_db()
    predicted = can_update_pool(pool)
    try:
        operation(pool, spec={"metadata": [], "applicationPackageReferences": []})
        outcome = None
    except BatchError as error:
        outcome = error.code
    assert outcome == (predicted.code if predicted else None)
