"""The pool and node actions people take from the dashboard and the admin, by name, with
their "may I?" rule and the options Batch gives them, so a button, its disabled reason, an
admin action and the API's 409 all come from the same pair (as tasks.operations.actions does
for tasks). Each run is audited: who, which pool or node, which option, how it ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tasks.errors import BatchError
from tasks.models import DISABLE_SCHEDULING_OPTIONS, ComputeNode, NodeDeallocationOption, Pool

from . import nodes, pools
from .audit import audited


@dataclass(frozen=True)
class NodeAction:
    """One action on one node: `run(node, option)` and its rule `refusal(node)`; `options`
    are the values Batch takes for it (empty: it takes none), the first being its default."""

    run: Callable[[ComputeNode, str], Any]
    refusal: Callable[[ComputeNode], BatchError | None]
    options: tuple[str, ...] = ()


def _remove(node: ComputeNode, option: str) -> Pool:
    return pools.remove_nodes(node.pool, node_ids=[node.node_id], node_deallocation_option=option)


def can_remove_node(node: ComputeNode) -> BatchError | None:
    """Remove Nodes is a pool operation: its rule is the pool's (a steady pool that is not
    autoscaled, not being deleted)."""
    return pools.can_remove_nodes(node.pool)


NODE_ACTIONS: dict[str, NodeAction] = {
    "reboot": NodeAction(
        lambda node, option: nodes.reboot_node(node, option=option),
        nodes.can_reboot_node,
        tuple(tuple(NodeDeallocationOption.values)),
    ),
    "reimage": NodeAction(
        lambda node, option: nodes.reimage_node(node, option=option),
        nodes.can_reimage_node,
        tuple(tuple(NodeDeallocationOption.values)),
    ),
    "disable-scheduling": NodeAction(
        lambda node, option: nodes.disable_node_scheduling(node, option=option),
        nodes.can_disable_node_scheduling,
        DISABLE_SCHEDULING_OPTIONS,
    ),
    "enable-scheduling": NodeAction(
        lambda node, option: nodes.enable_node_scheduling(node), nodes.can_enable_node_scheduling
    ),
    "remove": NodeAction(_remove, can_remove_node, tuple(NodeDeallocationOption.values)),
}

# Pool action name -> its rule. The operations take different arguments (targets, a
# formula), so the callers call them; the rule and the audit are shared.
POOL_RULES: dict[str, Callable[[Pool], BatchError | None]] = {
    "resize": pools.can_resize_pool,
    "stop-resize": pools.can_stop_resize_pool,
    "enable-autoscale": pools.can_enable_auto_scale,
    "disable-autoscale": pools.can_disable_auto_scale,
    "evaluate-autoscale": pools.can_evaluate_auto_scale,
    "delete": pools.can_delete_pool,
}


def node_refusals(node: ComputeNode) -> dict[str, BatchError | None]:
    """Each node action's refusal for this node (None where it is allowed); no query when
    the node's pool is loaded."""
    return {name: action.refusal(node) for name, action in NODE_ACTIONS.items()}


def pool_refusals(pool: Pool) -> dict[str, BatchError | None]:
    """Each pool action's refusal for this pool (None where it is allowed); no query."""
    return {name: rule(pool) for name, rule in POOL_RULES.items()}


def node_option(action: str, option: str | None) -> str:
    """The option a node action runs with: Batch's default (requeue) when none is given.
    Refuses an option the action does not take (400 InvalidPropertyValue)."""
    allowed = NODE_ACTIONS[action].options
    if not allowed:
        return ""
    if not option:
        return allowed[0]
    if option not in allowed:
        raise BatchError.invalid_property(
            "option", option, f"The value must be one of: {', '.join(allowed)}."
        )
    return option


def act_on_node(
    node: ComputeNode, action: str, *, option: str | None = None, user, actor: str
) -> BatchError | None:
    """Run one named action on one node through the rules layer and audit it; return the
    refusal (a BatchError) or None."""
    pool = node.pool
    scope = {"pool": pool.pool_id, "nodes": [node.node_id]}

    def run():
        chosen = node_option(action, option)
        if chosen:
            scope["option"] = chosen
        return NODE_ACTIONS[action].run(node, chosen)

    _, error = audited(
        pool.account, user=user, actor=actor, action=f"node-{action}", scope=scope, operation=run
    )
    return error


def act_on_pool(
    pool: Pool,
    action: str,
    operation: Callable[[], Any],
    *,
    user,
    actor: str,
    scope: dict | None = None,
) -> tuple[Any, BatchError | None]:
    """Run `operation` (a call of the pool operation named `action`) and audit it with the
    pool and `scope` (the targets, the formula): (its result, None) or (None, the refusal)."""
    return audited(
        pool.account,
        user=user,
        actor=actor,
        action=f"pool-{action}",
        scope={"pool": pool.pool_id, **(scope or {})},
        operation=operation,
    )
