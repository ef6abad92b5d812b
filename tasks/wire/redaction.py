"""What a reply never shows of a pool's specification: its secrets (passwords, keys,
private keys, protected settings) are stored for the nodes and write-only, as a key vault's
are. The API's pool JSON, the dashboard's pool page and the admin all show a pool through
these."""

from __future__ import annotations

# The keys of secrets inside a pool specification, at any depth: stored for the nodes, never returned.
SECRET_KEYS = frozenset({"password", "accountKey", "sasKey", "sshPrivateKey", "protectedSettings"})


def without_secrets(value):
    """The value with every secret property removed, at any depth."""
    if isinstance(value, dict):
        return {k: without_secrets(v) for k, v in value.items() if k not in SECRET_KEYS}
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    return value


def start_task_json(start_task: dict | None) -> dict | None:
    """A start task with the defaults Batch reports: it runs as the pool's non-admin
    auto-user of the task scope, without retries, and the node waits for it."""
    if not start_task:
        return None
    return without_secrets(
        {
            "userIdentity": {"autoUser": {"scope": "task", "elevationLevel": "nonadmin"}},
            "maxTaskRetryCount": 0,
            "waitForSuccess": True,
            **start_task,
        }
    )
