"""What a node agent a provider starts needs from this process: the same database and data
directory (in tests, the test database), and a key naming this batchsite instance so a
provider lists only its own agents."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

INSTANCE_VARIABLE = "BATCHSITE_PROVIDER_INSTANCE"


def database_url() -> str:
    """The URL of the database this process really uses (the test database under pytest)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    host = s.get("HOST") or "localhost"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{s['NAME']}"


def instance_key() -> str:
    """A short key for this batchsite instance: its database and data directory. Two
    instances on one machine (or two test runs) never take each other's agents for theirs."""
    s = connection.settings_dict
    ident = "|".join(
        str(part)
        for part in (connection.vendor, s.get("HOST"), s.get("PORT"), s["NAME"], settings.DATA_DIR)
    )
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def agent_environment() -> dict[str, str]:
    """Variables a started agent must get on top of the deployment's own settings."""
    return {
        "DATABASE_URL": database_url(),
        "BATCHSITE_DATA_DIR": str(settings.DATA_DIR),
        INSTANCE_VARIABLE: instance_key(),
    }


def runnode_argv(
    *, account: str, pool_id: str, node_id: str, slots: int, is_dedicated: bool
) -> list[str]:
    """The agent's command line: this interpreter and this checkout's manage.py."""
    argv = [
        sys.executable,
        str(Path(settings.BASE_DIR) / "manage.py"),
        "runnode",
        "--account",
        account,
        "--pool",
        pool_id,
        "--node-id",
        node_id,
        "--slots",
        str(slots),
    ]
    if not is_dedicated:
        argv.append("--low-priority")
    return argv
