"""Node providers: where a pool's nodes come from.

A provider knows how to start one node agent (`manage.py runnode`) for a pool, how to stop
it (gracefully: SIGTERM, so the agent requeues its work and goes offline; or not), and how
to list what it really runs. It knows nothing of tasks, node states or Batch rules: the
reconciler (tasks.operations) decides which nodes should exist and asks the provider; the
agent is the same process whatever started it. So a pool behaves the same on every
provider, and after any crash the database and the provider are reconciled from
`running()`, never from anyone's memory.

Providers: `local` (agents as processes on this machine, the embedded default), `slurm`
(one Slurm job per node, "pilot" mode). Kubernetes would be a third: a pod per node, the
same three calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class NodeLaunch:
    """Everything a provider needs to start one node agent."""

    account: str
    pool_id: str
    node_id: str  # chosen by the rules layer before the start; unique in its pool
    slots: int
    is_dedicated: bool = True
    # Deployment options of the pool's vmSize for this provider (e.g. a Slurm partition).
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunningNode:
    """A node agent the provider really runs (or has queued to run)."""

    account: str
    pool_id: str
    node_id: str
    handle: str  # the provider's own reference: a pid, a Slurm job id
    pending: bool = False  # accepted but not started yet (a Slurm job still PENDING)


class ProviderError(Exception):
    """A provider could not do what it was asked: reaches the pool as a resizeError."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class NodeProvider(ABC):
    name: str

    @abstractmethod
    def start(self, launch: NodeLaunch) -> str:
        """Start a node agent; return its handle. Idempotent for a node id that already
        runs (returns the running one's handle). Raises ProviderError."""

    @abstractmethod
    def stop(self, handle: str, *, graceful: bool) -> None:
        """Stop a node agent: graceful sends SIGTERM (the agent requeues its running
        tasks and takes its node offline), otherwise kill it. A handle that no longer
        runs is not an error."""

    @abstractmethod
    def running(self) -> list[RunningNode]:
        """Every node agent this provider runs for this batchsite instance, queued ones
        included."""
