"""Fixtures that drive the official azure-batch SDKs against a live test server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.factories import AccountFactory
from tests.local_nodes import in_background

ROOT = Path(__file__).resolve().parents[2]
SDK14_PYTHON = ROOT / ".venv-sdk14" / "bin" / "python"
SCENARIOS14 = Path(__file__).with_name("sdk14_scenarios.py")


@pytest.fixture
def sdk_account(transactional_db):
    return AccountFactory(name="sdkacct")


@pytest.fixture
def client15(live_server, sdk_account):
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    # No client-side retries: a server error must fail the test at once, not after
    # ten backed-off retries.
    client = BatchClient(
        endpoint=live_server.url,
        credential=AzureNamedKeyCredential(sdk_account.name, sdk_account.primary_key),
        retry_total=0,
    )
    yield client
    # Its keep-alive connection ends, and with it the live server's thread serving it and
    # that thread's database session: left open, it kept the PostgreSQL test database in
    # use when the run ended (pytest-django could not drop it).
    client.close()


@pytest.fixture
def run14(live_server, sdk_account):
    """Run one scenario of tests/sdk/sdk14_scenarios.py (or of `script`) under azure-batch
    14.2.0 (its own virtualenv, built by `make sdk14`) and return what it printed as JSON."""
    if not SDK14_PYTHON.exists():
        pytest.fail(".venv-sdk14 is missing: run `make sdk14` (make test does)")

    def run(
        scenario: str,
        *args: str,
        key: str | None = None,
        name: str | None = None,
        script: Path = SCENARIOS14,
    ) -> dict:
        env = dict(
            os.environ,
            BATCH_URL=live_server.url,
            BATCH_ACCOUNT=name or sdk_account.name,
            BATCH_KEY=key or sdk_account.primary_key,
        )
        proc = subprocess.run(
            [str(SDK14_PYTHON), str(script), scenario, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"scenario {scenario} failed:\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture
def reconciling(provider_reconciler):
    """The reconciler looping in the background (what `manage.py reconcile` does) while an
    SDK call waits for a pool to reach its targets: its nodes are real agents of each
    provider in turn (tests/slurm.py `node_provider`: local processes, then Slurm jobs),
    so every test that uses it runs once per provider."""
    with in_background(provider_reconciler):
        yield provider_reconciler


def pytest_collection_modifyitems(config, items):
    del config
    for item in items:
        if "tests/sdk/" in str(item.fspath):
            item.add_marker(pytest.mark.sdk)
