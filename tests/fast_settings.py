"""Test-only settings that make the suite faster without changing what it tests.

A pytest plugin (tests/conftest.py), in every pytest process (serial or an xdist worker).

- Passwords: Django's PBKDF2 makes each hash cost about a second of CPU on purpose
  (1,000,000 iterations); the suite makes thousands (every UserFactory user, every sign-in
  of the browser tests). MD5 hashes come first in the tests, so new passwords are hashed
  fast; the product's hashers stay listed after it, so a hash a served batchsite made in
  a subprocess (PBKDF2) still checks. No test is about the hash algorithm: the product's
  own setting is untouched (batchsite/settings.py).
"""

from __future__ import annotations


def pytest_configure(config):
    del config
    from django.conf import settings
    from django.test.utils import override_settings

    override_settings(
        PASSWORD_HASHERS=[
            "django.contrib.auth.hashers.MD5PasswordHasher",
            *settings.PASSWORD_HASHERS,
        ]
    ).enable()
