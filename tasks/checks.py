"""System checks of batchsite's own deployment settings (`manage.py check --deploy`)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

from batchsite.env import DEV_ACCOUNT_KEY


@register(Tags.security, deploy=True)
def check_no_public_account_key(app_configs, **kwargs) -> list[Warning]:
    """The development account's key is in the README: anyone can sign requests with it."""
    public = [
        a.name for a in settings.BATCHSITE_ACCOUNTS if DEV_ACCOUNT_KEY in (a.key, a.secondary_key)
    ]
    if not public:
        return []
    return [
        Warning(
            f"The Batch account {', '.join(public)} uses the development key, which is public.",
            hint="Set BATCHSITE_ACCOUNT_NAME and BATCHSITE_ACCOUNT_KEY, or BATCHSITE_ACCOUNTS, to accounts of "
            "your own (a key: `openssl rand -base64 64 | tr -d '\\n'`).",
            id="batchsite.W001",
        )
    ]
