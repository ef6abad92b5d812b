"""Account keys in the admin: never shown (a fingerprint tells them apart), regenerated as
Batch does — primary or secondary, after a confirmation, through the rules layer, audited —
and the new key shown once."""

import base64
import re

import pytest
from django.urls import reverse

from tasks.admin import mask_key
from tasks.models import Account, AuditRecord
from tests.conftest import BatchTestClient
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def regenerate(client, account, key_name: str, *, confirm: bool):
    data = {"action": f"regenerate_{key_name}_key", "_selected_action": [account.pk]}
    if confirm:
        data["confirm"] = "yes"
    return client.post(reverse("admin:tasks_account_changelist"), data)


def test_no_page_of_the_admin_shows_a_key(admin_client_):
    account = AccountFactory()
    pages = [
        reverse("admin:tasks_account_change", args=[account.pk]),
        reverse("admin:tasks_account_changelist"),
        reverse("admin:tasks_account_history", args=[account.pk]),
    ]
    for url in pages:
        body = admin_client_.get(url).content.decode()
        assert account.primary_key not in body and account.secondary_key not in body, url
    body = admin_client_.get(pages[0]).content.decode()
    assert mask_key(account.primary_key) in body and mask_key(account.secondary_key) in body
    assert mask_key(account.primary_key) != mask_key(account.secondary_key)


def test_the_change_form_offers_both_regenerations(admin_client_):
    account = AccountFactory()
    body = admin_client_.get(
        reverse("admin:tasks_account_change", args=[account.pk])
    ).content.decode()
    assert 'value="regenerate_primary_key"' in body and 'value="regenerate_secondary_key"' in body
    assert 'name="primary_key"' not in body and 'name="secondary_key"' not in body


def test_regenerating_asks_first_and_changes_nothing_until_confirmed(admin_client_):
    account = AccountFactory()
    r = regenerate(admin_client_, account, "primary", confirm=False)
    body = r.content.decode()
    assert (
        r.status_code == 200
        and "Yes, regenerate the primary key" in body
        and 'name="confirm" value="yes"' in body
    )
    assert (
        Account.objects.get(pk=account.pk).primary_key == account.primary_key
        and not AuditRecord.objects.exists()
    )


@pytest.mark.parametrize(
    "key_name, field, other",
    [("primary", "primary_key", "secondary_key"), ("secondary", "secondary_key", "primary_key")],
)
def test_a_regenerated_key_signs_and_the_old_one_no_longer_does(
    admin_client_, key_name, field, other
):
    account = AccountFactory()
    old = getattr(account, field)
    r = regenerate(admin_client_, account, key_name, confirm=True)
    body = r.content.decode()
    account.refresh_from_db()
    new = getattr(account, field)
    assert new != old and len(base64.b64decode(new, validate=True)) == 64
    assert (
        re.search(r'<code class="new-key">([^<]+)</code>', body).group(1) == new
    )  # shown once, here
    assert "not shown again" in body and "no-store" in r["Cache-Control"]
    assert BatchTestClient(account, key=new).get("/jobs").status_code == 200
    assert BatchTestClient(account, key=getattr(account, other)).get("/jobs").status_code == 200
    assert BatchTestClient(account, key=old).get("/jobs").status_code == 403


def test_a_regeneration_is_audited_without_the_key(admin_client_):
    account = AccountFactory()
    regenerate(admin_client_, account, "secondary", confirm=True)
    record = AuditRecord.objects.get()
    account.refresh_from_db()
    assert (record.actor, record.action, record.scope, record.outcome) == (
        "admin:root",
        "regenerate-key",
        {"key": "secondary"},
        {"succeeded": 1},
    )
    assert account.secondary_key not in str(record.scope) + str(record.outcome)


def test_the_other_accounts_keys_stay(admin_client_):
    account, other = AccountFactory(), AccountFactory()
    regenerate(admin_client_, account, "primary", confirm=True)
    assert Account.objects.get(pk=other.pk).primary_key == other.primary_key
