"""What a node agent's process imports: not the web tier's schema machinery, which would
cost every agent start (and so every node a pool allocates) about a third of its time."""

import os
import subprocess
import sys

from tests.agents import ROOT


def test_a_node_agent_process_does_not_import_the_openapi_schema():
    code = ("import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'batchsite.settings'; import django; "
            "django.setup(); import tasks.management.commands.runnode; "
            "print(sorted(m for m in ('drf_spectacular.plumbing', 'tasks.api.schema', 'rest_framework.views') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_node_agent_starts_without_the_system_checks(tmp_path):
    # The checks (URLconf, admin, templates, security) are the web tier's; run at an agent's
    # start they would import the URLconf, and with it the whole API and the dashboard.
    code = ("import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'batchsite.settings'\n"
            "from django.core.management import execute_from_command_line\n"
            "try:\n"
            "    execute_from_command_line(['manage.py', 'runnode', '--pool', 'p', '--account', 'nobody'])\n"
            "except BaseException:\n"
            "    pass\n"  # no database here: the agent fails at its first query, after the checks
            "print(sorted(m for m in ('batchsite.urls', 'tasks.api.urls', 'tasks.web.urls') if m in sys.modules))")
    env = dict(os.environ, BATCHSITE_DATA_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
