"""Start-up set-up from the environment: the Batch account, the superuser, the local pool."""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.auth import get_user_model

from tasks.models import Account, AccountMembership
from tasks.operations.accounts import ensure_account
from tasks.operations.pools import ensure_pool


def bootstrap(*, local_slots: int) -> Account:
    account = ensure_account(settings.BATCHSITE_ACCOUNT_NAME, settings.BATCHSITE_ACCOUNT_KEY,
                             os.environ.get("BATCHSITE_ACCOUNT_SECONDARY_KEY", ""))
    ensure_pool(account, "local", slots_per_node=local_slots)
    username = os.environ.get("DJANGO_SUPERUSER_USERNAME")
    password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
    if username and password:
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_superuser(username, os.environ.get("DJANGO_SUPERUSER_EMAIL", ""), password)
        AccountMembership.objects.get_or_create(
            account=account, user=user, defaults={"role": AccountMembership.Role.OPERATOR}
        )
    return account
