"""One-command start: the API, the dashboard, the reconciler (which starts the compute nodes
of every pool, the pool `local`'s among them) and the sweeps, each a supervised child
(tasks.supervisor) restarted when it dies."""

from __future__ import annotations

import os
import socket
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from tasks.bootstrap import bootstrap
from tasks.supervisor import Program, Supervisor

# AF_UNIX socket paths are at most 107 bytes on Linux.
_MAX_SOCKET_PATH = 100


class Command(BaseCommand):
    help = (
        "Serve batchsite on 127.0.0.1:PORT: gunicorn, the pool reconciler (node agents) and sweeps."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--workers", type=int, default=int(os.environ.get("BATCHSITE_WEB_WORKERS", "2"))
        )
        parser.add_argument("--nodes", type=int, default=settings.BATCHSITE_LOCAL_NODES)
        parser.add_argument(
            "--slots", type=int, default=settings.BATCHSITE_LOCAL_SLOTS or os.cpu_count() or 1
        )
        parser.add_argument(
            "--sweep-interval", type=float, default=30.0, help="seconds between sweeps"
        )

    def handle(self, *args, host, port, workers, nodes, slots, sweep_interval, **options):
        try:
            self._serve(
                host=host,
                port=port,
                workers=workers,
                nodes=nodes,
                slots=slots,
                sweep_interval=sweep_interval,
            )
        except KeyboardInterrupt:  # Ctrl-C before the supervisor took over the signals
            pass

    def _serve(self, *, host, port, workers, nodes, slots, sweep_interval):
        _refuse_busy_port(host, port)
        started = bootstrap(local_nodes=nodes, local_slots=slots)
        connections.close_all()  # the supervisor itself never uses the database
        url = f"http://{host}:{port}"
        os.environ.setdefault(
            "BATCHSITE_ACCOUNT_URL", url
        )  # the agents' tasks call it with their tokens
        others = "".join(f"  other Batch account: {a.name}\n" for a in started.accounts[1:])
        self.stdout.write(
            f"batchsite on {url}\n"
            f"  Batch account: {started.account.name}\n  Batch key:     {started.account.primary_key}\n"
            f"{others}"
            f"  OpenAPI schema: {url}/openapi.json\n"
            f"  dashboard: {url}/web/   admin: {url}/admin/\n"
            f"  {started.sign_in}\n"
        )
        self.stdout.flush()
        manage = [sys.executable, os.path.join(settings.BASE_DIR, "manage.py")]
        programs = [
            Program("web", _gunicorn(host, port, workers)),
            # The agents are the reconciler's children, in sessions of their own: a restarted
            # reconciler adopts them, and it stops them gracefully when serve stops.
            Program("reconciler", manage + ["reconcile"]),
            Program("sweep", manage + ["sweep", "--interval", str(sweep_interval)]),
        ]
        Supervisor(programs).run()


def _gunicorn(host: str, port: int, workers: int) -> list[str]:
    # gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl),
    # which a second instance takes over (and removes when it stops): one per data dir.
    control = os.path.join(settings.DATA_DIR, "gunicorn.ctl")
    socket_args = (
        ["--control-socket", control]
        if len(control.encode()) <= _MAX_SOCKET_PATH
        else ["--no-control-socket"]
    )
    # The config selects batchsite's worker: it closes a connection the API asks to close
    # and answers over-long request lines and headers with a Batch error body.
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:batchsite.gunicorn_conf",
        "batchsite.wsgi",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--threads",
        "4",
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "5",
        *socket_args,
    ]


def _refuse_busy_port(host: str, port: int) -> None:
    """Fail now, with the reason, rather than have the supervisor restart a web server that
    can never bind."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as e:
        raise CommandError(
            f"cannot serve on {host}:{port}: {e.strerror or e} "
            f"(is another batchsite running? PORT=9000 make run serves on another port)"
        ) from None
