"""Account set-up: the configured Batch account is created or updated at start; its keys
are regenerated on request (the admin)."""

from __future__ import annotations

import base64
import hashlib
import secrets

from django.db import transaction

from tasks.errors import BatchError
from tasks.models import Account


def ensure_account(name: str, key: str, secondary_key: str = "") -> Account:
    """Create the account with the configured keys, or give it the configured keys when the
    configuration changed since they were last applied. A start with the same configuration
    keeps the keys as they are: a key regenerated since (as Batch's Regenerate Keys does)
    stays regenerated, and the replaced key stays refused, across restarts."""
    digest = _keys_digest(key, secondary_key)
    with transaction.atomic():
        account, created = Account.objects.select_for_update().get_or_create(
            name=name,
            defaults={
                "primary_key": key,
                "secondary_key": secondary_key,
                "configured_keys": digest,
            },
        )
        if not created and account.configured_keys != digest:
            account.primary_key, account.secondary_key, account.configured_keys = (
                key,
                secondary_key,
                digest,
            )
            account.save(update_fields=["primary_key", "secondary_key", "configured_keys"])
    return account


def _keys_digest(key: str, secondary_key: str) -> str:
    return hashlib.sha256(f"{key}\n{secondary_key}".encode()).hexdigest()


# --- key regeneration ----------------------------------------------------------------------

KEY_FIELDS = {"primary": "primary_key", "secondary": "secondary_key"}
KEY_BYTES = 64  # Batch account keys are 512 random bits, base64 (88 characters)


def can_regenerate_account_key(*, key_name: str) -> BatchError | None:
    """Batch regenerates the Primary or the Secondary key (400 InvalidPropertyValue else)."""
    if (key_name or "").lower() not in KEY_FIELDS:
        return BatchError.invalid_property(
            "keyName", key_name, "The key name is Primary or Secondary."
        )
    return None


def regenerate_account_key(account: Account, *, key_name: str) -> str:
    """Replace one of the account's two keys with a new random key and return it.

    As Batch's Regenerate Keys does (keyName Primary or Secondary): requests signed with
    the replaced key are refused from then on, while the other key keeps working, so a
    client moves to the other key first and nothing stops. Refuses another key name (400
    InvalidPropertyValue) and an account that no longer exists (404 ResourceNotFound)."""
    error = can_regenerate_account_key(key_name=key_name)
    if error:
        raise error
    field = KEY_FIELDS[key_name.lower()]
    key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    with transaction.atomic():
        locked = Account.objects.select_for_update().filter(pk=account.pk).first()
        if locked is None:
            raise BatchError.resource_not_found()
        setattr(locked, field, key)
        locked.save(update_fields=[field])
    return key
