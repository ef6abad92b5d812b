"""Batch API views of pools and compute nodes: one class per Batch path, each method parses,
calls one operation or query, and answers with the status and headers both SDKs expect
(15.x `_operations.py`, 14.x `_pool_operations.py` / `_compute_node_operations.py`).

The long-running calls (resize, stop resize, remove nodes, delete, reboot, reimage) answer
202 once their operation has set, in its own transaction, what the 15.x SDK then polls
(allocationState `resizing`/`stopping`, pool `deleting`, node `rebooting`/`reimaging`).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from tasks.errors import BatchError
from tasks.images import SUPPORTED_IMAGES
from tasks.models import ComputeNode, NodeDeallocationOption, Pool
from tasks.operations import autoscale as autoscale_ops
from tasks.operations import nodes as node_ops
from tasks.operations import pools as pool_ops
from tasks.operations.audit import audited_api
from tasks.operations.common import now
from tasks.queries.nodes import count_running_on, get_node, list_nodes, list_recent_tasks_of_nodes
from tasks.queries.pools import count_nodes_by_state, get_pool, list_pools, pool_node_stats
from tasks.wire.pool_serializers import (
    NodeDisableSchedulingParameterSerializer,
    NodeRebootParameterSerializer,
    NodeReimageParameterSerializer,
    NodeRemoveParameterSerializer,
    PoolAddParameterSerializer,
    PoolEnableAutoScaleParameterSerializer,
    PoolEvaluateAutoScaleParameterSerializer,
    PoolPatchParameterSerializer,
    PoolResizeParameterSerializer,
    PoolUpdatePropertiesParameterSerializer,
)
from tasks.wire.serializers import validate_wire

from . import odata
from .base import BatchApiView
from .conditional import check_read, write_precondition
from .render import node_url
from .render_pools import node_counts_json, node_json, pool_json, pool_stats_json, pool_url


class PoolView(BatchApiView):
    """Helpers the pool paths share."""

    def pool(self, pool_id: str) -> Pool:
        return get_pool(self.account, pool_id)

    def audited(self, pool: Pool, action: str, operation, scope: dict | None = None):
        """Run a pool operation and audit it as the dashboard's pool actions are (`pool-<action>`)."""
        return audited_api(
            self.account,
            action=f"pool-{action}",
            scope={"pool": pool.pool_id, **(scope or {})},
            operation=operation,
        )

    def pool_headers(self, response: Response, pool: Pool) -> Response:
        return self.resource_headers(
            response,
            etag=pool.etag,
            last_modified=pool.last_modified,
            url=pool_url(self.base_url, pool.pool_id),
        )

    def pool_bodies(self, pools: list[Pool]) -> list[dict]:
        """The wire form of a page of pools: one query for their node counts, one more
        for their statistics when $expand=stats asks."""
        current = pool_ops.current_nodes(pools)
        stats = {}
        if self.expand_stats():
            at = now()
            per_pool = pool_node_stats(pools, at=at)
            for pool in pools:
                size = pool_ops.size_of(pool)
                stats[pool.pk] = pool_stats_json(
                    pool,
                    base=self.base_url,
                    version=self.api_version,
                    nodes=per_pool[pool.pk],
                    cores=(size and size.cores) or 1,
                    at=at,
                )
        select = self.select()
        return [
            self.selected(
                pool_json(
                    p,
                    base=self.base_url,
                    version=self.api_version,
                    current=current[p.pk],
                    stats=stats.get(p.pk),
                ),
                select,
            )
            for p in pools
        ]


# --- pools -------------------------------------------------------------------------------


class PoolListApi(PoolView):
    @extend_schema(
        request=PoolAddParameterSerializer,
        responses={201: None},
        summary="Add Pool",
        operation_id="Add_Pool",
    )
    def post(self, request):
        spec = validate_wire(PoolAddParameterSerializer, self.json_body())
        pool = pool_ops.add_pool(self.account, spec=spec)
        return self.created(
            etag=pool.etag,
            last_modified=pool.last_modified,
            url=pool_url(self.base_url, pool.pool_id),
        )

    @extend_schema(
        summary="List Pools", operation_id="List_Pools", responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request):
        where = odata.pool_filter(self.params.get("$filter", ""))
        page = list_pools(self.account, where=where, after=self.skiptoken(), limit=self.page_size())
        pools = page.rows
        return self.envelope(
            self.pool_bodies(pools),
            metadata="pools",
            page=page,
        )


