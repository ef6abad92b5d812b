"""Small readers for environment settings; each raises ImproperlyConfigured on a bad value."""

import base64
import binascii
import json
import os
import secrets
import time
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# The well-known development account, like Azurite's devstoreaccount1: documented in the
# README, used only when BATCHSITE_ACCOUNT_NAME/BATCHSITE_ACCOUNT_KEY are not set.
DEV_ACCOUNT_NAME = "devbatch"
DEV_ACCOUNT_KEY = "YmF0Y2hzaXRlLWRldmVsb3BtZW50LWtleS1ub3Qtc2VjcmV0LTAwMDAwMDAwMDA="


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
