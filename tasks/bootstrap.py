"""Start-up set-up from the environment: the Batch accounts, the local pool, a way to sign in."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from tasks.models import Account, AccountMembership
from tasks.operations.accounts import ensure_account
from tasks.operations.pools import ensure_local_pool

# Where a first start keeps the administrator's password it made (as Jenkins keeps
# secrets/initialAdminPassword): readable by this user only.
PASSWORD_FILE = "initial-admin-password"
FIRST_ADMIN = "admin"


@dataclass(frozen=True)
class Started:
    account: Account  # the default account: the pool `local` and its nodes are its own
    accounts: list[Account]  # every configured account, the default first
    sign_in: str  # how to sign in to the dashboard, for serve's banner


def bootstrap(*, local_nodes: int, local_slots: int) -> Started:
    """The configured accounts, and the default one's pool `local` with `local_nodes`
    nodes of `local_slots` slots (the reconciler starts them)."""
    accounts = [ensure_account(a.name, a.key, a.secondary_key) for a in settings.BATCHSITE_ACCOUNTS]
    ensure_local_pool(accounts[0], nodes=local_nodes, slots=local_slots)
    return Started(account=accounts[0], accounts=accounts, sign_in=ensure_sign_in(accounts[0]))


def ensure_sign_in(account: Account) -> str:
    """Make sure someone can sign in to the dashboard, and say how.

    DJANGO_SUPERUSER_USERNAME/_PASSWORD: that superuser, created if missing. Otherwise, on
    a first start (no user at all), an administrator `admin` with a random password kept
    in PASSWORD_FILE (mode 0600) in the data dir; the password is said only this once,
    later starts point at the file. Each is made an operator of `account`."""
    User = get_user_model()
    username = os.environ.get("DJANGO_SUPERUSER_USERNAME")
    password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
    if username and password:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_superuser(
                username, os.environ.get("DJANGO_SUPERUSER_EMAIL", ""), password
            )
        _make_operator(account, user)
        return f"sign in as {username} with DJANGO_SUPERUSER_PASSWORD"
    path = Path(settings.DATA_DIR) / PASSWORD_FILE
    if not User.objects.exists():
        password = secrets.token_urlsafe(18)
        try:
            with transaction.atomic():
                user = User.objects.create_superuser(FIRST_ADMIN, "", password)
                _make_operator(account, user)
                _write_private(path, password)  # a failure here undoes the user
        except IntegrityError:
            pass  # another process made it first: its file is the one to read
        else:
            return f"sign in as {FIRST_ADMIN} with the password {password} (kept in {path})"
    if path.exists() and User.objects.filter(username=FIRST_ADMIN).exists():
        return f"sign in as {FIRST_ADMIN} with the password in {path}"
    return "sign in with a user of this site (`manage.py createsuperuser` makes one)"


def _make_operator(account: Account, user) -> None:
    AccountMembership.objects.get_or_create(
        account=account, user=user, defaults={"role": AccountMembership.Role.OPERATOR}
    )


def _write_private(path: Path, text: str) -> None:
    """Write `text` to a file only this user can read (an old one is replaced)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file kept its mode through O_CREAT
        f.write(text + "\n")
