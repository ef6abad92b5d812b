"""Small readers for environment settings; each raises ImproperlyConfigured on a bad value."""

import base64
import binascii
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# The well-known development account, like Azurite's devstoreaccount1: documented in the
# README, used only when BATCHSITE_ACCOUNT_NAME/BATCHSITE_ACCOUNT_KEY are not set.
DEV_ACCOUNT_NAME = "devbatch"
DEV_ACCOUNT_KEY = "YmF0Y2hzaXRlLWRldmVsb3BtZW50LWtleS1ub3Qtc2VjcmV0LTAwMDAwMDAwMDA="
# Batch account names: 3 to 24 lowercase letters and digits (as Azure names them).
ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")


@dataclass(frozen=True)
class AccountKeys:
    """A Batch account from the environment: its name and its keys (base64)."""

    name: str
    key: str
    secondary_key: str = ""


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_base64(name: str, default: str) -> str:
    raw = os.environ.get(name) or default
    try:
        base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{name} must be base64") from None
    return raw


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if not value >= minimum:  # also refuses nan
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {raw}")
    return value


def env_json_object(name: str) -> dict:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a JSON object") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object")
    return value


def data_dir_secret(path: Path) -> str:
    """The secret stored at `path`, made (random, mode 0600) by whichever process comes
    first; processes starting together (web workers, agents) all read the same one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the creator may not have written it yet
            value = path.read_text().strip()
            if value:
                return value
            time.sleep(0.01)
        raise ImproperlyConfigured(f"{path} is empty: remove it or set DJANGO_SECRET_KEY") from None
    value = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


def account_name(variable: str, name: str) -> str:
    if not ACCOUNT_NAME.fullmatch(name):
        raise ImproperlyConfigured(
            f"{variable}: {name!r} is not a Batch account name (3-24 lowercase letters and digits)"
        )
    return name


def _account_key(variable: str, name: str, key: str) -> str:
    try:
        decoded = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        # Never the key itself in the message: it may be a real one, one character off.
        raise ImproperlyConfigured(f"{variable}: a key of account {name} is not base64")
    return key


def env_accounts(variable: str) -> list[AccountKeys]:
    """Accounts in Azurite's format: `name:key1[:key2];name2:key1` (a trailing `;` is
    fine). Names are Batch account names, each once; keys are base64."""
    raw = os.environ.get(variable, "")
    accounts: list[AccountKeys] = []
    for entry in raw.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        name, *keys = entry.split(":")
        account_name(variable, name)
        if not 1 <= len(keys) <= 2:
            raise ImproperlyConfigured(f"{variable}: account {name} needs `name:key1[:key2]`")
        if any(a.name == name for a in accounts):
            raise ImproperlyConfigured(f"{variable}: account {name} is listed twice")
        keys = [_account_key(variable, name, k) for k in keys]
        accounts.append(AccountKeys(name, keys[0], keys[1] if len(keys) > 1 else ""))
    return accounts
