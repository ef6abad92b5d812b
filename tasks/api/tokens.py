"""Task authentication tokens (authenticationTokenSettings.access ["job"]): the check of a
request that carries one (the task's environment is tasks.operations.task_tokens').

A task that asks for one gets AZ_BATCH_AUTHENTICATION_TOKEN and AZ_BATCH_ACCOUNT_URL, and
calls the Batch API with `Authorization: Bearer <token>`: what azure-batch 14.2.0's
msrest BasicTokenAuthentication({"access_token": token}) sends, and 15.x's
BearerTokenCredentialPolicy (or an AzureKeyCredentialPolicy with prefix "Bearer").

The token (tasks.operations.task_tokens) names the attempt it was issued for and carries a
random secret whose SHA-256 that attempt stores; the digests are compared in constant time
(hmac.compare_digest), and a request naming no attempt is compared against a dummy digest
so that it costs the same. A token is accepted only while that attempt runs (it is revoked
when the task ends, is requeued or retried), within the task's maxWallClockTime and Batch's
180-day task lifetime from the run's start, and only for the operations Batch's access
scope `job` grants: every operation on the job that contains the task (the job, its tasks
and their files). Anything else (another job, Add and List Jobs, pools, job schedules,
another account) is 403 AuthorizationFailure.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import timedelta

from django.utils import timezone

from tasks.errors import BatchError
from tasks.models import Account, Attempt
from tasks.operations.task_tokens import token_digest

MAX_LIFETIME = timedelta(days=180)  # tasks.operations.tasks.MAX_LIFETIME: a task's longest life
_BEARER = re.compile(r"^Bearer ([1-9][0-9]{0,18})\.([A-Za-z0-9_-]{43})$")
_DUMMY = token_digest(secrets.token_urlsafe(32))  # compared when the token names no attempt


def is_bearer(header: str) -> bool:
    return header[:7].lower() == "bearer "


def _refused(detail: str) -> BatchError:
    return BatchError.authentication_failed(detail)


def not_authorized() -> BatchError:
    """403 AuthorizationFailure: a valid token, used outside what it grants."""
    return BatchError(
        "AuthorizationFailure", "This request is not authorized to perform this operation.", 403
    )


def authenticate_token(header: str, *, job_id: str | None) -> Account:
    """Return the account of a valid task token whose job is `job_id` (the request's job;
    None for a request outside any job), or raise: 400 InvalidAuthenticationInfo for a
    header no token has the shape of; 403 AuthenticationFailed for a token that is made
    up, tampered with, expired or revoked (its run of the task is
    over); 403 AuthorizationFailure for a request outside the token's job. Two queries."""
    m = _BEARER.match(header.strip())
    if not m:  # not the shape of any token, as a Shared Key header can be malformed
        raise BatchError.invalid_authentication_info(
            "The Authorization header must be 'Bearer <token>' with a task's authentication token."
        )
    attempt_pk, secret = int(m.group(1)), m.group(2)
    row = (
        Attempt.objects.filter(pk=attempt_pk)
        .values_list(
            "token_hash",
            "outcome",
            "cancel_requested",
            "start_time",
            "job__job_id",
            "job__account_id",
            "task__max_wall_clock_time",
        )
        .first()
    )
    stored = row[0] if row is not None and row[0] else _DUMMY
    if not hmac.compare_digest(stored, token_digest(secret)) or stored is _DUMMY:
        raise _refused("The authentication token is not valid.")
    _, outcome, cancel, started, own_job, account_pk, wall_clock = row
    if outcome != Attempt.Outcome.RUNNING or cancel:
        raise _refused("The authentication token has expired: its task is no longer running.")
    t = timezone.now()
    if started is not None and (
        t > started + MAX_LIFETIME or (wall_clock is not None and t > started + wall_clock)
    ):
        raise _refused("The authentication token has expired.")
    if job_id is None or job_id.lower() != own_job.lower():
        raise not_authorized()
    return Account.objects.get(pk=account_pk)
