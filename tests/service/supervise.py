"""Run tasks.supervisor.Supervisor from a JSON description (argv[1]), for the tests:
{"programs": [[name, argv], ...], "options": {...}}. Logs go to stderr, INFO and up."""

import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tasks.supervisor import Program, Supervisor  # noqa: E402

if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    Supervisor(
        [Program(name, argv) for name, argv in spec["programs"]], **spec.get("options", {})
    ).run()
