"""The pool list: every pool of an account (or of every account the user sees) with its
current and target nodes, its allocation state and its nodes by state; live while a pool
can change by itself."""

import pytest
from django.urls import reverse

from tasks.models import Job
from tests.factories import (
    AccountFactory,
    ComputeNodeFactory,
    JobFactory,
    MembershipFactory,
    PoolFactory,
)
from tests.web.conftest import HTMX, signed_in

pytestmark = pytest.mark.django_db


def row(body: str, pool_id: str) -> str:
    return body.split(f'data-pool="{pool_id}"')[1].split("</tr>")[0]


@pytest.fixture
def pools(account):
    big = PoolFactory(
        account=account,
        pool_id="big",
        target_dedicated_nodes=3,
        target_low_priority_nodes=1,
        allocation_state="resizing",
    )
    for state in ("idle", "idle", "running"):
        ComputeNodeFactory(pool=big, state=state, provider_handle="local:1")
    ComputeNodeFactory(pool=big, state="creating", is_dedicated=False)
    quiet = PoolFactory(
        account=account,
        pool_id="quiet",
        resize_errors=[
            {
                "code": "AllocationTimedout",
                "message": "Desired number of dedicated nodes could not be allocated",
            }
        ],
    )
    return big, quiet


def test_shows_current_against_target_nodes_and_the_nodes_by_state(op, account, pools):
    body = op.get(reverse("web:pools", args=[account.name])).content.decode()
    big = row(body, "big")
    assert 'data-count="dedicated">3 / 3<' in big and 'data-count="low-priority">1 / 1<' in big
    here = reverse("web:pool", args=[account.name, "big"])
    assert "alloc-resizing" in big and f'"chip node-idle" href="{here}?state=idle">2 idle<' in big
    assert f'"chip node-running" href="{here}?state=running">1 running<' in big
    assert f'"chip node-creating" href="{here}?state=creating">1 creating<' in big
    quiet = row(body, "quiet")
    assert "1 resize error" in quiet and "AllocationTimedout" in quiet and "no nodes" in quiet


def test_the_index_lists_the_pools_of_every_account_the_user_sees_and_no_other(account, pools):
    other = AccountFactory(name="other")
    PoolFactory(account=other, pool_id="theirs")
    hidden = AccountFactory(name="hidden")
    PoolFactory(account=hidden, pool_id="secret")
    user = MembershipFactory(account=account).user
    MembershipFactory(account=other, user=user)
    body = signed_in(user).get(reverse("web:pool-index")).content.decode()
    assert 'data-pool="big"' in body and 'data-pool="theirs"' in body and "secret" not in body
    assert f">{account.name}</td>" in body and ">other</td>" in body


def test_an_account_the_user_is_not_granted_is_not_found(stranger, account, pools):
    assert stranger.get(reverse("web:pools", args=[account.name])).status_code == 404
    assert "big" not in stranger.get(reverse("web:pool-index")).content.decode()


def test_polls_while_a_pool_is_on_the_move_and_stops_when_all_are_at_rest(op, account, pools):
    url = reverse("web:pools", args=[account.name])
    r = op.get(url, headers=HTMX)
    assert r.status_code == 200 and 'hx-trigger="every 3s"' in r.content.decode()
    big, _ = pools
    big.nodes.all().delete()
    big.allocation_state = "steady"
    big.save()
    r = op.get(url, headers=HTMX)
    body = r.content.decode()
    assert r.status_code == 286 and "hx-trigger" not in body and "not refreshing" in body


def test_work_waiting_for_an_idle_node_keeps_the_list_live(op, account):
    pool = PoolFactory(account=account, pool_id="Work")
    ComputeNodeFactory(pool=pool, state="idle")
    url = reverse("web:pools", args=[account.name])
    assert op.get(url, headers=HTMX).status_code == 286
    JobFactory(
        account=account, pool_id="work", state=Job.State.ACTIVE, active_count=4
    )  # ids match in any case
    assert op.get(url, headers=HTMX).status_code == 200


def test_the_plain_page_and_the_fragment_share_one_url(op, account, pools):
    url = reverse("web:pools", args=[account.name])
    page, fragment = op.get(url).content.decode(), op.get(url, headers=HTMX).content.decode()
    assert "<html" in page and 'id="pools-live"' in page
    assert "<html" not in fragment and fragment.lstrip().startswith('<div id="pools-live"')


def test_costs_a_fixed_number_of_queries(op, account, pools, django_assert_num_queries):
    for i in range(5):
        pool = PoolFactory(account=account, pool_id=f"more{i}")
        ComputeNodeFactory.create_batch(3, pool=pool)
    # session, user, membership, pools, current nodes, nodes by state, jobs with work waiting
    with django_assert_num_queries(7):
        op.get(reverse("web:pools", args=[account.name]))


def test_the_index_costs_a_fixed_number_of_queries(op, account, pools, django_assert_num_queries):
    other = AccountFactory()
    for i in range(4):
        ComputeNodeFactory.create_batch(2, pool=PoolFactory(account=other if i % 2 else account))
    # session, user, pools (of the accounts the user sees), current nodes, nodes by state, jobs with work
    with django_assert_num_queries(6):
        op.get(reverse("web:pool-index"))


def test_each_state_count_opens_the_pool_on_its_nodes_in_that_state(op, account, pools):
    body = op.get(reverse("web:pools", args=[account.name])).content.decode()
    pool = pools[0]
    state = pool.nodes.first().state
    assert f'href="{reverse("web:pool", args=[account.name, pool.pool_id])}?state={state}"' in body