class PoolApi(PoolView):
    @extend_schema(
        summary="Get Pool", operation_id="Get_Pool", responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request, pool_id):
        pool = self.pool(pool_id)
        check_read(request._request.META, pool)
        [body] = self.pool_bodies([pool])
        body["odata.metadata"] = f"{self.base_url}/$metadata#pools/@Element"
        return self.pool_headers(Response(body), pool)

    @extend_schema(
        summary="Pool Exists", responses={200: None, 404: None}, operation_id="Pool_Exists"
    )
    def head(self, request, pool_id):
        pool = self.pool(pool_id)
        check_read(request._request.META, pool)
        return self.pool_headers(Response(None, status=200), pool)

    @extend_schema(
        request=PoolPatchParameterSerializer,
        responses={200: None},
        summary="Patch Pool",
        operation_id="Patch_Pool",
    )
    def patch(self, request, pool_id):
        precondition = write_precondition(request._request.META)
        pool = self.pool(pool_id)
        spec = validate_wire(PoolPatchParameterSerializer, self.json_body(allow_empty=True))
        pool = pool_ops.patch_pool(pool, spec=spec, precondition=precondition)
        return self.pool_headers(Response(None, status=200), pool)

    @extend_schema(responses={202: None}, summary="Delete Pool", operation_id="Delete_Pool")
    def delete(self, request, pool_id):
        precondition = write_precondition(request._request.META)
        pool = self.pool(pool_id)
        self.audited(pool, "delete", lambda: pool_ops.delete_pool(pool, precondition=precondition))
        return Response(None, status=202)


class PoolUpdatePropertiesApi(PoolView):
    @extend_schema(
        request=PoolUpdatePropertiesParameterSerializer,
        responses={204: None},
        summary="Update Pool Properties",
        operation_id="Update_Pool_Properties",
    )
    def post(self, request, pool_id):
        pool = self.pool(pool_id)
        spec = validate_wire(PoolUpdatePropertiesParameterSerializer, self.json_body())
        pool = pool_ops.update_pool_properties(pool, spec=spec)
        return self.pool_headers(Response(None, status=204), pool)


class PoolResizeApi(PoolView):
    @extend_schema(
        request=PoolResizeParameterSerializer,
        responses={202: None},
        summary="Resize Pool",
        operation_id="Resize_Pool",
    )
    def post(self, request, pool_id):
        precondition = write_precondition(request._request.META)
        pool = self.pool(pool_id)
        body = validate_wire(PoolResizeParameterSerializer, self.json_body())
        scope = {
            "targetDedicatedNodes": body.get("targetDedicatedNodes") or 0,
            "targetLowPriorityNodes": body.get("targetLowPriorityNodes") or 0,
        }
        pool = self.audited(
            pool,
            "resize",
            lambda: pool_ops.resize_pool(
                pool,
                target_dedicated=body.get("targetDedicatedNodes"),
                target_low_priority=body.get("targetLowPriorityNodes"),
                resize_timeout=body.get("resizeTimeout"),
                node_deallocation_option=body.get("nodeDeallocationOption"),
                precondition=precondition,
            ),
            scope,
        )
        return self.pool_headers(Response(None, status=202), pool)


class PoolStopResizeApi(PoolView):
    @extend_schema(
        request=None,
        responses={202: None},
        summary="Stop Pool Resize",
        operation_id="Stop_Pool_Resize",
    )
    def post(self, request, pool_id):
        precondition = write_precondition(request._request.META)
        pool = self.pool(pool_id)
        pool = self.audited(
            pool, "stop-resize", lambda: pool_ops.stop_resize_pool(pool, precondition=precondition)
        )
        return self.pool_headers(Response(None, status=202), pool)


class PoolRemoveNodesApi(PoolView):
    @extend_schema(
        request=NodeRemoveParameterSerializer,
        responses={202: None},
        summary="Remove Nodes",
        operation_id="Remove_Nodes",
    )
    def post(self, request, pool_id):
        precondition = write_precondition(request._request.META)
        pool = self.pool(pool_id)
        body = validate_wire(NodeRemoveParameterSerializer, self.json_body())
        pool = self.audited(
            pool,
            "remove-nodes",
            lambda: pool_ops.remove_nodes(
                pool,
                node_ids=body["nodeList"],
                node_deallocation_option=body.get("nodeDeallocationOption"),
                resize_timeout=body.get("resizeTimeout"),
                precondition=precondition,
            ),
            {"nodes": list(body["nodeList"])},
        )
        return self.pool_headers(Response(None, status=202), pool)


