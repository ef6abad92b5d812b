"""The README's Azure CLI block, as a newcomer runs it: the real `az` (azure-cli 2.91)
against a live `serve`, each line as written but the port. It needs the CLI: `az` on PATH
or BATCHSITE_AZ naming it (.ci/run installs it; elsewhere the test skips, with the reason)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.agents import wait_for
from tests.service.live import ROOT

pytestmark = [pytest.mark.slow]


def readme_cli_block() -> str:
    blocks = [
        b
        for b in re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
        if "az batch" in b
    ]
    assert len(blocks) == 1, "the README has one Azure CLI block"
    return blocks[0]


def az_program() -> str | None:
    return os.environ.get("BATCHSITE_AZ") or shutil.which("az")


def test_the_readme_has_an_azure_cli_block_that_makes_a_pool_and_runs_a_task():
    block = readme_cli_block()
    assert "AZURE_BATCH_ENDPOINT=http://127.0.0.1:8000" in block
    assert "az batch pool create" in block and "az batch task create" in block


def test_the_readme_cli_block_runs_as_written(fresh, tmp_path):
    az = az_program()
    if not az:
        pytest.skip("the Azure CLI is not installed: put `az` on PATH or set BATCHSITE_AZ")
    serve = fresh(nodes=1, slots=2)
    serve.wait_ready()
    script = readme_cli_block().replace("http://127.0.0.1:8000", f"http://127.0.0.1:{serve.port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env.update(
        PATH=f"{Path(az).parent}{os.pathsep}{env.get('PATH', '')}",
        AZURE_CONFIG_DIR=str(tmp_path / "az"),
        AZURE_CORE_COLLECT_TELEMETRY="no",
    )
    proc = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "stdout.txt").read_text() == "hello from the cli\n"
    nodes = [line.split("\t") for line in proc.stdout.splitlines() if line.startswith("tvmps_")]
    assert len(nodes) == 2 and {state for _, state in nodes} <= {"idle", "running"}, proc.stdout
    # Its last line deleted what it made: the job and the pool are gone or going.
    status, body = serve.api.call("GET", "/pools/clipool")
    assert status == 404 or body["state"] == "deleting"
    status, body = serve.api.call("GET", "/jobs/clijob")
    assert status == 404 or body["state"] == "deleting"


def test_the_cli_resizes_and_autoscales_a_pool(fresh, tmp_path):
    """Issue 9's CLI commands beyond the README block: resize up and down with a
    deallocation option, autoscale enable / evaluate / disable (the CLI sends numbers as
    strings), each checked through the API."""
    az = az_program()
    if not az:
        pytest.skip("the Azure CLI is not installed: put `az` on PATH or set BATCHSITE_AZ")
    serve = fresh(nodes=0)
    serve.wait_ready(nodes=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env.update(
        AZURE_CONFIG_DIR=str(tmp_path / "az"),
        AZURE_CORE_COLLECT_TELEMETRY="no",
        AZURE_BATCH_ACCOUNT=serve.api.account,
        AZURE_BATCH_ACCESS_KEY=serve.api.key,
        AZURE_BATCH_ENDPOINT=f"http://127.0.0.1:{serve.port}",
    )

    def az_batch(*args: str) -> str:
        proc = subprocess.run(
            [az, "batch", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, f"az batch {' '.join(args)}:\n{proc.stderr}"
        return proc.stdout

    def pool() -> dict:
        status, body = serve.api.call("GET", "/pools/p")
        assert status == 200
        return body

    def until_steady_with(dedicated: int) -> dict:
        return wait_for(
            lambda: (
                (p := pool())["allocationState"] == "steady"
                and p["currentDedicatedNodes"] == dedicated
                and p
            ),
            timeout=120,
            message=f"pool p steady with {dedicated} nodes",
        )

    az_batch(
        "pool",
        "create",
        "--id",
        "p",
        "--vm-size",
        "standard_d2s_v3",
        "--target-dedicated-nodes",
        "1",
        "--image",
        "canonical:0001-com-ubuntu-server-jammy:22_04-lts",
        "--node-agent-sku-id",
        "batch.node.ubuntu 22.04",
    )
    until_steady_with(1)
    az_batch("pool", "resize", "--pool-id", "p", "--target-dedicated-nodes", "2")
    until_steady_with(2)
    az_batch(
        "pool",
        "resize",
        "--pool-id",
        "p",
        "--target-dedicated-nodes",
        "1",
        "--node-deallocation-option",
        "taskcompletion",
    )
    assert until_steady_with(1)["targetDedicatedNodes"] == 1

    az_batch(
        "pool",
        "autoscale",
        "enable",
        "--pool-id",
        "p",
        "--auto-scale-formula",
        "$TargetDedicatedNodes = 0;",
        "--auto-scale-evaluation-interval",
        "PT5M",
    )
    got = until_steady_with(0)
    assert (got["enableAutoScale"], got["autoScaleFormula"]) == (True, "$TargetDedicatedNodes = 0;")
    # Evaluate (Batch evaluates only on an autoscaled pool) answers and applies nothing.
    evaluated = az_batch(
        "pool",
        "autoscale",
        "evaluate",
        "--pool-id",
        "p",
        "--auto-scale-formula",
        "$TargetDedicatedNodes = 2;",
    )
    assert "$TargetDedicatedNodes=2" in evaluated
    assert pool()["targetDedicatedNodes"] == 0
    az_batch("pool", "autoscale", "disable", "--pool-id", "p")
    assert pool()["enableAutoScale"] is False
