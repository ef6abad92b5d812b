"""Task authentication tokens: the write half (issuing one, and the environment a task gets
for it, which the agent sets); tasks.api.tokens checks them.

A token is `<attempt pk>.<secret>`: 32 random bytes (secrets.token_urlsafe) of which only
the SHA-256 is stored, on the attempt it was issued for. So the agents that issue tokens
and the web workers that check them share no key (a Slurm agent never gets the secret
key), a token is bound to one run of one task (and through it to its job and account), and
it dies with that run.
"""

from __future__ import annotations

import hashlib
import os
import secrets

from django.conf import settings

from tasks.models import Attempt, Task

SECRET_BYTES = 32
ACCESS_JOB = "job"


def token_digest(secret: str) -> str:
    """What is stored of a token's secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_task_token(attempt: Attempt) -> str:
    """Make the running attempt's authentication token and store its digest (replacing any
    earlier one of the attempt: an agent that restarts the run issues a new token). One
    UPDATE; the token itself is returned, for the task's environment only."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    Attempt.objects.filter(pk=attempt.pk, outcome=Attempt.Outcome.RUNNING).update(
        token_hash=token_digest(secret)
    )
    return f"{attempt.pk}.{secret}"


def wants_token(task: Task) -> bool:
    """authenticationTokenSettings.access holds `job`."""
    token_settings = task.spec.get("authenticationTokenSettings") or {}
    return ACCESS_JOB in (token_settings.get("access") or [])


def account_url() -> str:
    """The URL the web tier serves the API on, as a task must call it: BATCHSITE_ACCOUNT_URL
    (`manage.py serve` sets it to the address it serves), else the default of `serve`."""
    return settings.BATCHSITE_ACCOUNT_URL or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"


def task_environment(attempt: Attempt) -> dict[str, str]:
    """The variables a task's process gets for its token: none unless it asked for one.
    Issuing one costs an UPDATE of the attempt."""
    if not wants_token(attempt.task):
        return {}
    return {
        "AZ_BATCH_AUTHENTICATION_TOKEN": issue_task_token(attempt),
        "AZ_BATCH_ACCOUNT_URL": account_url(),
    }
