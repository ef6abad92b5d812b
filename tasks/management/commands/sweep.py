"""`manage.py sweep`: the service's periodic sweeps, every --interval seconds, for good.

A database error (a restart, a failover, a lock timeout) does not end it: the pass is
retried on a new connection after 1 s, 2 s, 4 s, ... (at most the interval). Any other
error is logged and the next pass runs as usual. SIGTERM and Ctrl-C stop it at once and
quietly: what a pass was doing is transactional and picked up again by the next sweep."""

from __future__ import annotations

import contextlib
import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import Error as DatabaseError
from django.db import close_old_connections, connection

from tasks.operations.sweeps import run_frequent_sweeps, run_sweeps

log = logging.getLogger("batchsite.sweep")
FIRST_RETRY = 1.0


class _Stopped(BaseException):
    """SIGTERM/SIGINT: not an Exception, so no `except Exception` on the way swallows it."""


def _stop(signum, frame):
    raise _Stopped


class Command(BaseCommand):
    help = "Run the service's periodic sweeps (180-day task lifetime, job purges, ...)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run one pass and exit")
        parser.add_argument("--interval", type=float, default=30.0)

    def handle(self, *args, once=False, interval=30.0, verbosity=1, **options):
        if once:
            counts = run_sweeps()
            self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
            return
        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._sweep_forever(interval, verbosity)
        except _Stopped:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _sweep_forever(self, interval: float, verbosity: int) -> None:
        failures = 0
        while True:
            # A connection kept from the last pass may have died with its server meanwhile.
            close_old_connections()
            pause = interval
            try:
                counts = run_sweeps()
            except DatabaseError as e:
                failures += 1
                pause = min(interval, FIRST_RETRY * 2 ** (failures - 1))
                log.warning("sweep: database error, trying again in %.0f s: %s", pause, e)
                if not connection.in_atomic_block:
                    with contextlib.suppress(Exception):
                        connection.close()
            except Exception:
                log.exception("sweep: a pass failed; the next one runs in %.0f s", interval)
            else:
                failures = 0
                if verbosity >= 2:
                    self.stdout.write("sweep: " + " ".join(f"{k}={v}" for k, v in counts.items()))
                    self.stdout.flush()
            self._frequent_until(time.monotonic() + pause, failures)

    def _frequent_until(self, deadline: float, failures: int) -> None:
        """Between full sweeps, the frequent ones (job schedules' run times) every tick;
        after a database error they wait for the full sweep's retry."""
        tick = settings.BATCHSITE_SCHEDULE_TICK_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(tick, left))
            if failures or time.monotonic() >= deadline:
                continue
            close_old_connections()
            try:
                run_frequent_sweeps()
            except DatabaseError as e:
                log.warning("sweep: database error in a frequent pass: %s", e)
                if not connection.in_atomic_block:
                    with contextlib.suppress(Exception):
                        connection.close()
                return  # the full sweep retries with its backoff
            except Exception:
                log.exception("sweep: a frequent pass failed")
