"""tasks.bootstrap: the configured accounts, the pool `local` of the default one, and a
way to sign in to the dashboard on a first start."""

from __future__ import annotations

import stat

import pytest
from django.contrib.auth import authenticate, get_user_model

from batchsite.env import AccountKeys
from tasks.bootstrap import PASSWORD_FILE, bootstrap, ensure_sign_in
from tasks.models import Account, AccountMembership, Pool
from tasks.operations.accounts import regenerate_account_key
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

KEY_A = "a2V5LW9mLWFjY291bnQtYQ=="
KEY_B = "a2V5LW9mLWFjY291bnQtYg=="


@pytest.fixture
def data_dir(settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path
    for name in (
        "DJANGO_SUPERUSER_USERNAME",
        "DJANGO_SUPERUSER_PASSWORD",
        "DJANGO_SUPERUSER_EMAIL",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_every_configured_account_is_made_and_only_the_default_gets_the_local_pool(
    settings, data_dir
):
    settings.BATCHSITE_ACCOUNTS = [AccountKeys("main", KEY_A), AccountKeys("teamb", KEY_B, KEY_A)]
    started = bootstrap(local_nodes=2, local_slots=3)
    assert [a.name for a in started.accounts] == [
        "main",
        "teamb",
    ] and started.account.name == "main"
    assert list(
        Pool.objects.values_list(
            "account__name", "pool_id", "task_slots_per_node", "target_dedicated_nodes", "provider"
        )
    ) == [("main", "local", 3, 2, "local")]
    teamb = Account.objects.get(name="teamb")
    assert (teamb.primary_key, teamb.secondary_key) == (KEY_B, KEY_A)


def test_a_restart_with_new_keys_updates_the_accounts_and_keeps_their_pools(settings, data_dir):
    settings.BATCHSITE_ACCOUNTS = [AccountKeys("main", KEY_A)]
    first = bootstrap(local_nodes=1, local_slots=1).account
    settings.BATCHSITE_ACCOUNTS = [AccountKeys("main", KEY_B)]
    again = bootstrap(local_nodes=1, local_slots=1).account
    assert again.pk == first.pk and Account.objects.get(pk=first.pk).primary_key == KEY_B
    assert Pool.objects.filter(account=again).count() == 1


def test_a_key_regenerated_since_the_last_start_stays_regenerated_until_the_configuration_changes(
    settings, data_dir
):
    settings.BATCHSITE_ACCOUNTS = [AccountKeys("main", KEY_A, KEY_B)]
    account = bootstrap(local_nodes=0, local_slots=1).account
    regenerated = regenerate_account_key(account, key_name="Primary")
    bootstrap(local_nodes=0, local_slots=1)  # a restart with the same configuration
    assert (
        Account.objects.get(pk=account.pk).primary_key,
        Account.objects.get(pk=account.pk).secondary_key,
    ) == (regenerated, KEY_B)
    settings.BATCHSITE_ACCOUNTS = [
        AccountKeys("main", KEY_B, KEY_A)
    ]  # the operator configures new keys
    bootstrap(local_nodes=0, local_slots=1)
    account.refresh_from_db()
    assert (account.primary_key, account.secondary_key) == (KEY_B, KEY_A)


def test_a_first_start_makes_an_administrator_with_a_private_random_password(data_dir):
    account = AccountFactory()
    said = ensure_sign_in(account)
    path = data_dir / PASSWORD_FILE
    password = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert said == f"sign in as admin with the password {password} (kept in {path})"
    user = authenticate(username="admin", password=password)
    assert user is not None and user.is_superuser and user.is_staff
    assert AccountMembership.objects.get(account=account, user=user).role == "operator"


def test_later_starts_point_at_the_file_and_never_say_the_password_again(data_dir):
    account = AccountFactory()
    ensure_sign_in(account)
    password = (data_dir / PASSWORD_FILE).read_text().strip()
    said = ensure_sign_in(account)
    assert said == f"sign in as admin with the password in {data_dir / PASSWORD_FILE}"
    assert password not in said
    assert get_user_model().objects.count() == 1


def test_two_first_starts_make_two_different_passwords(data_dir):
    ensure_sign_in(AccountFactory())
    first = (data_dir / PASSWORD_FILE).read_text()
    get_user_model().objects.all().delete()
    ensure_sign_in(AccountFactory())
    assert (data_dir / PASSWORD_FILE).read_text() != first


def test_a_site_that_has_users_gets_no_new_administrator(data_dir):
    get_user_model().objects.create_user("alice", password="x" * 12)
    said = ensure_sign_in(AccountFactory())
    assert said == "sign in with a user of this site (`manage.py createsuperuser` makes one)"
    assert not (data_dir / PASSWORD_FILE).exists()
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["alice"]


def test_a_configured_superuser_is_made_instead_and_its_password_is_not_said(data_dir, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "configured-secret")
    account = AccountFactory()
    said = ensure_sign_in(account)
    assert said == "sign in as ops with DJANGO_SUPERUSER_PASSWORD"
    assert authenticate(username="ops", password="configured-secret").is_superuser
    assert AccountMembership.objects.filter(
        account=account, user__username="ops", role="operator"
    ).exists()
    assert not (data_dir / PASSWORD_FILE).exists()
