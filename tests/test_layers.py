"""The layers of ARCHITECTURE.md hold: import-linter checks pyproject.toml's contracts over
the code as it is (every import, function-level ones too). `make lint` runs the same check."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = [
    c["id"]
    for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_contracts_cover_the_layers_the_cycles_and_web_apart_from_the_api():
    assert CONTRACTS == ["layers", "web-not-api", "no-cycles"]


@pytest.mark.parametrize("contract", CONTRACTS)
def test_the_code_keeps_the_contract(contract):
    out = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--contract", contract],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout[out.stdout.find("Broken contracts") :] or out.stderr
