"""The README's SDK snippets, as a newcomer runs them: against a live `serve`, each twice
in a row, with the SDK it is written for; they show finished tasks every time."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.service.live import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.sdk, pytest.mark.sdk14]

SDK_PYTHON = {
    "BatchClient(": sys.executable,
    "BatchServiceClient(": str(ROOT / ".venv-sdk14" / "bin" / "python"),
}


def readme_snippets() -> dict[str, str]:
    """The README's Python blocks that make an SDK client, by the client they make."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    found = {}
    for block in blocks:
        for client in SDK_PYTHON:
            if client in block:
                found[client] = block
    return found


def test_the_readme_has_a_snippet_for_each_sdk():
    assert sorted(readme_snippets()) == sorted(SDK_PYTHON)


@pytest.mark.parametrize("client", sorted(SDK_PYTHON))
def test_a_readme_snippet_shows_finished_tasks_and_runs_again(fresh, client):
    python = SDK_PYTHON[client]
    if not (ROOT / python).exists():
        pytest.fail(f"{python} is missing: run `make sdk14` (make test does)")
    serve = fresh(nodes=1, slots=4)
    serve.wait_ready()
    code = readme_snippets()[client].replace(
        "http://127.0.0.1:8000", f"http://127.0.0.1:{serve.port}"
    )
    jobs = []
    for _ in range(2):
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0].startswith("job ")
        jobs.append(lines[0])
        assert lines[1:] == [f"  t{i} exit code 0 stdout: hello from task {i}" for i in range(10)]
    assert jobs[0] != jobs[1]
