"""The README's Azure CLI block, as a newcomer runs it: the real `az` (azure-cli 2.91)
against a live `serve`, each line as written but the port. It needs the CLI: `az` on PATH
or BATCHSITE_AZ naming it (CI does not install it: skipped there, with the reason)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.service.live import ROOT

pytestmark = [pytest.mark.slow]


def readme_cli_block() -> str:
    blocks = [b for b in re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
              if "az batch" in b]
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
    env.update(PATH=f"{Path(az).parent}{os.pathsep}{env.get('PATH', '')}", AZURE_CONFIG_DIR=str(tmp_path / "az"),
               AZURE_CORE_COLLECT_TELEMETRY="no")
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "stdout.txt").read_text() == "hello from the cli\n"
    nodes = [line.split("\t") for line in proc.stdout.splitlines() if line.startswith("tvmps_")]
    assert len(nodes) == 2 and {state for _, state in nodes} <= {"idle", "running"}, proc.stdout
    # Its last line deleted what it made: the job and the pool are gone or going.
    status, body = serve.api.call("GET", "/pools/clipool")
    assert status == 404 or body["state"] == "deleting"
    status, body = serve.api.call("GET", "/jobs/clijob")
    assert status == 404 or body["state"] == "deleting"
