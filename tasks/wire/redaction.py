"""What a reply never shows of a pool's specification: its secrets (passwords, keys,
private keys, protected settings) are stored for the nodes and write-only, as a key vault's
are. The API's pool JSON, the dashboard's pool page and the admin all show a pool through
these. The dashboard shows less still (for_people): a viewer of an account may look, not
act, so no page gives them a secret or a SAS signature that would let them act elsewhere."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

# The keys of secrets inside a pool specification, at any depth: stored for the nodes, never returned.
SECRET_KEYS = frozenset({"password", "accountKey", "sasKey", "sshPrivateKey", "protectedSettings"})


def without_secrets(value):
    """The value with every secret property removed, at any depth."""
    return _redacted(value, urls=False)


# The keys whose values are storage URLs, which carry their SAS token in the query.
URL_KEYS = frozenset({"httpUrl", "storageContainerUrl", "containerUrl"})


def without_query(url: str) -> str:
    """A URL without its query (a SAS token: the signature is a secret) or fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(not a URL)"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def for_people(value):
    """A specification as a dashboard page shows it: without its secrets (without_secrets)
    and with every storage URL's SAS query taken off, at any depth (a task's
    commonResourceFiles, a start task's resourceFiles, a container registry's password)."""
    return _redacted(value, urls=True)


def _redacted(value, *, urls: bool):
    """The one walk of both: secret keys dropped; with `urls`, URL_KEYS' queries too."""
    if isinstance(value, dict):
        return {
            k: without_query(v)
            if urls and k in URL_KEYS and isinstance(v, str)
            else _redacted(v, urls=urls)
            for k, v in value.items()
            if k not in SECRET_KEYS
        }
    if isinstance(value, list):
        return [_redacted(v, urls=urls) for v in value]
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
