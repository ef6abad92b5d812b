"""Resize, stop resize, autoscale, evaluate and delete from a pool's page: through the pool
operations, audited, in the htmx and the plain path; a value the operation refuses is shown
at its field, a refusal by the pool's rule beside the buttons."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from tasks.models import AuditRecord, ComputeNode, Pool
from tests.factories import ComputeNodeFactory, PoolFactory
from tests.web.conftest import HTMX

pytestmark = pytest.mark.django_db

FORMULA = "$TargetDedicatedNodes = 2;"


def url(pool, name: str) -> str:
    return reverse(f"web:{name}", args=[pool.account.name, pool.pool_id])


def fresh(pool) -> Pool:
    return Pool.objects.get(pk=pool.pk)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def pool(account):
    return PoolFactory(account=account, pool_id="farm", vm_size="local", target_dedicated_nodes=1)


RESIZE = {
    "target_dedicated": "3",
    "target_low_priority": "1",
    "node_deallocation_option": "taskcompletion",
}


# --- resize --------------------------------------------------------------------------------


def test_the_resize_form_starts_from_the_pools_targets(op, pool):
    body = op.get(url(pool, "pool-resize")).content.decode()
    assert 'name="target_dedicated" value="1"' in body and "<html" in body
    fragment = op.get(url(pool, "pool-resize"), headers=HTMX).content.decode()
    assert (
        fragment.lstrip().startswith('<div class="card" id="pool-form"') and "<html" not in fragment
    )


def test_a_plain_resize_sets_the_targets_and_redirects_with_a_message(op, pool):
    r = op.post(url(pool, "pool-resize"), RESIZE)
    assert r.status_code == 302 and r["Location"] == url(pool, "pool")
    pool = fresh(pool)
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (3, 1)
    assert pool.allocation_state == "resizing" and pool.node_deallocation_option == "taskcompletion"
    assert messages_of(r) == ["Pool farm: resizing to 3 dedicated and 1 low-priority nodes."]


def test_an_htmx_resize_answers_the_pool_live_and_closes_the_dialog(op, pool):
    r = op.post(url(pool, "pool-resize"), RESIZE, headers=HTMX)
    body = r.content.decode()
    assert (
        r.status_code == 200 and r["HX-Retarget"] == "#pool-live" and r["HX-Reswap"] == "outerHTML"
    )
    assert (
        'id="pool-allocation">resizing<' in body
        and 'id="pool-dialog" class="dialog" hx-swap-oob="true"' in body
    )
    assert "resizing to 3 dedicated" in body and 'hx-trigger="every 2s"' in body


def test_a_resize_timeout_under_five_minutes_is_refused_at_its_field(op, pool):
    r = op.post(url(pool, "pool-resize"), {**RESIZE, "resize_timeout": "00:04:00"}, headers=HTMX)
    body = r.content.decode()
    assert r.status_code == 200 and body.lstrip().startswith('<div class="card" id="pool-form"')
    field = body.split('name="resize_timeout"')[1].split("</label>")[0]
    assert "InvalidPropertyValue: The minimum value is 5 minutes." in field
    assert fresh(pool).target_dedicated_nodes == 1


def test_a_value_the_form_cannot_read_never_reaches_the_operation(op, pool):
    r = op.post(url(pool, "pool-resize"), {**RESIZE, "target_dedicated": "-1"})
    assert (
        r.status_code == 200
        and "Ensure this value is greater than or equal to 0" in r.content.decode()
    )
    r = op.post(url(pool, "pool-resize"), {**RESIZE, "target_dedicated": str(2**31)})
    assert r.status_code == 200 and fresh(pool).target_dedicated_nodes == 1
    assert not AuditRecord.objects.exists()


def test_an_autoscaled_pool_refuses_a_resize_in_both_paths(op, pool):
    Pool.objects.filter(pk=pool.pk).update(enable_auto_scale=True, auto_scale_formula=FORMULA)
    plain = op.post(url(pool, "pool-resize"), RESIZE)
    assert plain.status_code == 302 and messages_of(plain) == [
        "OperationNotValidOnPool: The pool is configured for automatic scaling: disable autoscale to resize it."
    ]
    htmx = op.post(url(pool, "pool-resize"), RESIZE, headers=HTMX)
    assert (
        'class="msg error" role="status" id="pool-flash">The pool is configured for automatic scaling'
        in htmx.content.decode()
    )
    assert fresh(pool).target_dedicated_nodes == 1


def test_a_resize_is_audited_with_its_targets_and_a_refusal_too(op, operator, pool):
    op.post(url(pool, "pool-resize"), RESIZE)
    op.post(url(pool, "pool-resize"), RESIZE)  # now resizing: PoolBeingResized
    done, refused = AuditRecord.objects.order_by("pk")
    assert (
        done.action == "pool-resize" and done.user == operator and done.outcome == {"succeeded": 1}
    )
    assert done.scope == {
        "pool": "farm",
        "targetDedicatedNodes": 3,
        "targetLowPriorityNodes": 1,
        "nodeDeallocationOption": "taskcompletion",
    }
    assert refused.outcome["refused"] == "PoolBeingResized"


# --- stop resize ---------------------------------------------------------------------------


def test_stop_resize_stops_a_resizing_pool(op, pool):
    Pool.objects.filter(pk=pool.pk).update(allocation_state="resizing")
    r = op.post(url(pool, "pool-stop-resize"), headers=HTMX)
    assert (
        'id="pool-allocation">stopping<' in r.content.decode()
        and "stopping the resize" in r.content.decode()
    )
    assert fresh(pool).allocation_state == "stopping"
    assert AuditRecord.objects.get().action == "pool-stop-resize"


def test_stop_resize_of_a_steady_pool_says_there_was_nothing_to_stop(op, pool):
    r = op.post(url(pool, "pool-stop-resize"))
    assert messages_of(r) == ["Pool farm is steady: there was no resize to stop."]


# --- autoscale -----------------------------------------------------------------------------


def test_enabling_autoscale_evaluates_the_formula_and_applies_its_targets(op, pool):
    r = op.post(
        url(pool, "pool-enable-autoscale"),
        {"formula": FORMULA, "evaluation_interval": "00:10:00"},
        headers=HTMX,
    )
    body = r.content.decode()
    pool = fresh(pool)
    assert (
        pool.enable_auto_scale
        and pool.auto_scale_formula == FORMULA
        and pool.target_dedicated_nodes == 2
    )
    assert (
        pool.auto_scale_evaluation_interval.total_seconds() == 600
        and pool.allocation_state == "resizing"
    )
    assert "$TargetDedicatedNodes = 2;" in body and ">$TargetDedicatedNodes</td>" in body
    record = AuditRecord.objects.get()
    assert record.action == "pool-enable-autoscale" and record.scope == {
        "pool": "farm",
        "autoScaleFormula": FORMULA,
        "autoScaleEvaluationInterval": "PT10M",
    }


def test_a_formula_that_does_not_parse_is_refused_at_its_field(op, pool):
    r = op.post(
        url(pool, "pool-enable-autoscale"),
        {"formula": "$TargetDedicatedNodes = = 2;"},
        headers=HTMX,
    )
    field = r.content.decode().split('name="formula"')[1].split("</label>")[0]
    assert "AutoScalingFormulaSyntaxError" in field and not fresh(pool).enable_auto_scale


def test_an_interval_out_of_range_is_refused_at_its_field(op, pool):
    r = op.post(
        url(pool, "pool-enable-autoscale"), {"formula": FORMULA, "evaluation_interval": "00:01:00"}
    )
    field = r.content.decode().split('name="evaluation_interval"')[1].split("</label>")[0]
    assert "between 5 minutes and 168 hours" in field and not fresh(pool).enable_auto_scale


def test_disabling_autoscale_keeps_the_targets(op, pool):
    op.post(url(pool, "pool-enable-autoscale"), {"formula": FORMULA})
    r = op.post(url(pool, "pool-disable-autoscale"))
    pool = fresh(pool)
    assert (
        not pool.enable_auto_scale
        and pool.target_dedicated_nodes == 2
        and pool.auto_scale_formula == ""
    )
    assert messages_of(r)[-1] == "Pool farm: autoscale disabled; the targets stay as they are."


def test_evaluating_shows_the_run_and_applies_nothing(op, pool):
    op.post(url(pool, "pool-enable-autoscale"), {"formula": FORMULA})
    before = fresh(pool)
    r = op.post(
        url(pool, "pool-evaluate-autoscale"),
        {"formula": "$TargetDedicatedNodes = 5; $TargetLowPriorityNodes = 1; extra = 2.5;"},
        headers=HTMX,
    )
    body = r.content.decode()
    results = body.split('id="evaluation-results"')[1].split("</table>")[0]
    assert (
        '>$TargetDedicatedNodes</td><td class="mono small">5<' in results
        and ">extra</td>" in results
    )
    after = fresh(pool)
    assert (after.target_dedicated_nodes, after.etag, after.auto_scale_run) == (
        before.target_dedicated_nodes,
        before.etag,
        before.auto_scale_run,
    )
    assert AuditRecord.objects.filter(action="pool-evaluate-autoscale").count() == 1


def test_an_evaluation_that_fails_as_it_runs_shows_batchs_error(op, pool):
    op.post(url(pool, "pool-enable-autoscale"), {"formula": FORMULA})
    r = op.post(
        url(pool, "pool-evaluate-autoscale"),
        {"formula": "$TargetDedicatedNodes = $CPUPercent.GetSample(TimeInterval_Minute * 5);"},
    )
    body = r.content.decode()
    assert r.status_code == 200 and 'id="evaluation-error"' in body


def test_evaluate_needs_autoscale_on_the_pool(op, pool):
    r = op.post(url(pool, "pool-evaluate-autoscale"), {"formula": FORMULA}, headers=HTMX)
    assert (
        "The pool must have automatic scaling enabled to evaluate a formula." in r.content.decode()
    )
    assert AuditRecord.objects.get().outcome["refused"] == "OperationNotValidOnPool"


# --- delete --------------------------------------------------------------------------------


def test_delete_asks_first(op, pool):
    for r in (op.get(url(pool, "pool-delete")), op.post(url(pool, "pool-delete"))):
        assert r.status_code == 200 and "Yes, delete" in r.content.decode()
    assert Pool.objects.filter(pk=pool.pk).exists()


def test_delete_asks_its_nodes_to_leave_and_goes_to_the_pool_list(op, pool):
    node = ComputeNodeFactory(pool=pool, provider_handle="local:1")
    r = op.post(url(pool, "pool-delete"), {"confirm": "yes"}, headers=HTMX)
    assert r.status_code == 200 and r["HX-Redirect"] == reverse(
        "web:pools", args=[pool.account.name]
    )
    assert fresh(pool).state == "deleting"
    assert ComputeNode.objects.get(pk=node.pk).pending_action == "remove"
    assert AuditRecord.objects.get().action == "pool-delete"


def test_a_pool_without_live_nodes_is_gone_at_once_and_its_page_says_so(op, pool):
    page = url(pool, "pool")
    r = op.post(url(pool, "pool-delete"), {"confirm": "yes"})
    assert r.status_code == 302 and not Pool.objects.filter(pk=pool.pk).exists()
    assert op.get(page, headers=HTMX).status_code == 286


def test_a_pool_being_deleted_refuses_everything(op, pool):
    Pool.objects.filter(pk=pool.pk).update(state="deleting")
    for name, data in (
        ("pool-resize", RESIZE),
        ("pool-stop-resize", {}),
        ("pool-delete", {"confirm": "yes"}),
        ("pool-enable-autoscale", {"formula": FORMULA}),
    ):
        r = op.post(url(pool, name), data)
        assert messages_of(r)[-1:] == [
            "PoolBeingDeleted: The specified pool has been marked for deletion and is "
            "being reclaimed."
        ], name


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, data",
    [
        ("pool-resize", RESIZE),
        ("pool-stop-resize", {}),
        ("pool-enable-autoscale", {"formula": FORMULA}),
        ("pool-disable-autoscale", {}),
        ("pool-evaluate-autoscale", {"formula": FORMULA}),
        ("pool-delete", {"confirm": "yes"}),
    ],
)
def test_a_viewer_and_a_stranger_cannot_act(view, stranger, pool, name, data):
    assert view.post(url(pool, name), data).status_code == 403
    assert stranger.post(url(pool, name), data).status_code == 404
    assert fresh(pool).target_dedicated_nodes == 1 and not AuditRecord.objects.exists()


def test_every_action_needs_the_csrf_token(operator, pool):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post(url(pool, "pool-resize"), RESIZE).status_code == 403
    assert fresh(pool).target_dedicated_nodes == 1
