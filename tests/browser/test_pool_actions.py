"""Every pool and node action of the dashboard in a real browser, beside the resize and the
reboot of test_pool_pages: stop resize, disable autoscale, disable and enable scheduling,
reimage, remove a node; an action the rules refuse once the page is open shows Batch's
reason and changes nothing; a viewer's POST, with a valid session and CSRF token, is
refused with 403. Each action taken is in the audit trail."""

from __future__ import annotations

import pytest

from tasks.models import AuditRecord, ComputeNode, Pool
from tasks.operations.autoscale import enable_auto_scale
from tasks.operations.pools import add_pool, resize_pool
from tests.browser.test_file_safety import CSP_LOG, violations_of
from tests.factories import ComputeNodeFactory, PoolFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def steady(site):
    """A steady pool of two idle nodes its provider made (no agents behind them, no
    reconciler: nothing moves them on)."""
    pool = PoolFactory(account=site["account"], pool_id="steady", target_dedicated_nodes=2)
    nodes = [
        ComputeNodeFactory(pool=pool, node_id=f"n-{i}", slots=2, provider_handle=f"local:{i}")
        for i in (1, 2)
    ]
    return pool, nodes


def text_is(selector: str, text: str) -> str:
    return f"() => document.querySelector('{selector}')?.textContent.trim() === '{text}'"


def test_operator_stops_a_resize_and_disables_autoscale(site, new_page):
    add_pool(site["account"], spec={"id": "growing", "vmSize": "local", "targetDedicatedNodes": 3})
    add_pool(
        site["account"],
        spec={
            "id": "elastic",
            "vmSize": "local",
            "enableAutoScale": True,
            "autoScaleFormula": "$TargetDedicatedNodes = 0;",
        },
    )
    page = new_page("olive")
    page.context.add_init_script(CSP_LOG)
    page.goto("/web/demo/pools/growing/")
    assert page.inner_text("#pool-allocation") == "resizing"
    page.click("#pool-actions [data-action=stop-resize] button")
    page.wait_for_function(text_is("#pool-allocation", "stopping"))
    assert "stopping the resize" in page.inner_text("#pool-flash")
    assert Pool.objects.get(pool_id="growing").allocation_state == "stopping"

    page.goto("/web/demo/pools/elastic/")
    page.click("#pool-actions [data-action=disable-autoscale] button")
    page.wait_for_function(
        "() => document.querySelector('#pool-formula').textContent.startsWith('Off')"
    )
    assert "autoscale disabled" in page.inner_text("#pool-flash")
    assert page.locator("#pool-actions [data-action=disable-autoscale]").count() == 0
    assert not page.locator("#pool-actions [data-action=resize] a").is_hidden()
    assert Pool.objects.get(pool_id="elastic").enable_auto_scale is False
    actions = set(AuditRecord.objects.values_list("action", flat=True))
    assert {"pool-stop-resize", "pool-disable-autoscale"} <= actions
    assert violations_of(page) == []


def test_operator_disables_scheduling_reimages_and_removes_nodes(steady, new_page):
    pool, (first, second) = steady
    page = new_page("olive")
    page.context.add_init_script(CSP_LOG)
    page.goto(f"/web/demo/pools/steady/nodes/{second.node_id}/")
    page.click("#node-actions [data-action=reimage] a")
    page.wait_for_selector("#node-dialog #confirm-reimage")
    page.check("#node-dialog input[name=option][value=terminate]")
    page.click("#node-dialog button[type=submit]")
    page.wait_for_function(text_is("#node-state", "reimaging"))
    assert "reimage ordered" in page.inner_text("#node-flash")
    assert "(terminate)" in page.inner_text("#node-order")

    page.goto(f"/web/demo/pools/steady/nodes/{first.node_id}/")
    assert page.locator("#node-actions [data-action=enable-scheduling]").count() == 0
    page.click("#node-actions [data-action=disable-scheduling] a")
    page.wait_for_selector("#node-dialog #confirm-disable-scheduling")
    options = page.locator("#node-dialog input[name=option]")
    assert [options.nth(i).get_attribute("value") for i in range(options.count())] == [
        "requeue",
        "terminate",
        "taskcompletion",
    ]
    page.check("#node-dialog input[name=option][value=taskcompletion]")
    page.click("#node-dialog button[type=submit]")
    page.wait_for_selector("#node-scheduling")
    assert page.inner_text("#node-scheduling") == "scheduling disabled"
    assert page.locator("#node-dialog").inner_html().strip() == ""
    assert page.locator("#node-actions [data-action=disable-scheduling]").count() == 0
    page.click("#node-actions [data-action=enable-scheduling] button")
    page.wait_for_selector("#node-scheduling", state="detached")
    assert page.locator("#node-actions [data-action=disable-scheduling] a").is_visible()
    assert ComputeNode.objects.get(pk=first.pk).scheduling_enabled is True

    page.click("#node-actions [data-action=remove] a")
    page.wait_for_selector("#node-dialog #confirm-remove")
    page.click("#node-dialog button[type=submit]")
    page.wait_for_selector("#node-order")
    assert "Asked to leave the pool (requeue)" in page.inner_text("#node-order")
    fresh = Pool.objects.get(pk=pool.pk)
    assert fresh.target_dedicated_nodes == 1 and fresh.allocation_state == "resizing"
    # The pool is resizing now: removing the other node waits until it is steady again.
    page.goto(f"/web/demo/pools/steady/nodes/{second.node_id}/")
    assert "resiz" in page.inner_text("#node-actions [data-action=remove] .reason")

    page.goto("/web/audit/")
    audit = page.inner_text("#audit-table")
    for action in (
        "node-disable-scheduling",
        "node-enable-scheduling",
        "node-reimage",
        "node-remove",
    ):
        assert action in audit
    assert f"pool steady: {first.node_id} (taskcompletion)" in audit
    page.click(f"#audit-table a:text-is('{first.node_id}')")
    page.wait_for_url(f"**/pools/steady/nodes/{first.node_id}/")
    assert violations_of(page) == []


