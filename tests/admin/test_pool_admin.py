"""The admin of pools and nodes goes through the pool and node operations: a pool's
targets through Resize Pool, its formula through Enable / Disable AutoScale, each with its
rule and audited; a node's reboot, reimage, scheduling and removal are list actions."""

import pytest
from django.urls import reverse

from tasks.models import AuditRecord, ComputeNode, Pool
from tests.admin.helpers import act, form_data, texts
from tests.factories import ComputeNodeFactory, PoolFactory

pytestmark = pytest.mark.django_db

FORMULA = "$TargetDedicatedNodes = 2;"


def change_url(obj) -> str:
    return reverse(f"admin:tasks_{obj._meta.model_name}_change", args=[obj.pk])


def post_change(client, obj, **changes):
    url = change_url(obj)
    return client.post(url, form_data(client.get(url), **changes))


def fresh(pool) -> Pool:
    return Pool.objects.get(pk=pool.pk)


@pytest.fixture
def pool():
    return PoolFactory(pool_id="farm", vm_size="local", target_dedicated_nodes=1)


def test_only_the_targets_and_the_autoscale_settings_are_fields_of_a_pool(admin_client_, pool):
    form = admin_client_.get(change_url(pool)).context["adminform"].form
    assert sorted(form.fields) == [
        "auto_scale_evaluation_interval",
        "auto_scale_formula",
        "target_dedicated_nodes",
        "target_low_priority_nodes",
    ]


def test_a_target_change_goes_through_resize_pool_and_is_audited(admin_client_, pool):
    r = post_change(
        admin_client_, pool, target_dedicated_nodes="3", task_slots_per_node="9", state="deleting"
    )
    assert r.status_code == 302
    pool = fresh(pool)
    assert (pool.target_dedicated_nodes, pool.allocation_state) == (3, "resizing")
    assert (pool.task_slots_per_node, pool.state) == (1, "active")  # read-only: ignored
    record = AuditRecord.objects.get()
    assert record.action == "pool-resize" and record.actor == "admin:root"
    assert record.scope == {"pool": "farm", "targetDedicatedNodes": 3, "targetLowPriorityNodes": 0}


def test_a_resize_the_rule_refuses_is_refused_at_the_form(admin_client_, pool):
    Pool.objects.filter(pk=pool.pk).update(allocation_state="resizing")
    r = post_change(admin_client_, pool, target_dedicated_nodes="5")
    assert r.status_code == 200
    assert "PoolBeingResized: The specified pool is being resized." in str(
        r.context["adminform"].form.errors
    )
    assert fresh(pool).target_dedicated_nodes == 1 and not AuditRecord.objects.exists()


def test_a_formula_enables_autoscale_through_its_operation(admin_client_, pool):
    r = post_change(admin_client_, pool, auto_scale_formula=FORMULA)
    assert r.status_code == 302
    pool = fresh(pool)
    assert pool.enable_auto_scale and pool.target_dedicated_nodes == 2 and pool.auto_scale_run
    assert AuditRecord.objects.get().action == "pool-enable-autoscale"


def test_a_formula_batch_refuses_is_refused_at_its_field(admin_client_, pool):
    r = post_change(admin_client_, pool, auto_scale_formula="$TargetDedicatedNodes = = 1;")
    assert r.status_code == 200
    assert "AutoScalingFormulaSyntaxError" in str(
        r.context["adminform"].form.errors["auto_scale_formula"]
    )
    assert not fresh(pool).enable_auto_scale


def test_emptying_the_formula_disables_autoscale(admin_client_, pool):
    post_change(admin_client_, pool, auto_scale_formula=FORMULA)
    r = post_change(admin_client_, fresh(pool), auto_scale_formula="")
    assert r.status_code == 302
    pool = fresh(pool)
    assert not pool.enable_auto_scale and pool.target_dedicated_nodes == 2
    assert [a.action for a in AuditRecord.objects.order_by("pk")] == [
        "pool-enable-autoscale",
        "pool-disable-autoscale",
    ]


def test_targets_and_formula_are_not_changed_at_once(admin_client_, pool):
    r = post_change(admin_client_, pool, target_dedicated_nodes="4", auto_scale_formula=FORMULA)
    assert r.status_code == 200 and "not both" in str(r.context["adminform"].form.errors)
    assert fresh(pool).target_dedicated_nodes == 1


def test_a_pools_secrets_are_never_shown(admin_client_):
    pool = PoolFactory(
        spec={
            "userAccounts": [{"name": "ops", "password": "hunter2-secret"}],
            "mountConfiguration": [{"azureBlobFileSystemConfiguration": {"accountKey": "k3y"}}],
        }
    )
    body = admin_client_.get(change_url(pool)).content.decode()
    assert "hunter2-secret" not in body and "k3y" not in body and "&quot;ops&quot;" in body


def test_stop_resize_and_disable_autoscale_are_list_actions(admin_client_, pool):
    auto = PoolFactory(
        pool_id="auto",
        enable_auto_scale=True,
        auto_scale_formula=FORMULA,
        allocation_state="resizing",
    )
    r = act(admin_client_, "stop-resize_pools", [auto], model="pool")
    assert "Stop resizing: 1 done." in texts(r) and fresh(auto).allocation_state == "stopping"
    r = act(admin_client_, "disable-autoscale_pools", [auto], model="pool")
    assert not fresh(auto).enable_auto_scale
    Pool.objects.filter(pk=pool.pk).update(state="deleting")
    r = act(admin_client_, "stop-resize_pools", [pool], model="pool")
    assert any("refused for 1 (farm) — PoolBeingDeleted" in t for t in texts(r))


@pytest.mark.parametrize(
    "action, check",
    [
        ("reboot", lambda n: n.state == "rebooting" and n.pending_action == "reboot"),
        ("reimage", lambda n: n.state == "reimaging"),
        ("disable_scheduling", lambda n: not n.scheduling_enabled),
        ("remove", lambda n: n.pending_action == "remove"),
    ],
)
def test_node_actions_go_through_the_node_operations(admin_client_, pool, action, check):
    node = ComputeNodeFactory(pool=pool, provider_handle="local:1")
    r = act(admin_client_, f"{action}_nodes", [node], model="computenode")
    assert r.status_code == 200 and any("1 done" in t for t in texts(r))
    assert check(ComputeNode.objects.get(pk=node.pk))
    record = AuditRecord.objects.get()
    assert record.action == f"node-{action.replace('_', '-')}" and record.scope["nodes"] == [
        node.node_id
    ]
    assert record.scope["option"] == "requeue" and record.actor == "admin:root"


def test_a_node_action_the_rule_refuses_names_the_node_and_the_reason(admin_client_, pool):
    creating = ComputeNodeFactory(pool=pool, node_id="new", state="creating")
    enabled = ComputeNodeFactory(pool=pool, node_id="up")
    r = act(admin_client_, "reboot_nodes", [creating, enabled], model="computenode")
    assert "Reboot: 1 done." in texts(r)
    assert any(t.startswith("Reboot refused for 1 (new) — NodeBeingCreated") for t in texts(r))
    r = act(admin_client_, "enable_scheduling_nodes", [enabled], model="computenode")
    assert any("NodeAlreadyInTargetSchedulingState" in t for t in texts(r))
    assert ComputeNode.objects.get(pk=creating.pk).state == "creating"