class PoolEnableAutoScaleApi(PoolView):
    @extend_schema(
        request=PoolEnableAutoScaleParameterSerializer,
        responses={200: None},
        summary="Enable Pool AutoScale",
        operation_id="Enable_Pool_AutoScale",
    )
    def post(self, request, pool_id):
        precondition = write_precondition(request._request.META)
        pool = self.pool(pool_id)
        body = validate_wire(PoolEnableAutoScaleParameterSerializer, self.json_body())
        pool = self.audited(
            pool,
            "enable-autoscale",
            lambda: autoscale_ops.enable_auto_scale(
                pool,
                formula=body.get("autoScaleFormula") or None,
                evaluation_interval=body.get("autoScaleEvaluationInterval"),
                precondition=precondition,
            ),
            {"autoScaleFormula": body.get("autoScaleFormula") or ""},
        )
        return self.pool_headers(Response(None, status=200), pool)


class PoolDisableAutoScaleApi(PoolView):
    @extend_schema(
        request=None,
        responses={200: None},
        summary="Disable Pool AutoScale",
        operation_id="Disable_Pool_AutoScale",
    )
    def post(self, request, pool_id):
        pool = self.pool(pool_id)
        pool = self.audited(
            pool, "disable-autoscale", lambda: autoscale_ops.disable_auto_scale(pool)
        )
        return self.pool_headers(Response(None, status=200), pool)


class PoolEvaluateAutoScaleApi(PoolView):
    @extend_schema(
        request=PoolEvaluateAutoScaleParameterSerializer,
        responses={200: OpenApiTypes.OBJECT},
        summary="Evaluate Pool AutoScale",
        operation_id="Evaluate_Pool_AutoScale",
    )
    def post(self, request, pool_id):
        pool = self.pool(pool_id)
        body = validate_wire(PoolEvaluateAutoScaleParameterSerializer, self.json_body())
        run = autoscale_ops.evaluate_auto_scale(pool, formula=body["autoScaleFormula"])
        return self.pool_headers(Response(run, status=200), pool)


