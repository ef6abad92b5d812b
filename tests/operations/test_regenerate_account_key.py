"""regenerate_account_key: Batch's Regenerate Keys, primary or secondary."""

import base64

import pytest

from tasks.errors import BatchError
from tasks.models import Account
from tasks.operations.accounts import can_regenerate_account_key, regenerate_account_key
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "key_name, field", [("primary", "primary_key"), ("Secondary", "secondary_key")]
)
def test_replaces_only_the_named_key_with_a_new_random_one(key_name, field):
    account = AccountFactory()
    before = {f: getattr(account, f) for f in ("primary_key", "secondary_key")}
    keys = {regenerate_account_key(account, key_name=key_name) for _ in range(3)}
    fresh = Account.objects.get(pk=account.pk)
    assert len(keys) == 3 and getattr(fresh, field) in keys and before[field] not in keys
    assert all(len(base64.b64decode(k, validate=True)) == 64 for k in keys)
    untouched = "secondary_key" if field == "primary_key" else "primary_key"
    assert getattr(fresh, untouched) == before[untouched]


def test_refuses_another_key_name_and_the_may_i_form_agrees():
    account = AccountFactory()
    with pytest.raises(BatchError) as refused:
        regenerate_account_key(account, key_name="tertiary")
    assert refused.value == can_regenerate_account_key(key_name="tertiary")
    assert (
        refused.value.code == "InvalidPropertyValue"
        and dict(refused.value.values)["PropertyName"] == "keyName"
    )
    assert can_regenerate_account_key(key_name="primary") is None
    assert Account.objects.get(pk=account.pk).primary_key == account.primary_key


def test_refuses_an_account_that_is_gone():
    account = AccountFactory()
    Account.objects.filter(pk=account.pk).delete()
    with pytest.raises(BatchError) as refused:
        regenerate_account_key(account, key_name="primary")
    assert refused.value.status == 404
