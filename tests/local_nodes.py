"""The real `local` provider for tests: agents as processes against the test database,
with short intervals, all stopped (and their directories removed) after the test.

A pytest plugin (tests/conftest.py): use the fixtures by name.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time

import pytest
from django.conf import settings

from tasks.models import ComputeNode, Pool
from tasks.nodehost import layout
from tasks.operations.reconcile import Reconciler
from tasks.providers.local import LocalProvider
from tests.agents import FAST, wait_for


def stop_everything(provider: LocalProvider) -> None:
    for node in provider.running():
        provider.stop(node.handle, graceful=True)
    deadline = time.monotonic() + 20
    while provider.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    for node in provider.running():
        provider.stop(node.handle, graceful=False)


@pytest.fixture
def local_provider(transactional_db):
    provider = LocalProvider(environment=FAST)
    stop_everything(provider)  # a previous test's leftovers, if it was interrupted
    yield provider
    stop_everything(provider)
    for pool in Pool.objects.select_related("account"):
        for node_id in ComputeNode.objects.filter(pool=pool).values_list("node_id", flat=True):
            shutil.rmtree(
                layout.node_root(settings.DATA_DIR, pool.account.name, pool.pool_id, node_id),
                ignore_errors=True,
            )


@pytest.fixture
def reconciler(local_provider):
    return Reconciler(providers={"local": local_provider})


@contextlib.contextmanager
def in_background(reconciler: Reconciler, *, interval: float = 0.2):
    """The reconciler looping in a thread while the block runs, as `manage.py reconcile`
    does beside a live server."""
    from django.db import connection

    stop = threading.Event()

    def loop():
        try:
            reconciler.run(interval=interval, should_stop=stop.is_set)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, name="reconciler", daemon=True)
    thread.start()
    try:
        yield reconciler
    finally:
        stop.set()
        thread.join(30)


def reconcile_until(
    reconciler: Reconciler, predicate, *, timeout: float = 30, message: str = "condition"
):
    """Run reconciler passes until predicate() is true (what `manage.py reconcile` loops)."""

    def step():
        reconciler.run_pass()
        return predicate()

    return wait_for(step, timeout=timeout, interval=0.1, message=message)
