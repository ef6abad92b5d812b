"""One-command start: the API, the dashboard, the local compute nodes and the sweeps."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import get_commands
from django.core.management.base import BaseCommand

from tasks.bootstrap import bootstrap


class Command(BaseCommand):
    help = "Serve batchsite on 127.0.0.1:PORT with gunicorn, local node agents and sweeps."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("BATCHSITE_WEB_WORKERS", "2")))
        parser.add_argument("--nodes", type=int, default=settings.BATCHSITE_LOCAL_NODES)
        parser.add_argument("--slots", type=int, default=settings.BATCHSITE_LOCAL_SLOTS or os.cpu_count() or 1)

    def handle(self, *args, host, port, workers, nodes, slots, **options):
        account = bootstrap(local_slots=slots)
        self.stdout.write(
            f"batchsite on http://{host}:{port}\n"
            f"  Batch account: {account.name}\n  Batch key:     {account.primary_key}\n"
            f"  OpenAPI schema: http://{host}:{port}/openapi.json\n"
            f"  dashboard: http://{host}:{port}/web/   admin: http://{host}:{port}/admin/\n"
        )
        manage = [sys.executable, os.path.join(settings.BASE_DIR, "manage.py")]
        children = [subprocess.Popen([
            sys.executable, "-m", "gunicorn", "batchsite.wsgi", "--bind", f"{host}:{port}",
            "--workers", str(workers), "--threads", "4", "--access-logfile", "-",
            "--graceful-timeout", "5",
        ])]
        if "runnode" in get_commands():
            for i in range(nodes):
                children.append(subprocess.Popen(manage + [
                    "runnode", "--pool", "local", "--slots", str(slots), "--node-id", f"local-{i + 1}",
                ]))
        children.append(subprocess.Popen(manage + ["sweep", "--interval", "30"]))

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(c.poll() is None for c in children):
                time.sleep(0.5)
        finally:
            # SIGTERM lets each agent kill its running tasks and report them before exiting.
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
