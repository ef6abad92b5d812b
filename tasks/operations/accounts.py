"""Account set-up: the configured Batch account is created or updated at start."""

from __future__ import annotations

from tasks.models import Account


def ensure_account(name: str, key: str, secondary_key: str = "") -> Account:
    """Create the account or update its keys to the configured ones."""
    account, created = Account.objects.get_or_create(
        name=name, defaults={"primary_key": key, "secondary_key": secondary_key}
    )
    if not created and (account.primary_key != key or account.secondary_key != secondary_key):
        account.primary_key = key
        account.secondary_key = secondary_key
        account.save(update_fields=["primary_key", "secondary_key"])
    return account
