"""A pool's page: target against current nodes, allocation state, resize errors, the
autoscale formula and its last evaluation, the nodes with their states and what runs on
them, the jobs on the pool; live while the pool can change by itself."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import Job
from tests.factories import AttemptFactory, ComputeNodeFactory, JobFactory, PoolFactory, TaskFactory
from tests.web.conftest import HTMX

pytestmark = pytest.mark.django_db


def pool_url(pool, name: str = "pool") -> str:
    return reverse(f"web:{name}", args=[pool.account.name, pool.pool_id])


@pytest.fixture
def pool(account, job):
    pool = PoolFactory(
        account=account,
        pool_id="render",
        target_dedicated_nodes=3,
        allocation_state="resizing",
        resize_errors=[
            {
                "code": "AccountCoreQuotaReached",
                "message": "The local node quota is 16.",
                "values": [{"name": "Quota", "value": "16"}],
            }
        ],
        spec={
            "displayName": "Render farm",
            "startTask": {"commandLine": "/bin/sh -c 'setup'"},
            "userAccounts": [{"name": "ops", "password": "hunter2-secret"}],
        },
    )
    busy = ComputeNodeFactory(
        pool=pool, node_id="n-busy", state="running", slots=4, provider_handle="local:1"
    )
    ComputeNodeFactory(pool=pool, node_id="n-new", state="creating")
    for i in range(2):
        task = TaskFactory(job=job, task_id=f"r{i}", running=True)
        AttemptFactory(task=task, node=busy, outcome="running", end_time=None, slots=1 + i)
    job.pool_id = "render"
    job.save()
    return pool


def test_shows_targets_against_current_nodes_the_allocation_state_and_resize_errors(op, pool):
    body = op.get(pool_url(pool)).content.decode()
    assert 'data-count="dedicated"><b>2 <span class="muted">/ 3</span>' in body
    assert 'id="pool-allocation">resizing<' in body and "Render farm" in body
    errors = body.split('id="pool-resize-errors"')[1].split("</div>\n")[0]
    assert "AccountCoreQuotaReached" in errors and "Quota: 16" in errors


def test_lists_the_nodes_with_their_states_and_what_runs_on_them(op, pool, job):
    body = op.get(pool_url(pool)).content.decode()
    busy = body.split('data-node="n-busy"')[1].split("</tr>")[0]
    assert "node-running" in busy and "3 / 4" in busy and "/r0</a>" in busy and "/r1</a>" in busy
    assert "node-creating" in body.split('data-node="n-new"')[1].split("</tr>")[0]
    assert f'data-job="{job.job_id}"' in body


def test_shows_the_autoscale_formula_and_its_last_evaluation(op, account):
    pool = PoolFactory(
        account=account,
        pool_id="auto",
        enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes = min(4, $PendingTasks.GetSample(1));",
        auto_scale_run={
            "timestamp": "2026-12-01T10:00:00.0000000Z",
            "results": "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;"
            "$NodeDeallocationOption=requeue",
            "error": {
                "code": "InsufficientSampleData",
                "message": "Not enough samples",
                "values": [{"name": "Message", "value": "$PendingTasks"}],
            },
        },
    )
    body = op.get(pool_url(pool)).content.decode()
    assert "$TargetDedicatedNodes = min(4, $PendingTasks.GetSample(1));" in body
    assert "2026-12-01 10:00:00" in body and "InsufficientSampleData" in body
    results = body.split('id="pool-run-results"')[1].split("</table>")[0]
    assert '>$NodeDeallocationOption</td><td class="mono small">requeue<' in results


def test_a_pools_secrets_are_never_shown(op, pool):
    body = op.get(pool_url(pool)).content.decode()
    assert "hunter2-secret" not in body and "&quot;name&quot;: &quot;ops&quot;" in body


def test_a_start_tasks_resource_files_are_shown_without_their_signature(view, account):
    sas = "sv=2021-08-06&sr=b&sp=r&sig=TOPSECRETSIGNATURE"
    pool = PoolFactory(
        account=account,
        pool_id="signed",
        spec={
            "startTask": {
                "commandLine": "/bin/sh setup.sh",
                "resourceFiles": [
                    {"httpUrl": f"https://acct.blob.core.windows.net/s/setup.sh?{sas}"}
                ],
            }
        },
    )
    body = view.get(pool_url(pool)).content.decode()
    assert "TOPSECRETSIGNATURE" not in body and "sig=" not in body
    assert "https://acct.blob.core.windows.net/s/setup.sh&quot;" in body


def test_marks_each_property_stored_only_to_round_trip(op, account):
    pool = PoolFactory(
        account=account,
        pool_id="vm",
        spec={
            "virtualMachineConfiguration": {
                "imageReference": {"publisher": "canonical", "offer": "ubuntu", "sku": "22_04"},
                "nodeAgentSKUId": "batch.node.ubuntu 22.04",
            },
            "networkConfiguration": {"endpointConfiguration": {"inboundNATPools": []}},
            "mountConfiguration": [
                {"nfsMountConfiguration": {"source": "nfs://x", "relativeMountPath": "data"}}
            ],
            "userAccounts": [{"name": "ops", "password": "hunter2-secret"}],
            "upgradePolicy": {"mode": "manual"},
            "taskSchedulingPolicy": {"nodeFillType": "pack"},
            "metadata": [{"name": "team", "value": "render"}],
            "startTask": {
                "commandLine": "/bin/true",
                "resourceFiles": [{"httpUrl": "https://x/setup.sh"}],
                "containerSettings": {"imageName": "ubuntu"},
            },
        },
    )
    body = op.get(pool_url(pool)).content.decode()
    marked = [part.split('"')[0] for part in body.split('data-stored-only="')[1:]]
    # The start task's resource files are downloaded (tasks/node/resource_files.py): not marked.
    assert marked == [
        "startTask.containerSettings",
        "virtualMachineConfiguration",
        "networkConfiguration",
        "mountConfiguration",
        "userAccounts",
        "upgradePolicy",
    ]
    for name in marked:
        assert (
            'class="badge stored-only">stored only<'
            in body.split(f'data-stored-only="{name}"')[1][:60]
        )
    assert "canonical ubuntu 22_04" in body and "hunter2-secret" not in body
    # What batchsite acts on is not marked.
    assert (
        "pack" in body.split('id="pool-configuration"')[1]
        and 'data-stored-only="taskSchedulingPolicy"' not in body
    )


def test_a_pool_with_nothing_stored_only_has_no_such_list(op, account):
    body = op.get(pool_url(PoolFactory(account=account, pool_id="bare", spec={}))).content.decode()
    assert 'id="pool-stored-only"' not in body and "data-stored-only" not in body


def test_what_a_pool_spec_holds_is_escaped(op, account):
    pool = PoolFactory(
        account=account,
        pool_id="x",
        spec={
            "displayName": "<script>alert(1)</script>",
            "startTask": {"commandLine": "<img src=x onerror=1>"},
        },
    )
    body = op.get(pool_url(pool)).content.decode()
    assert "<script>alert(1)" not in body and "<img src=x" not in body and "&lt;img src=x" in body


def test_polls_while_resizing_and_stops_when_at_rest(op, pool):
    r = op.get(pool_url(pool), headers=HTMX)
    assert r.status_code == 200 and 'hx-trigger="every 2s"' in r.content.decode()
    pool.nodes.all().delete()
    pool.allocation_state = "steady"
    pool.save()
    r = op.get(pool_url(pool), headers=HTMX)
    assert r.status_code == 286 and "hx-trigger" not in r.content.decode()


@pytest.mark.parametrize(
    "change, live",
    [
        ({"node": {"pending_action": "reboot"}}, True),
        ({"node": {"state": "leavingpool"}}, True),
        ({"node": {"state": "starting"}}, True),
        ({"node": {"state": "offline"}}, False),
        ({"node": {"state": "starttaskfailed"}}, False),
        ({"pool": {"enable_auto_scale": True}}, True),
        ({"pool": {"state": "deleting"}}, True),
        ({"job": {"state": Job.State.ACTIVE, "active_count": 2}}, True),
        ({"job": {"state": Job.State.DISABLED, "active_count": 2}}, False),
    ],
)
def test_is_live_exactly_while_something_can_change_by_itself(op, account, change, live):
    pool = PoolFactory(account=account, pool_id="p", **change.get("pool", {}))
    ComputeNodeFactory(pool=pool, **({"state": "idle"} | change.get("node", {})))
    if "job" in change:
        JobFactory(account=account, pool_id="p", **change["job"])
    assert op.get(pool_url(pool), headers=HTMX).status_code == (200 if live else 286)


def test_a_poll_of_a_pool_deleted_meanwhile_says_so_and_stops(op, pool):
    url = pool_url(pool)
    pool.delete()
    r = op.get(url, headers=HTMX)
    assert r.status_code == 286 and "no longer exists" in r.content.decode()
    assert op.get(url).status_code == 404


def test_a_pool_of_another_account_is_not_found(stranger, pool):
    assert stranger.get(pool_url(pool)).status_code == 404
    assert stranger.get(pool_url(pool), headers=HTMX).status_code == 404


def test_costs_a_fixed_number_of_queries(op, pool, job, django_assert_num_queries):
    nodes = ComputeNodeFactory.create_batch(6, pool=pool, state="running")
    for i, node in enumerate(nodes):
        AttemptFactory(
            task=TaskFactory(job=job, task_id=f"more{i}", running=True),
            node=node,
            outcome="running",
            end_time=None,
        )
    JobFactory.create_batch(3, account=pool.account, pool_id="render")
    # session, user, membership, pool, nodes, running attempts, current nodes, jobs
    with django_assert_num_queries(8):
        op.get(pool_url(pool))
    with django_assert_num_queries(8):
        op.get(pool_url(pool), headers=HTMX)


def test_the_node_table_shows_one_state_when_asked_and_its_poll_keeps_asking(op, pool):
    body = op.get(pool_url(pool) + "?state=creating").content.decode()
    table = body.split('id="node-table"')[1].split("</table>")[0]
    assert 'data-node="n-new"' in table and 'data-node="n-busy"' not in table
    assert 'class="chip node-creating current"' in body and "Show all 2" in body
    assert f'hx-get="{pool_url(pool)}?state=creating"' in body
    assert 'data-count="dedicated"><b>2 ' in body  # the counts are of every node still
    none = op.get(pool_url(pool) + "?state=idle").content.decode()
    assert "No node is idle now." in none
    every = op.get(pool_url(pool) + "?state=<script>").content.decode()
    assert (
        'data-node="n-new"' in every and 'data-node="n-busy"' in every and "<script>" not in every
    )


def test_says_how_many_nodes_are_ready_and_when_the_resize_gives_up(op, pool):
    pool.allocation_state_transition_time = timezone.now().replace(hour=9, minute=0, second=0)
    pool.resize_timeout = timedelta(minutes=10)
    pool.save()
    body = op.get(pool_url(pool)).content.decode()
    assert "<b>1</b> ready (idle or running) · <b>1</b> on the way" in body
    deadline = body.split('id="pool-resize-deadline"')[1][:200]
    assert "gives up at <time " in deadline and ">09:10:00 UTC</time>" in deadline
    assert 'id="pool-short"' not in body and "of this resize so far" in body


def test_a_steady_pool_short_of_its_targets_says_by_how_much(op, pool):
    pool.allocation_state = "steady"
    pool.target_low_priority_nodes = 1
    pool.save()
    body = op.get(pool_url(pool)).content.decode()
    short = body.split('id="pool-short"')[1].split("</p>")[0]
    assert (
        "short of the targets by 1 dedicated and 1 low-priority nodes (see the errors below)"
        in short
    )
    assert 'id="pool-resize-deadline"' not in body and "of this resize so far" not in body
