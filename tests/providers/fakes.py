"""An in-memory node provider for reconciler tests: it records what it was asked and
"runs" nodes as entries in a dict, so a test can crash one, queue one, or make the
provider refuse, without processes."""

from __future__ import annotations

from tasks.providers.base import NodeLaunch, NodeProvider, ProviderError, RunningNode


class FakeProvider(NodeProvider):
    def __init__(self, name: str = "local") -> None:
        self.name = name
        self.nodes: dict[str, RunningNode] = {}  # handle -> node
        self.launches: list[NodeLaunch] = []
        self.stops: list[tuple[str, bool]] = []
        self.refuse_start: ProviderError | None = None
        self.refuse_running: Exception | None = None
        self.queue = False  # new nodes are pending (a Slurm job waiting for resources)
        self._next = 0

    def start(self, launch: NodeLaunch) -> str:
        for handle, node in self.nodes.items():
            if (node.account, node.pool_id, node.node_id) == (
                launch.account,
                launch.pool_id,
                launch.node_id,
            ):
                return handle
        if self.refuse_start:
            raise self.refuse_start
        self._next += 1
        handle = f"fake:{self._next}"
        self.launches.append(launch)
        self.nodes[handle] = RunningNode(
            account=launch.account,
            pool_id=launch.pool_id,
            node_id=launch.node_id,
            handle=handle,
            pending=self.queue,
        )
        return handle

    def stop(self, handle: str, *, graceful: bool) -> None:
        self.stops.append((handle, graceful))
        self.nodes.pop(handle, None)

    def running(self) -> list[RunningNode]:
        if self.refuse_running:
            raise self.refuse_running
        return list(self.nodes.values())

    # --- what tests do to it -------------------------------------------------------------

    def crash(self, node_id: str) -> None:
        """The agent died (SIGKILL, OOM, a lost Slurm node)."""
        for handle, node in list(self.nodes.items()):
            if node.node_id == node_id:
                del self.nodes[handle]

    def handle_of(self, node_id: str) -> str:
        return next(h for h, n in self.nodes.items() if n.node_id == node_id)
