"""What a node agent's process imports: not the web tier's schema machinery, which would
cost every agent start (and so every node a pool allocates) about a third of its time."""

import subprocess
import sys

from tests.agents import ROOT


def test_a_node_agent_process_does_not_import_the_openapi_schema():
    code = ("import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'batchsite.settings'; import django; "
            "django.setup(); import tasks.management.commands.runnode; "
            "print(sorted(m for m in ('drf_spectacular.plumbing', 'tasks.api.schema', 'rest_framework.views') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
