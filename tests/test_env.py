"""Settings readers: secrets come from the environment or the data dir, never the code."""

import stat

import pytest
from django.core.exceptions import ImproperlyConfigured

from batchsite.env import AccountKeys, data_dir_secret, env_accounts, env_bool, env_int


def test_a_data_dir_secret_is_random_private_and_stable(tmp_path):
    path = tmp_path / ".secret_key"
    first = data_dir_secret(path)
    assert len(first) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert data_dir_secret(path) == first
    assert data_dir_secret(tmp_path / "other") != first


def test_an_empty_secret_file_is_refused_not_used(tmp_path):
    path = tmp_path / ".secret_key"
    path.write_text("")
    with pytest.raises(ImproperlyConfigured):
        data_dir_secret(path)


def test_bad_numbers_and_booleans_are_improperly_configured(monkeypatch):
    monkeypatch.setenv("X_INT", "many")
    monkeypatch.setenv("X_BOOL", "perhaps")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_INT", 1)
    with pytest.raises(ImproperlyConfigured):
        env_bool("X_BOOL")


KEY_A = "a2V5LW9mLWFjY291bnQtYQ=="
KEY_B = "a2V5LW9mLWFjY291bnQtYg=="


def test_accounts_are_read_in_azurites_format(monkeypatch):
    monkeypatch.setenv("X_ACCOUNTS", f"teama:{KEY_A}:{KEY_B}; teamb:{KEY_B};")
    assert env_accounts("X_ACCOUNTS") == [
        AccountKeys("teama", KEY_A, KEY_B),
        AccountKeys("teamb", KEY_B, ""),
    ]


def test_no_accounts_listed_is_an_empty_list(monkeypatch):
    monkeypatch.setenv("X_ACCOUNTS", " ")
    assert env_accounts("X_ACCOUNTS") == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f"TeamA:{KEY_A}", "not a Batch account name"),
        (f"ab:{KEY_A}", "not a Batch account name"),
        (f"team-a:{KEY_A}", "not a Batch account name"),
        (f"{'a' * 25}:{KEY_A}", "not a Batch account name"),
        ("teama", "needs `name:key1"),
        (f"teama:{KEY_A}:{KEY_B}:{KEY_A}", "needs `name:key1"),
        ("teama:", "not base64"),
        ("teama:not*base64", "not base64"),
        (f"teama:{KEY_A}:", "not base64"),
        (f"teama:{KEY_A};teama:{KEY_B}", "listed twice"),
    ],
)
def test_bad_accounts_are_improperly_configured_without_echoing_a_key(monkeypatch, value, message):
    monkeypatch.setenv("X_ACCOUNTS", value)
    with pytest.raises(ImproperlyConfigured, match=message) as raised:
        env_accounts("X_ACCOUNTS")
    assert KEY_A not in str(raised.value) and "not*base64" not in str(raised.value)
