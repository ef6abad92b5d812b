"""Settings readers: secrets come from the environment or the data dir, never the code."""

import stat

import pytest
from django.core.exceptions import ImproperlyConfigured

from batchsite.env import data_dir_secret, env_bool, env_int


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
