"""What a node agent's process imports: not the web tier's schema machinery, which would
cost every agent start (and so every node a pool allocates) about a third of its time."""

import os
import subprocess
import sys

from tests.agents import ROOT


def test_a_node_agent_process_does_not_import_the_openapi_schema():
    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'batchsite.settings'; import django; "
        "django.setup(); import tasks.management.commands.runnode; "
        "print(sorted(m for m in ('drf_spectacular.plumbing', 'tasks.api.schema', 'rest_framework.views', 'tasks.admin', "
        "'tasks.wire.serializers', 'rest_framework.serializers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_node_agent_starts_without_the_system_checks(tmp_path):
    # The checks (URLconf, admin, templates, security) are the web tier's; run at an agent's
    # start they would import the URLconf, and with it the whole API and the dashboard.
    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'batchsite.settings'\n"
        "from django.core.management import execute_from_command_line\n"
        "try:\n"
        "    execute_from_command_line(['manage.py', 'runnode', '--pool', 'p', '--account', 'nobody'])\n"
        "except BaseException:\n"
        "    pass\n"  # no database here: the agent fails at its first query, after the checks
        "print(sorted(m for m in ('batchsite.urls', 'tasks.api.urls', 'tasks.web.urls') if m in sys.modules))"
    )
    env = dict(os.environ, BATCHSITE_DATA_DIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_admin_modules_are_imported_by_the_urlconf_and_the_admin_checks():
    # Not at django.setup() (every agent would pay for them), but before the admin's checks
    # look at the registered ModelAdmins, and with the URLconf that serves them.
    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'batchsite.settings'; import django; "
        "django.setup(); from django.contrib import admin; from django.core.checks import run_checks; "
        "from tasks.models import Pool; print('tasks.admin' in sys.modules, admin.site.is_registered(Pool)); "
        "print(run_checks(tags=['admin']), admin.site.is_registered(Pool))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False", "[]", "True"]


def test_the_urlconf_serves_the_admin_with_its_modules():
    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'batchsite.settings'; import django; "
        "django.setup(); import batchsite.urls; from django.contrib import admin; from tasks.models import Task; "
        "print(admin.site.is_registered(Task))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"
