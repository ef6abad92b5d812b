"""Admin fixtures: a signed-in superuser."""

import pytest
from django.test import Client

from tests.factories import UserFactory


@pytest.fixture
def admin_client_(db):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    user.save()
    client = Client()
    client.force_login(user)
    return client
