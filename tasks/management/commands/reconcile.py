"""`manage.py reconcile [--interval S] [--once]`: drive pools' nodes toward their targets."""

import signal
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from tasks.operations.reconcile import Leadership, Reconciler
from tasks.providers import sizes


class Command(BaseCommand):
    help = (
        "Start, restart and stop the node agents of every pool through its node provider, so each "
        "pool's nodes follow its targets. SIGTERM or Ctrl-C stops the local agents gracefully; "
        "after a SIGKILL they keep running and the next reconciler adopts them. One reconciler acts "
        "per database; a second one waits to take over."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval",
            type=float,
            default=settings.BATCHSITE_RECONCILE_SECONDS,
            help="seconds between passes (BATCHSITE_RECONCILE_SECONDS)",
        )
        parser.add_argument(
            "--once", action="store_true", help="run one pass and exit (agents keep running)"
        )

    def handle(self, *args, interval, once, **options):
        sizes.table()  # a bad BATCHSITE_VM_SIZES stops us here, with its message
        reconciler = Reconciler()
        if once:
            counts = reconciler.run_pass()
            self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
            return
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        lock = Leadership()
        reconciler.run(interval=interval, should_stop=lambda: stopping, lock=lock)
        if not lock.acquire():
            self.stdout.write("reconciler stopped (another reconciler runs the nodes)")
            return
        stopped = reconciler.shutdown(timeout=settings.BATCHSITE_NODE_KILL_GRACE_SECONDS + 10)
        lock.release()
        self.stdout.write(f"reconciler stopped; {stopped} local node agents stopped")
        sys.stdout.flush()
