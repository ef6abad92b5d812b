"""Dashboard fixtures: signed-in operators and viewers of the `account` fixture."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import AccountMembership
from tests.factories import MembershipFactory, UserFactory

HTMX = {"HX-Request": "true"}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator(account):
    return MembershipFactory(account=account, role=AccountMembership.Role.OPERATOR).user


@pytest.fixture
def viewer(account):
    return MembershipFactory(account=account, role=AccountMembership.Role.VIEWER).user


@pytest.fixture
def op(operator):
    """A client signed in as an operator of `account`."""
    return signed_in(operator)


@pytest.fixture
def view(viewer):
    """A client signed in as a viewer of `account`."""
    return signed_in(viewer)


@pytest.fixture
def stranger(db):
    """A client signed in as a user granted no account."""
    return signed_in(UserFactory())


def task_url(name: str, task, **kw) -> str:
    return reverse(
        f"web:{name}", args=[task.job.account.name, task.job.job_id, task.task_id]
    ) + _query(kw)


def job_url(name: str, job, **kw) -> str:
    return reverse(f"web:{name}", args=[job.account.name, job.job_id]) + _query(kw)


def _query(kw: dict) -> str:
    from urllib.parse import urlencode

    return "?" + urlencode(kw, doseq=True) if kw else ""
