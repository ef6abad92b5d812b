"""What every azure-batch 14.2.0 scenario script needs (they run in .venv-sdk14, from this
directory, so they import it by its name): a client of the test server, a wait, and the
error code of a refused call."""

import os
import time

from azure.batch import BatchServiceClient, batch_auth
from azure.batch import models as m


def client(name=None, key=None):
    """A client of the account in BATCH_ACCOUNT/BATCH_KEY (or `name`/`key`) at BATCH_URL."""
    c = BatchServiceClient(
        batch_auth.SharedKeyCredentials(
            name or os.environ["BATCH_ACCOUNT"], key or os.environ["BATCH_KEY"]
        ),
        batch_url=os.environ["BATCH_URL"],
    )
    c.config.retry_policy.retries = 0  # a server error must surface at once
    return c


def wait(predicate, what, timeout=40.0, interval=0.1):
    """predicate()'s first true value, or exit saying what did not happen in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def code_of(call):
    """The Batch error code the call is refused with, or None."""
    try:
        call()
    except m.BatchErrorException as e:
        return e.error.code
    return None


def status_of(call):
    """[HTTP status, Batch error code] of the call: [200, None] when it succeeds."""
    try:
        call()
    except m.BatchErrorException as e:
        return [e.response.status_code, e.error.code]
    return [200, None]