class PoolNodeCountsApi(PoolView):
    @extend_schema(
        summary="List Pool Node Counts",
        operation_id="List_Pool_Node_Counts",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        where = odata.node_counts_filter(self.params.get("$filter", ""))
        page = list_pools(self.account, where=where, after=self.skiptoken(), limit=self.page_size())
        pools = page.rows
        counts = count_nodes_by_state(pools)
        items = [node_counts_json(p.pool_id, counts[p.pk], version=self.api_version) for p in pools]
        return self.envelope(
            items,
            metadata="poolnodecounts",
            page=page,
        )


class SupportedImagesApi(BatchApiView):
    @extend_schema(
        summary="List Supported Images",
        operation_id="List_Supported_Images",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        where = odata.supported_image_filter(self.params.get("$filter", ""))
        after, limit = self.after_key(), self.page_size()
        images = sorted((_image_key(i), i) for i in SUPPORTED_IMAGES if odata.matches(where, i))
        page = [(key, image) for key, image in images if after is None or key > after][: limit + 1]
        shown = page[:limit]
        return self.envelope(
            [image.wire() for _, image in shown],
            metadata="supportedimages",
            last_key=shown[-1][0] if shown else None,
            more=len(page) > limit,
        )


def _image_key(image) -> str:
    return f"{image.node_agent_sku_id}|{image.publisher}|{image.offer}|{image.sku}"


# --- nodes -------------------------------------------------------------------------------


class NodeView(BatchApiView):
    def node(self, pool_id: str, node_id: str) -> ComputeNode:
        return get_node(get_pool(self.account, pool_id), node_id)

    def audited(self, node: ComputeNode, action: str, operation, option: str = ""):
        """Run a node operation and audit it as the dashboard's node actions are (`node-<action>`)."""
        scope = {
            "pool": node.pool.pool_id,
            "nodes": [node.node_id],
            **({"option": option} if option else {}),
        }
        return audited_api(self.account, action=f"node-{action}", scope=scope, operation=operation)

    def node_headers(self, response: Response, node: ComputeNode) -> Response:
        response["DataServiceId"] = node_url(self.base_url, node.pool.pool_id, node.node_id)
        return response

    def node_bodies(self, nodes: list[ComputeNode]) -> list[dict]:
        """The wire form of a page of nodes: one query for their running tasks, one for
        their recent tasks."""
        running = count_running_on(nodes)
        recent = list_recent_tasks_of_nodes(nodes)
        select = self.select()
        return [
            self.selected(
                node_json(
                    n,
                    base=self.base_url,
                    version=self.api_version,
                    running_tasks=running.get(n.pk, (0, 0))[0],
                    running_slots=running.get(n.pk, (0, 0))[1],
                    recent=recent.get(n.pk, ()),
                ),
                select,
            )
            for n in nodes
        ]


class NodeListApi(NodeView):
    @extend_schema(
        summary="List Compute Nodes",
        operation_id="List_Compute_Nodes",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, pool_id):
        pool = get_pool(self.account, pool_id)
        where = odata.node_filter(self.params.get("$filter", ""))
        page = list_nodes(pool, where=where, after=self.skiptoken(), limit=self.page_size())
        nodes = page.rows
        return self.envelope(
            self.node_bodies(nodes),
            metadata="nodes",
            page=page,
        )


class NodeApi(NodeView):
    @extend_schema(
        summary="Get Compute Node",
        operation_id="Get_Compute_Node",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, pool_id, node_id):
        node = self.node(pool_id, node_id)
        [body] = self.node_bodies([node])
        body["odata.metadata"] = f"{self.base_url}/$metadata#nodes/@Element"
        return Response(body)


class NodeRebootApi(NodeView):
    @extend_schema(
        request=NodeRebootParameterSerializer,
        responses={202: None},
        summary="Reboot Compute Node",
        operation_id="Reboot_Compute_Node",
    )
    def post(self, request, pool_id, node_id):
        node = self.node(pool_id, node_id)
        body = validate_wire(NodeRebootParameterSerializer, self.json_body(allow_empty=True))
        option = body.get("nodeRebootOption") or NodeDeallocationOption.REQUEUE
        node = self.audited(
            node, "reboot", lambda: node_ops.reboot_node(node, option=option), option
        )
        return self.node_headers(Response(None, status=202), node)


class NodeReimageApi(NodeView):
    @extend_schema(
        request=NodeReimageParameterSerializer,
        responses={202: None},
        summary="Reimage Compute Node",
        operation_id="Reimage_Compute_Node",
    )
    def post(self, request, pool_id, node_id):
        node = self.node(pool_id, node_id)
        body = validate_wire(NodeReimageParameterSerializer, self.json_body(allow_empty=True))
        option = body.get("nodeReimageOption") or NodeDeallocationOption.REQUEUE
        node = self.audited(
            node, "reimage", lambda: node_ops.reimage_node(node, option=option), option
        )
        return self.node_headers(Response(None, status=202), node)


class NodeDisableSchedulingApi(NodeView):
    @extend_schema(
        request=NodeDisableSchedulingParameterSerializer,
        responses={200: None},
        summary="Disable Compute Node Scheduling",
        operation_id="Disable_Compute_Node_Scheduling",
    )
    def post(self, request, pool_id, node_id):
        node = self.node(pool_id, node_id)
        body = validate_wire(
            NodeDisableSchedulingParameterSerializer, self.json_body(allow_empty=True)
        )
        option = body.get("nodeDisableSchedulingOption") or NodeDeallocationOption.REQUEUE
        node = self.audited(
            node,
            "disable-scheduling",
            lambda: node_ops.disable_node_scheduling(node, option=option),
            option,
        )
        return self.node_headers(Response(None, status=200), node)


class NodeEnableSchedulingApi(NodeView):
    @extend_schema(
        request=None,
        responses={200: None},
        summary="Enable Compute Node Scheduling",
        operation_id="Enable_Compute_Node_Scheduling",
    )
    def post(self, request, pool_id, node_id):
        node = self.node(pool_id, node_id)
        node = self.audited(
            node, "enable-scheduling", lambda: node_ops.enable_node_scheduling(node)
        )
        return self.node_headers(Response(None, status=200), node)


# What a batchsite node cannot do, and why: an agent on a shared machine has no login of
# its own, no Batch service logs, no VM to start or deallocate and no VM extensions.
NODE_UNSUPPORTED = {
    "users": "batchsite does not support node user accounts: a node is an agent process on a shared machine, "
    "with no user accounts of its own to create.",
    "remoteloginsettings": "batchsite does not support remote login: a node is an agent process, not a virtual "
    "machine with its own SSH or RDP endpoint.",
    "rdp": "batchsite does not support Remote Desktop: a node is an agent process, not a Windows virtual machine.",
    "uploadbatchservicelogs": "batchsite does not upload Batch service logs: read the agent's log where its node "
    "provider keeps it.",
    "start": "batchsite does not start deallocated nodes: its nodes are never deallocated.",
    "deallocate": "batchsite does not deallocate nodes: remove the node (Remove Nodes) or resize the pool instead.",
    "extensions": "batchsite does not support VM extensions: a node is an agent process, not a virtual machine.",
}


@extend_schema(exclude=True)
class NodeUnsupportedApi(NodeView):
    """Node calls batchsite cannot serve: 404 for a pool or node that does not exist, then
    a clear 501 UnsupportedOperation saying why."""

    def _refuse(self, request, pool_id, node_id, operation, rest=""):
        self.node(pool_id, node_id)
        raise BatchError(
            "UnsupportedOperation",
            NODE_UNSUPPORTED[operation],
            501,
            [("Operation", f"{request.method} {request.path}")],
        )

    get = post = put = patch = delete = head = _refuse
