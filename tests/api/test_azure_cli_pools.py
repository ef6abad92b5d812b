"""The Azure CLI's pool and node commands (`az batch pool ...`, `az batch node ...`,
azure-cli 2.91.0, api-version 2024-02-01.19.0), as it really sent them to a live batchsite,
replayed byte for byte: signatures verify, numbers sent as strings are read, and each
command gets the answer the CLI expects (CI does not install the CLI)."""

import json

import pytest
from django.utils import timezone

from tasks.models import ComputeNode, Pool, PoolSample
from tests.api.test_azure_cli import CAPTURED, DEV_KEY, replay
from tests.conftest import error_code
from tests.factories import AccountFactory, ComputeNodeFactory, PoolFactory

pytestmark = pytest.mark.django_db

NODE = "tvmps_4f79b250a7ee89713a09a715fb35bf23_d"  # the node ids the captured commands named
OTHER = "tvmps_aa1fb50d57da54654d9521c1da91d85b_d"


@pytest.fixture
def devbatch(db):
    return AccountFactory(name="devbatch", primary_key=DEV_KEY)


@pytest.fixture
def pool(devbatch):
    return PoolFactory(account=devbatch, pool_id="p", vm_size="standard_d2s_v3")


def node(pool, node_id=NODE, **kw) -> ComputeNode:
    return ComputeNodeFactory(pool=pool, node_id=node_id, provider_handle="local:1", **kw)


def test_pool_create_with_an_image_and_a_node_count_as_a_string(devbatch, monkeypatch):
    # az batch pool create --id p --vm-size standard_d2s_v3 --target-dedicated-nodes 2
    #   --image canonical:0001-com-ubuntu-server-jammy:22_04-lts --node-agent-sku-id "batch.node.ubuntu 22.04"
    assert json.loads(CAPTURED["pool-create-image"]["body"])["targetDedicatedNodes"] == "2"
    r = replay(monkeypatch, "pool-create-image")
    assert r.status_code == 201, r.content
    pool = Pool.objects.get(pool_id="p")
    assert (pool.target_dedicated_nodes, pool.allocation_state) == (2, "resizing")
    assert pool.spec["virtualMachineConfiguration"] == {
        "imageReference": {
            "publisher": "canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-lts",
        },
        "nodeAgentSKUId": "batch.node.ubuntu 22.04",
    }


def test_pool_create_with_a_start_task_slots_and_inter_node_communication(devbatch, monkeypatch):
    r = replay(monkeypatch, "pool-create-start-task")
    assert r.status_code == 201, r.content
    pool = Pool.objects.get(pool_id="p2")
    assert (pool.task_slots_per_node, pool.target_dedicated_nodes) == (2, 1)
    assert pool.spec["startTask"] == {"commandLine": "/bin/sh -c 'echo hi'", "waitForSuccess": True}
    assert pool.spec["enableInterNodeCommunication"] is True


def test_node_list_and_show(pool, monkeypatch):
    node(pool)
    r = replay(monkeypatch, "node-list")
    assert r.status_code == 200, r.content
    assert [n["id"] for n in json.loads(r.content)["value"]] == [NODE]
    r = replay(monkeypatch, "node-show")
    assert r.status_code == 200 and json.loads(r.content)["state"] == "idle"


def test_pool_resize_reads_its_numbers_and_timeout(pool, monkeypatch):
    # az batch pool resize --pool-id p --target-dedicated-nodes 3 --resize-timeout PT10M
    #   --node-deallocation-option taskcompletion
    r = replay(monkeypatch, "pool-resize")
    assert r.status_code == 202, r.content
    pool.refresh_from_db()
    assert (pool.target_dedicated_nodes, pool.allocation_state, pool.node_deallocation_option) == (
        3,
        "resizing",
        "taskcompletion",
    )
    assert pool.resize_timeout.total_seconds() == 600


def test_pool_resize_abort_stops_the_resize(pool, monkeypatch):
    Pool.objects.filter(pk=pool.pk).update(allocation_state="resizing", target_dedicated_nodes=2)
    r = replay(monkeypatch, "pool-stop-resize")
    assert r.status_code == 202, r.content
    assert Pool.objects.get(pk=pool.pk).allocation_state == "stopping"


