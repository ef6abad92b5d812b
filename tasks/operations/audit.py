"""The audit trail: who did what to which tasks, when, and how it ended.

Every dashboard, admin and API action goes through `audited`, which runs the operation and
records the outcome — including a refusal, since "someone tried to terminate 500 tasks and
the job was completed" is worth knowing too. An API call is signed with the account's key
(Shared Key; Entra ID is not supported), so the key's account is who acted: `api:<account>`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tasks.errors import BatchError
from tasks.models import Account, AuditRecord

T = TypeVar("T")


def record_action(
    account: Account, *, user, actor: str, action: str, scope: dict, outcome: dict
) -> AuditRecord:
    """Write one audit record (one INSERT)."""
    return AuditRecord.objects.create(
        account=account,
        user=user if getattr(user, "pk", None) else None,
        actor=actor[:150],
        action=action[:32],
        scope=scope,
        outcome=outcome,
    )


def audited(
    account: Account, *, user, actor: str, action: str, scope: dict, operation: Callable[[], T]
) -> tuple[T | None, BatchError | None]:
    """Run `operation` and record it: (its result, None) or (None, the refusal it raised)."""
    try:
        result = operation()
    except BatchError as error:
        record_action(
            account,
            user=user,
            actor=actor,
            action=action,
            scope=scope,
            outcome={"refused": error.code, "message": error.message},
        )
        return None, error
    record_action(
        account, user=user, actor=actor, action=action, scope=scope, outcome={"succeeded": 1}
    )
    return result, None


def actor_name(user, *, via: str = "") -> str:
    """How a user appears in the trail: `alice` from the dashboard, `admin:alice` from the admin."""
    name = getattr(user, "username", "") or "anonymous"
    return f"{via}:{name}" if via else name


def api_actor(account: Account) -> str:
    """Who acted through the Batch API: the account whose key signed the request."""
    return f"api:{account.name}"


def audited_api(account: Account, *, action: str, scope: dict, operation: Callable[[], T]) -> T:
    """Run an API call's operation and record it as `api:<account>`; a refusal is recorded,
    then raised again for the API to answer with its Batch error."""
    result, error = audited(
        account,
        user=None,
        actor=api_actor(account),
        action=action,
        scope=scope,
        operation=operation,
    )
    if error is not None:
        raise error
    return result
