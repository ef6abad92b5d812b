"""Task authentication tokens (authenticationTokenSettings.access ["job"]).

A task that asks for one gets AZ_BATCH_AUTHENTICATION_TOKEN and AZ_BATCH_ACCOUNT_URL, and
calls the Batch API with `Authorization: Bearer <token>`: what azure-batch 14.2.0's
msrest BasicTokenAuthentication({"access_token": token}) sends, and 15.x's
BearerTokenCredentialPolicy (or an AzureKeyCredentialPolicy with prefix "Bearer").

A token is Django's signing (HMAC-SHA256 under a key derived from SECRET_KEY and this
module's salt, compared in constant time) over the account, job, task and attempt it was
issued for, with its issue time. It is accepted only while that attempt runs (it is
revoked when the task ends, is requeued or retried), only within its lifetime (the task's
maxWallClockTime, else Batch's 180-day task lifetime), and only for the operations Batch's
access scope `job` grants: every operation on the job that contains the task (the job, its
tasks and their files). Anything else (another job, Add and List Jobs, pools, job
schedules, another account) is 403 AuthorizationFailure.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone

from tasks.errors import BatchError
from tasks.models import Account, Attempt, Task

SALT = "batchsite.tasks.api.tokens"
MAX_LIFETIME = timedelta(days=180)  # tasks.operations.tasks.MAX_LIFETIME: a task's longest life
ACCESS_JOB = "job"
_BEARER = re.compile(r"^Bearer ([A-Za-z0-9_\-:.]{1,2048})$")


def wants_token(task: Task) -> bool:
    """authenticationTokenSettings.access holds `job`."""
    settings_ = task.spec.get("authenticationTokenSettings") or {}
    return ACCESS_JOB in (settings_.get("access") or [])


def issue_token(attempt: Attempt) -> str:
    """A token for the attempt's task: its account, job, task and this attempt."""
    job = attempt.job
    payload = {"a": job.account_id, "j": job.pk, "t": attempt.task_id, "n": attempt.pk, "s": ACCESS_JOB}
    return signing.dumps(payload, salt=SALT, compress=False)


def account_url() -> str:
    """The URL the web tier serves the API on, as a task must call it: BATCHSITE_ACCOUNT_URL
    (`manage.py serve` sets it to the address it serves), else the default of `serve`."""
    return settings.BATCHSITE_ACCOUNT_URL or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"


def task_environment(attempt: Attempt) -> dict[str, str]:
    """The variables a task's process gets for its token: none unless it asked for one."""
    if not wants_token(attempt.task):
        return {}
    return {"AZ_BATCH_AUTHENTICATION_TOKEN": issue_token(attempt), "AZ_BATCH_ACCOUNT_URL": account_url()}


def is_bearer(header: str) -> bool:
    return header[:7].lower() == "bearer "


def _refused(detail: str) -> BatchError:
    return BatchError.authentication_failed(detail)


def _not_authorized() -> BatchError:
    return BatchError("AuthorizationFailure", "This request is not authorized to perform this operation.", 403)


def authenticate_token(header: str, *, job_id: str | None) -> Account:
    """Return the account of a valid task token whose job is `job_id` (the request's job,
    None for a request outside any job), or raise: 403 AuthenticationFailed for a token
    that is malformed, tampered with, expired or revoked (its task no longer runs that
    attempt); 403 AuthorizationFailure for a request outside the token's job."""
    m = _BEARER.match(header.strip())
    if not m:
        raise _refused("The authentication token is not valid.")
    token = m.group(1)
    try:
        payload = signing.loads(token, salt=SALT, max_age=MAX_LIFETIME)
    except signing.SignatureExpired:
        raise _refused("The authentication token has expired.") from None
    except signing.BadSignature:
        raise _refused("The authentication token is not valid.") from None
    try:
        account_pk, job_pk, task_pk, attempt_pk = (int(payload[k]) for k in ("a", "j", "t", "n"))
    except (KeyError, TypeError, ValueError):
        raise _refused("The authentication token is not valid.") from None
    running = (Attempt.objects.filter(pk=attempt_pk, task_id=task_pk, job_id=job_pk, job__account_id=account_pk,
                                      outcome=Attempt.Outcome.RUNNING, cancel_requested="")
               .values_list("job__job_id", "task__max_wall_clock_time", "start_time").first())
    if running is None:
        raise _refused("The authentication token has expired: its task is no longer running.")
    own_job, wall_clock, started = running
    if wall_clock is not None and started is not None and timezone.now() > started + wall_clock:
        raise _refused("The authentication token has expired.")
    if job_id is None or job_id.lower() != own_job.lower():
        raise _not_authorized()
    return Account.objects.get(pk=account_pk)
