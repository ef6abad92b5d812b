"""`manage.py runnode --pool ID --slots N [--node-id X] [--low-priority]`: run one compute node."""

import os
import socket
import sys

import psutil
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from tasks.errors import BatchError
from tasks.models import Account, ComputeNode, Pool
from tasks.node.agent import REBOOT, NodeAgent
from tasks.nodehost.layout import NODE_ID_PATTERN


class Command(BaseCommand):
    help = (
        "Run a compute node of a pool: claim the pool's tasks, run them, report their outcome. "
        "Stop it with SIGTERM or Ctrl-C: its running tasks are killed and requeued. "
        "It restarts itself for a reboot or reimage and exits 0 once it has left its pool."
    )
    # The system checks are the web tier's (the URLconf, the admin, templates, security,
    # the vmSize table): `serve` and `manage.py check` run them. Here they would import the
    # whole URLconf, API and schema included, at every node start: 0.5 s of the 1.4 s of CPU
    # an agent used before it was idle, paid by every node a pool allocates.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--pool", required=True, help="the pool id (it must exist)")
        parser.add_argument(
            "--slots", type=int, default=os.cpu_count() or 1, help="task slots (default: CPUs)"
        )
        parser.add_argument("--node-id", default="", help="default: <hostname>-<pool>")
        parser.add_argument(
            "--account",
            default=settings.BATCHSITE_ACCOUNT_NAME,
            help="the Batch account that owns the pool",
        )
        parser.add_argument(
            "--low-priority",
            action="store_true",
            help="a low-priority (spot) node: isDedicated false, AZ_BATCH_NODE_IS_DEDICATED=false",
        )

    def handle(self, *args, pool, slots, node_id, account, low_priority, **options):
        node_id = node_id or f"{socket.gethostname().split('.')[0]}-{pool}"
        if not NODE_ID_PATTERN.match(node_id):
            raise CommandError(f"--node-id {node_id!r}: use 1-128 of A-Z a-z 0-9 _ . -")
        if slots < 1:
            raise CommandError("--slots must be at least 1")
        found = (
            Pool.objects.filter(account__name=account, id_key=pool.lower())
            .select_related("account")
            .first()
        )
        if found is None:
            if not Account.objects.filter(name=account).exists():
                raise CommandError(f"there is no Batch account {account!r}")
            raise CommandError(f"account {account!r} has no pool {pool!r}: add it first (Add Pool)")
        running = _live_agent(found, node_id)
        if running:
            raise CommandError(f"node {node_id} is already run by process {running} on this host")
        agent = NodeAgent(
            found, node_id=node_id, slots=slots, is_dedicated=not low_priority, out=self.stdout
        )
        try:
            outcome = agent.run()
        except BatchError as e:
            raise CommandError(str(e)) from None
        sys.stdout.flush()
        sys.stderr.flush()
        if outcome == REBOOT and not agent.signalled:
            # A reboot or reimage: the same process (pid, provider handle, Slurm step) starts
            # afresh, registers again and runs the start task again.
            connections.close_all()
            os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _live_agent(pool: Pool, node_id: str) -> int | None:
    """The pid of another agent of this node still running on this host, if any: two
    agents with one node id would requeue each other's tasks."""
    node = ComputeNode.objects.filter(pool=pool, node_id=node_id).first()
    if (
        node is None
        or not node.agent_pid
        or node.hostname != socket.gethostname()
        or node.agent_pid == os.getpid()
    ):
        return None
    try:
        cmdline = psutil.Process(node.agent_pid).cmdline()
    except psutil.Error:
        return None
    return node.agent_pid if "runnode" in cmdline and node_id in cmdline else None