def test_autoscale_enable_evaluate_disable(pool, monkeypatch):
    # az batch pool autoscale enable --pool-id p --auto-scale-formula '$TargetDedicatedNodes = 1;'
    #   --auto-scale-evaluation-interval PT5M
    r = replay(monkeypatch, "pool-autoscale-enable")
    assert r.status_code == 200, r.content
    pool.refresh_from_db()
    assert (pool.enable_auto_scale, pool.target_dedicated_nodes) == (True, 1)
    assert pool.auto_scale_evaluation_interval.total_seconds() == 300
    # az batch pool autoscale evaluate --pool-id p
    #   --auto-scale-formula '$TargetDedicatedNodes = min(4, $PendingTasks.GetSample(1) + 1);'
    PoolSample.objects.create(pool=pool, time=timezone.now(), values={"PendingTasks": 2})
    r = replay(monkeypatch, "pool-autoscale-evaluate")
    assert r.status_code == 200, r.content
    assert json.loads(r.content)["results"].startswith("$TargetDedicatedNodes=3;")
    r = replay(monkeypatch, "pool-autoscale-disable")
    assert r.status_code == 200 and not Pool.objects.get(pk=pool.pk).enable_auto_scale


def test_pool_set_patches_and_pool_reset_replaces(pool, monkeypatch):
    Pool.objects.filter(pk=pool.pk).update(spec={"metadata": [{"name": "old", "value": "1"}]})
    r = replay(monkeypatch, "pool-set")  # az batch pool set --pool-id p --metadata team=render
    assert r.status_code == 200, r.content
    assert Pool.objects.get(pk=pool.pk).spec["metadata"] == [{"name": "team", "value": "render"}]
    # az batch pool reset --pool-id p --start-task-command-line /bin/true --start-task-wait-for-success
    r = replay(monkeypatch, "pool-reset")
    assert r.status_code == 204, r.content
    spec = Pool.objects.get(pk=pool.pk).spec
    assert (
        spec["startTask"] == {"commandLine": "/bin/true", "waitForSuccess": True}
        and "metadata" not in spec
    )


def test_node_reboot_and_node_delete(pool, monkeypatch):
    n = node(pool)
    r = replay(monkeypatch, "node-reboot")  # az batch node reboot ... --node-reboot-option requeue
    assert r.status_code == 202, r.content
    n.refresh_from_db()
    assert (n.state, n.action_option) == ("rebooting", "requeue")
    ComputeNode.objects.filter(pk=n.pk).update(state="idle", pending_action="")
    Pool.objects.filter(pk=pool.pk).update(target_dedicated_nodes=1)
    r = replay(
        monkeypatch, "node-remove"
    )  # az batch node delete --pool-id p --node-list ... requeue
    assert r.status_code == 202, r.content
    assert ComputeNode.objects.get(pk=n.pk).pending_action == "remove"
    assert Pool.objects.get(pk=pool.pk).target_dedicated_nodes == 0


def test_node_scheduling_disable(pool, monkeypatch):
    n = node(pool, OTHER)
    r = replay(monkeypatch, "node-disable-scheduling")
    assert r.status_code == 200, r.content
    assert ComputeNode.objects.get(pk=n.pk).scheduling_enabled is False


def test_node_scheduling_disable_with_an_option_is_refused_for_the_body_the_cli_sends(
    pool, monkeypatch
):
    # azure-cli 2.91.0 nests the option in itself: {"nodeDisableSchedulingOption":
    # {"nodeDisableSchedulingOption": "requeue"}}. An object where Batch reads an enum.
    assert json.loads(CAPTURED["node-disable-scheduling-option"]["body"]) == {
        "nodeDisableSchedulingOption": {"nodeDisableSchedulingOption": "requeue"}
    }
    n = node(pool)
    r = replay(monkeypatch, "node-disable-scheduling-option")
    assert (r.status_code, error_code(r)) == (400, "InvalidRequestBody")
    assert ComputeNode.objects.get(pk=n.pk).scheduling_enabled is True


def test_node_counts_and_supported_images(pool, monkeypatch):
    node(pool)
    r = replay(monkeypatch, "node-counts")
    assert r.status_code == 200, r.content
    assert [(c["poolId"], c["dedicated"]["idle"]) for c in json.loads(r.content)["value"]] == [
        ("p", 1)
    ]
    r = replay(monkeypatch, "supported-images")  # --filter "osType eq 'linux'"
    assert r.status_code == 200, r.content
    assert {i["osType"] for i in json.loads(r.content)["value"]} == {"linux"}


def test_pool_delete(devbatch, monkeypatch):
    pool = PoolFactory(account=devbatch, pool_id="p2")
    node(pool)
    r = replay(monkeypatch, "pool-delete")  # az batch pool delete --pool-id p2 --yes
    assert r.status_code == 202, r.content
    assert Pool.objects.get(pk=pool.pk).state == "deleting"


def test_node_user_create_is_a_clear_refusal(pool, monkeypatch):
    node(pool)
    r = replay(monkeypatch, "node-user-create")
    assert (r.status_code, error_code(r)) == (501, "UnsupportedOperation")
