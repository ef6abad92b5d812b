"""Settings read from the environment at start, each in a fresh process: the accounts
(BATCHSITE_ACCOUNT_NAME/_KEY and BATCHSITE_ACCOUNTS), serving behind HTTPS, and
`manage.py check --deploy` with the production settings the README documents."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from batchsite.env import DEV_ACCOUNT_KEY
from tests.service.live import MANAGE, ROOT, clean_environment

KEY_A = "a2V5LW9mLWFjY291bnQtYQ=="
KEY_B = "a2V5LW9mLWFjY291bnQtYg=="
# What the README's "Serving in production" sets (with keys of the deployment's own).
PRODUCTION = {
    "BATCHSITE_HTTPS": "true",
    "BATCHSITE_ACCOUNT_NAME": "prodbatch",
    "BATCHSITE_ACCOUNT_KEY": KEY_A,
    "BATCHSITE_ALLOWED_HOSTS": "batch.example.com",
    "BATCHSITE_CSRF_TRUSTED_ORIGINS": "https://batch.example.com",
}


def python(code: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    environment = clean_environment(
        BATCHSITE_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="batchsite.settings", **env
    )
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def accounts(tmp_path, **env: str) -> list[list[str]]:
    proc = python(
        "from django.conf import settings\nimport json\n"
        "print(json.dumps([[a.name, a.key, a.secondary_key] for a in settings.BATCHSITE_ACCOUNTS]))",
        tmp_path,
        **env,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def refusal(tmp_path, **env: str) -> str:
    proc = python("pass", tmp_path, **env)
    assert proc.returncode != 0
    return proc.stderr.strip().splitlines()[-1]


def test_without_configuration_the_development_account_is_the_only_one(tmp_path):
    assert accounts(tmp_path) == [["devbatch", DEV_ACCOUNT_KEY, ""]]


def test_listed_accounts_alone_turn_the_development_account_off_the_first_is_the_default(tmp_path):
    assert accounts(tmp_path, BATCHSITE_ACCOUNTS=f"teama:{KEY_A}:{KEY_B};teamb:{KEY_B}") == [
        ["teama", KEY_A, KEY_B],
        ["teamb", KEY_B, ""],
    ]


def test_listed_accounts_join_the_configured_default_account(tmp_path):
    assert accounts(
        tmp_path,
        BATCHSITE_ACCOUNT_NAME="main",
        BATCHSITE_ACCOUNT_KEY=KEY_A,
        BATCHSITE_ACCOUNT_SECONDARY_KEY=KEY_B,
        BATCHSITE_ACCOUNTS=f"teamb:{KEY_B}",
    ) == [["main", KEY_A, KEY_B], ["teamb", KEY_B, ""]]
    assert accounts(tmp_path, BATCHSITE_ACCOUNTS=f"teamb:{KEY_B}", BATCHSITE_ACCOUNT_KEY=KEY_A) == [
        ["devbatch", KEY_A, ""],
        ["teamb", KEY_B, ""],
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {
                "BATCHSITE_ACCOUNT_NAME": "teama",
                "BATCHSITE_ACCOUNT_KEY": KEY_A,
                "BATCHSITE_ACCOUNTS": f"teama:{KEY_B}",
            },
            "both BATCHSITE_ACCOUNT_NAME and in BATCHSITE_ACCOUNTS",
        ),
        (
            {"BATCHSITE_ACCOUNT_NAME": "Team_A", "BATCHSITE_ACCOUNT_KEY": KEY_A},
            "not a Batch account name",
        ),
        ({"BATCHSITE_ACCOUNT_NAME": "teama"}, "BATCHSITE_ACCOUNT_KEY must be set"),
        ({"BATCHSITE_ACCOUNT_SECONDARY_KEY": "not base64!"}, "must be base64"),
        ({"BATCHSITE_ACCOUNTS": "teama"}, "needs `name:key1[:key2]`"),
    ],
)
def test_bad_account_settings_stop_the_start_with_the_reason(tmp_path, env, message):
    last = refusal(tmp_path, **env)
    assert last.startswith("django.core.exceptions.ImproperlyConfigured") and message in last


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('["not", "an object"]', "BATCHSITE_AUTO_STORAGE must be a JSON object"),
        (
            '{"devbatch": "AccountName=x;BlobEndpoint=http://127.0.0.1:1/x"}',
            "with AccountName and AccountKey",
        ),
        ('{"devbatch": 42}', "with AccountName and AccountKey"),
    ],
)
def test_bad_auto_storage_stops_the_start_with_the_reason(tmp_path, value, message):
    last = refusal(tmp_path, BATCHSITE_AUTO_STORAGE=value)
    assert last.startswith("django.core.exceptions.ImproperlyConfigured") and message in last


def test_auto_storage_is_read_per_account(tmp_path):
    connection = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://h/d;"
    proc = python(
        "from django.conf import settings\nprint(sorted(settings.BATCHSITE_AUTO_STORAGE))",
        tmp_path,
        BATCHSITE_AUTO_STORAGE=json.dumps({"devbatch": connection}),
    )
    assert (proc.returncode, proc.stdout.strip()) == (0, "['devbatch']"), proc.stderr


def check_deploy(tmp_path, **env: str) -> subprocess.CompletedProcess:
    environment = clean_environment(BATCHSITE_DATA_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, MANAGE, "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_names_what_a_development_start_lacks(tmp_path):
    output = (proc := check_deploy(tmp_path)).stdout + proc.stderr
    assert proc.returncode != 0
    for warning in (
        "security.W004",
        "security.W008",
        "security.W012",
        "security.W016",
        "batchsite.W001",
    ):
        assert warning in output


def test_check_deploy_has_no_security_warning_with_the_documented_production_settings(tmp_path):
    output = (proc := check_deploy(tmp_path, **PRODUCTION)).stdout + proc.stderr
    assert "security." not in output and "batchsite." not in output, output


def test_served_behind_https_plain_http_is_redirected_and_cookies_are_secure(tmp_path):
    code = (
        "from django.test import Client\n"
        "c = Client()\n"
        "r = c.get('/accounts/login/')\n"
        "print(r.status_code, r['Location'])\n"
        "r = c.get('/accounts/login/', headers={'X-Forwarded-Proto': 'https'})\n"
        "print(r.status_code, r.headers['Strict-Transport-Security'], bool(r.cookies['csrftoken']['secure']))\n"
    )
    proc = python(code, tmp_path, BATCHSITE_HTTPS="true")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "301 https://testserver/accounts/login/",
        "200 max-age=31536000; includeSubDomains; preload True",
    ]


def test_each_part_of_https_can_be_set_on_its_own(tmp_path):
    code = (
        "from django.conf import settings as s\n"
        "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS,"
        " s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)\n"
    )
    proc = python(
        code,
        tmp_path,
        BATCHSITE_HTTPS="true",
        BATCHSITE_SSL_REDIRECT="false",
        BATCHSITE_HSTS_SECONDS="3600",
        BATCHSITE_HSTS_PRELOAD="false",
    )
    assert proc.stdout.split() == ["False", "True", "True", "3600", "True", "False"], proc.stderr
    proc = python(code, tmp_path)
    assert proc.stdout.split() == ["False", "False", "False", "0", "False", "False"], proc.stderr