def test_an_action_refused_after_the_page_opened_shows_batchs_reason_and_changes_nothing(
    steady, new_page
):
    pool, (first, _) = steady
    page = new_page("olive")
    page.context.add_init_script(CSP_LOG)
    page.goto("/web/demo/pools/steady/")
    page.click("#pool-actions [data-action=resize] a")
    page.wait_for_selector("#pool-dialog #pool-form")
    page.fill("#pool-form input[name=target_dedicated]", "5")
    enable_auto_scale(
        Pool.objects.get(pk=pool.pk), formula="$TargetDedicatedNodes = 2;"
    )  # someone else, meanwhile
    page.click("#pool-form button[type=submit]")
    page.wait_for_selector("#pool-flash.error")
    assert "automatic scaling" in page.inner_text("#pool-flash")
    assert page.locator("#pool-actions [data-action=resize] button").is_disabled()
    assert Pool.objects.get(pk=pool.pk).target_dedicated_nodes == 2

    page.goto(f"/web/demo/pools/steady/nodes/{first.node_id}/")
    page.click("#node-actions [data-action=reboot] a")
    page.wait_for_selector("#node-dialog #confirm-reboot")
    ComputeNode.objects.filter(pk=first.pk).update(state="offline")  # its agent died meanwhile
    page.click("#node-dialog button[type=submit]")
    page.wait_for_selector("#node-flash.error")
    flash = page.inner_text("#node-flash")
    assert flash and page.locator("#node-actions [data-action=reboot] button").is_disabled()
    assert page.inner_text("#node-actions [data-action=reboot] .reason") == flash
    assert ComputeNode.objects.get(pk=first.pk).pending_action == ""
    refused = AuditRecord.objects.filter(action__in=["pool-resize", "node-reboot"]).values_list(
        "outcome", flat=True
    )
    assert len(refused) == 2 and all(outcome.get("refused") for outcome in refused)
    assert violations_of(page) == []


def test_a_viewers_post_with_a_valid_csrf_token_is_refused(steady, new_page):
    pool, (first, _) = steady
    resize_pool(Pool.objects.get(pk=pool.pk), target_dedicated=3)  # stop-resize would be allowed
    page = new_page("victor")
    page.goto("/web/demo/pools/steady/")
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    base = "/web/demo/pools/steady/"
    for path, form in (
        (base + "resize/", {"target_dedicated": "9", "target_low_priority": "0"}),
        (base + "stop-resize/", {}),
        (base + "delete/", {"confirm": "yes"}),
        (base + f"nodes/{first.node_id}/reboot/", {"confirm": "yes", "option": "requeue"}),
        (base + f"nodes/{first.node_id}/remove/", {"confirm": "yes"}),
    ):
        r = page.request.post(
            path, form={"csrfmiddlewaretoken": token, **form}, headers={"X-CSRFToken": token}
        )
        assert r.status == 403 and "CSRF" not in r.text(), path
    fresh = Pool.objects.get(pk=pool.pk)
    assert (fresh.target_dedicated_nodes, fresh.allocation_state, fresh.state) == (
        3,
        "resizing",
        "active",
    )
    assert ComputeNode.objects.get(pk=first.pk).pending_action == ""
    assert not AuditRecord.objects.filter(actor="victor").exists()
