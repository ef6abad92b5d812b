"""Every pool and node button is enabled or disabled by the same can_* rule the API's 409
comes from, with the rule's message as the reason; a viewer's are all disabled."""

import pytest
from django.urls import reverse

from tasks.models import ComputeNode, Pool
from tasks.operations import nodes as node_ops
from tasks.operations import pools as pool_ops
from tasks.web.access import Access
from tasks.web.pool_pages import node_buttons
from tests.factories import ComputeNodeFactory, PoolFactory
from tests.operations.node_states import node_situations
from tests.web.buttons import buttons

pytestmark = pytest.mark.django_db

POOL_RULES = {
    "resize": pool_ops.can_resize_pool,
    "stop-resize": pool_ops.can_stop_resize_pool,
    "enable-autoscale": pool_ops.can_enable_auto_scale,
    "disable-autoscale": pool_ops.can_disable_auto_scale,
    "evaluate-autoscale": pool_ops.can_evaluate_auto_scale,
    "delete": pool_ops.can_delete_pool,
}
NODE_RULES = {
    "reboot": node_ops.can_reboot_node,
    "reimage": node_ops.can_reimage_node,
    "disable-scheduling": node_ops.can_disable_node_scheduling,
    "enable-scheduling": node_ops.can_enable_node_scheduling,
    "remove": lambda node: pool_ops.can_remove_nodes(node.pool),
}

POOL_SITUATIONS = [
    {"state": state, "allocation_state": allocation, "enable_auto_scale": auto}
    for state in ("active", "deleting")
    for allocation in ("steady", "resizing", "stopping")
    for auto in (False, True)
]


def reason(rule, obj) -> str:
    error = rule(obj)
    return error.message if error else ""


def expected_node_buttons(node) -> dict[str, str]:
    """Each node rule's refusal; of the scheduling pair only the one that can change something."""
    expected = {name: reason(rule, node) for name, rule in NODE_RULES.items()}
    del expected["enable-scheduling" if node.scheduling_enabled else "disable-scheduling"]
    return expected


@pytest.mark.parametrize(
    "situation", POOL_SITUATIONS, ids=lambda s: "/".join(str(v) for v in s.values())
)
def test_each_pool_button_follows_its_rule(op, account, situation):
    pool = PoolFactory(account=account, pool_id="p", **situation)
    shown = buttons(
        op.get(reverse("web:pool", args=[account.name, "p"])).content.decode(), "pool-actions"
    )
    expected = {name: reason(rule, pool) for name, rule in POOL_RULES.items()}
    # Stop resize only while there is a resize; Disable autoscale only on an autoscaled pool.
    if pool.allocation_state == Pool.AllocationState.STEADY:
        del expected["stop-resize"]
    if not pool.enable_auto_scale:
        del expected["disable-autoscale"]
    assert shown == expected


def test_each_node_button_follows_its_rule_in_every_node_state(account):
    """What the node page renders (node_buttons), in every situation a node can be in."""
    pool = PoolFactory(account=account, pool_id="p")
    access = Access(account, "operator")
    for label, kwargs in node_situations():
        node = ComputeNodeFactory(pool=pool, **kwargs)
        shown = {b.action: b.reason for b in node_buttons(access, node)}
        assert shown == expected_node_buttons(node), label


@pytest.mark.parametrize(
    "label, kwargs",
    [
        (label, kwargs)
        for label, kwargs in node_situations()
        if label
        in (
            "idle/enabled/alive/",
            "running/disabled/alive/",
            "creating/enabled/alive/",
            "rebooting/enabled/alive/reboot",
            "leavingpool/enabled/alive/remove",
            "offline/enabled/dead/",
            "starttaskfailed/enabled/alive/",
        )
    ],
)
def test_the_node_page_shows_each_button_as_its_rule_says(op, account, label, kwargs):
    pool = PoolFactory(account=account, pool_id="p")
    node = ComputeNodeFactory(pool=pool, node_id="n", **kwargs)
    shown = buttons(
        op.get(reverse("web:node", args=[account.name, "p", "n"])).content.decode(), "node-actions"
    )
    assert shown == expected_node_buttons(node)


def test_node_buttons_follow_the_pools_state_too(op, account):
    pool = PoolFactory(account=account, pool_id="p", state=Pool.State.DELETING)
    node = ComputeNodeFactory(pool=pool, node_id="n")
    shown = buttons(
        op.get(reverse("web:node", args=[account.name, "p", "n"])).content.decode(), "node-actions"
    )
    assert set(shown.values()) == {
        "The specified pool has been marked for deletion and is being reclaimed."
    }
    assert shown == expected_node_buttons(node)


def test_a_viewer_sees_no_button_and_is_told_why_once(view, account):
    PoolFactory(account=account, pool_id="p", enable_auto_scale=True, allocation_state="resizing")
    ComputeNodeFactory(pool=Pool.objects.get(pool_id="p"), node_id="n", scheduling_enabled=False)
    for url, region in (
        (reverse("web:pool", args=[account.name, "p"]), "pool"),
        (reverse("web:node", args=[account.name, "p", "n"]), "node"),
    ):
        body = view.get(url).content.decode()
        assert buttons(body, f"{region}-actions") == {}, url
        actions = body.split(f'id="{region}-actions"')[1].split("</div>")[0]
        assert "<button" not in actions and "<form" not in actions and "<a " not in actions
        assert (
            f'id="{region}-viewer">You are a viewer of {account.name}: only its operators can act'
            in body
        )


def test_a_disabled_button_is_refused_on_post_with_the_same_message(op, account):
    """The button is only a view of the rule: a hand-made POST meets the rule itself."""
    PoolFactory(
        account=account,
        pool_id="auto",
        enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes=1;",
    )
    pool = Pool.objects.get(pool_id="auto")
    node = ComputeNodeFactory(pool=pool, node_id="n", state=ComputeNode.State.CREATING)
    r = op.post(
        reverse("web:pool-resize", args=[account.name, "auto"]),
        {"target_dedicated": 2, "target_low_priority": 0, "node_deallocation_option": "requeue"},
        headers={"HX-Request": "true"},
    )
    assert (
        pool_ops.can_resize_pool(pool).message in r.content.decode()
        and 'id="pool-flash"' in r.content.decode()
    )
    r = op.post(
        reverse("web:node-reboot", args=[account.name, "auto", "n"]),
        {"confirm": "yes"},
        headers={"HX-Request": "true"},
    )
    assert (
        node_ops.can_reboot_node(node).message in r.content.decode()
        and 'id="node-flash"' in r.content.decode()
    )
