"""Task authentication tokens: the write half (issuing one); tasks.api.tokens checks them.

A token is `<attempt pk>.<secret>`: 32 random bytes (secrets.token_urlsafe) of which only
the SHA-256 is stored, on the attempt it was issued for. So the agents that issue tokens
and the web workers that check them share no key (a Slurm agent never gets the secret
key), a token is bound to one run of one task (and through it to its job and account), and
it dies with that run.
"""

from __future__ import annotations

import hashlib
import secrets

from tasks.models import Attempt

SECRET_BYTES = 32


def token_digest(secret: str) -> str:
    """What is stored of a token's secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_task_token(attempt: Attempt) -> str:
    """Make the running attempt's authentication token and store its digest (replacing any
    earlier one of the attempt: an agent that restarts the run issues a new token). One
    UPDATE; the token itself is returned, for the task's environment only."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    Attempt.objects.filter(pk=attempt.pk, outcome=Attempt.Outcome.RUNNING).update(token_hash=token_digest(secret))
    return f"{attempt.pk}.{secret}"
