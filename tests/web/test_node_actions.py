"""Reboot, reimage, disable and enable scheduling, and remove from a node's page: asked
first with the option for the node's running tasks, through the node and pool operations,
audited, in the htmx and the plain path."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tasks.models import AuditRecord, ComputeNode, Pool, Task
from tasks.operations.counts import recount_job
from tests.factories import AttemptFactory, ComputeNodeFactory, PoolFactory, TaskFactory
from tests.web.conftest import HTMX

pytestmark = pytest.mark.django_db


def url(node, name: str) -> str:
    return reverse(f"web:{name}", args=[node.pool.account.name, node.pool.pool_id, node.node_id])


def fresh(node) -> ComputeNode:
    return ComputeNode.objects.get(pk=node.pk)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def node(account, job):
    pool = PoolFactory(account=account, pool_id="farm", target_dedicated_nodes=2)
    node = ComputeNodeFactory(pool=pool, node_id="n1", state="running", provider_handle="local:1")
    ComputeNodeFactory(pool=pool, node_id="n2", provider_handle="local:2")
    job.pool_id = "farm"
    job.save()
    return node


@pytest.fixture
def running(node, job):
    task = TaskFactory(
        job=job, task_id="busy", running=True, node=node, node_name=node.node_id, pool_id="farm"
    )
    AttemptFactory(task=task, node=node, outcome="running", end_time=None)
    recount_job(job)
    return task


@pytest.mark.parametrize(
    "action, option",
    [
        ("reboot", "requeue"),
        ("reimage", "terminate"),
        ("disable-scheduling", "taskcompletion"),
        ("remove", "retaineddata"),
    ],
)
def test_asks_first_with_the_options_for_running_tasks(op, node, running, action, option):
    for r in (op.get(url(node, f"node-{action}")), op.post(url(node, f"node-{action}"))):
        body = r.content.decode()
        assert r.status_code == 200 and 'name="option" value="requeue" checked' in body
        assert f'value="{option}"' in body and "1 task runs there now" in body
    assert fresh(node).pending_action == "" and fresh(node).scheduling_enabled
    dialog = op.get(url(node, f"node-{action}"), headers=HTMX).content.decode()
    assert dialog.lstrip().startswith('<div class="card') and "<html" not in dialog


def test_disable_scheduling_offers_only_its_own_options(op, node):
    body = op.get(url(node, "node-disable-scheduling")).content.decode()
    assert 'value="taskcompletion"' in body and 'value="retaineddata"' not in body


def test_reboot_with_requeue_reboots_and_requeues_the_running_task(op, node, running):
    r = op.post(url(node, "node-reboot"), {"confirm": "yes", "option": "requeue"}, headers=HTMX)
    body = r.content.decode()
    assert r["HX-Retarget"] == "#node-live" and 'id="node-state">rebooting<' in body
    assert (
        'id="node-dialog" class="dialog" hx-swap-oob="true"' in body and 'id="node-order"' in body
    )
    assert (fresh(node).state, fresh(node).pending_action) == ("rebooting", "reboot")
    task = Task.objects.get(pk=running.pk)
    assert task.state == Task.State.ACTIVE and task.requeue_count == 1
    record = AuditRecord.objects.get()
    assert record.action == "node-reboot" and record.scope == {
        "pool": "farm",
        "nodes": ["n1"],
        "option": "requeue",
    }


def test_reimage_with_terminate_ends_the_running_task(op, node, running):
    r = op.post(url(node, "node-reimage"), {"confirm": "yes", "option": "terminate"})
    assert r.status_code == 302 and r["Location"] == url(node, "node")
    assert messages_of(r) == ["Node n1: reimage ordered."]
    assert fresh(node).state == "reimaging"
    assert Task.objects.get(pk=running.pk).failure_info["code"] == "TaskEnded"


def test_disable_then_enable_scheduling(op, node, running):
    op.post(url(node, "node-disable-scheduling"), {"confirm": "yes", "option": "taskcompletion"})
    assert (
        not fresh(node).scheduling_enabled
        and Task.objects.get(pk=running.pk).state == Task.State.RUNNING
    )
    body = op.get(url(node, "node")).content.decode()
    assert 'id="node-scheduling">scheduling disabled<' in body
    r = op.post(
        url(node, "node-enable-scheduling"), headers=HTMX
    )  # no confirmation: it only gives work
    assert fresh(node).scheduling_enabled and "enable scheduling ordered" in r.content.decode()
    assert [a.action for a in AuditRecord.objects.order_by("pk")] == [
        "node-disable-scheduling",
        "node-enable-scheduling",
    ]


def test_remove_asks_the_node_to_leave_and_shrinks_the_pool(op, node):
    r = op.post(
        url(node, "node-remove"), {"confirm": "yes", "option": "taskcompletion"}, headers=HTMX
    )
    assert 'id="node-order">Asked to leave the pool (taskcompletion)' in r.content.decode()
    node = fresh(node)
    assert (node.pending_action, node.action_option) == ("remove", "taskcompletion")
    pool = Pool.objects.get(pk=node.pool_id)
    assert pool.target_dedicated_nodes == 1 and pool.allocation_state == "resizing"
    assert AuditRecord.objects.get().scope == {
        "pool": "farm",
        "nodes": ["n1"],
        "option": "taskcompletion",
    }


def test_an_unknown_option_is_refused_and_nothing_happens(op, node, running):
    r = op.post(url(node, "node-reboot"), {"confirm": "yes", "option": "now"})
    assert messages_of(r) == [
        "InvalidPropertyValue: The value must be one of: requeue, terminate, taskcompletion, "
        "retaineddata."
    ]
    assert (
        fresh(node).state == "running"
        and Task.objects.get(pk=running.pk).state == Task.State.RUNNING
    )
    assert AuditRecord.objects.get().outcome["refused"] == "InvalidPropertyValue"


def test_a_refusal_is_shown_beside_the_buttons_in_both_paths(op, node):
    ComputeNode.objects.filter(pk=node.pk).update(state="creating")
    htmx = op.post(url(node, "node-reboot"), {"confirm": "yes"}, headers=HTMX).content.decode()
    assert 'class="msg error" role="status" id="node-flash">' in htmx and "being created" in htmx
    plain = op.post(url(node, "node-reboot"), {"confirm": "yes"})
    assert messages_of(plain)[0].startswith("NodeBeingCreated: ")


def test_a_node_that_has_left_says_so_to_its_poll_and_its_action(op, node):
    page = url(node, "node")
    ComputeNode.objects.filter(pk=node.pk).delete()
    r = op.get(page, headers=HTMX)
    assert r.status_code == 286 and "it left the pool" in r.content.decode()
    assert op.get(page).status_code == 404


@pytest.mark.parametrize(
    "action", ["reboot", "reimage", "disable-scheduling", "enable-scheduling", "remove"]
)
def test_a_viewer_and_a_stranger_cannot_act(view, stranger, node, action):
    assert view.post(url(node, f"node-{action}"), {"confirm": "yes"}).status_code == 403
    assert stranger.post(url(node, f"node-{action}"), {"confirm": "yes"}).status_code == 404
    assert fresh(node).state == "running" and not AuditRecord.objects.exists()
