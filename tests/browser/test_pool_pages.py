"""Pools and nodes in a real browser: an operator resizes a pool from its page and watches
real nodes (the `local` provider's agents, driven by a running reconciler) appear, then
reboots one from its page; a viewer finds every button disabled with its reason; the pages
are looked at on a desktop and a phone, light and dark, under the site's CSP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import ComputeNode, Pool
from tasks.nodehost.layout import node_root
from tasks.operations.pools import add_pool
from tests.browser.conftest import shot
from tests.browser.test_file_safety import CSP_LOG, violations_of
from tests.factories import AttemptFactory, ComputeNodeFactory, JobFactory, PoolFactory, TaskFactory
from tests.local_nodes import in_background

pytestmark = pytest.mark.browser

NODE_WAIT = 90_000  # ms: a new agent registers and runs its start task (slow on a loaded machine)


@pytest.fixture
def reconciling(reconciler):
    """The reconciler running in the background, as `manage.py reconcile` does."""
    with in_background(reconciler):
        yield reconciler


def node_count(page) -> int:
    return page.locator("#node-table tbody tr[data-node]").count()


def test_operator_resizes_a_pool_watches_its_nodes_come_then_reboots_one(
    site, reconciling, new_page
):
    add_pool(
        site["account"],
        spec={
            "id": "farm",
            "vmSize": "local",
            "startTask": {"commandLine": "/bin/sh -c 'echo preparing the node; echo done'"},
        },
    )
    page = new_page("olive")
    page.context.add_init_script(CSP_LOG)
    page.goto("/web/demo/pools/")
    assert (
        page.locator("#pools-table tr[data-pool=farm] [data-count=dedicated]").inner_text()
        == "0 / 0"
    )
    page.click("#pools-table tr[data-pool=farm] a")
    page.wait_for_url("**/web/demo/pools/farm/")
    page.evaluate("window.__notReloaded = true")
    assert node_count(page) == 0 and page.inner_text("#pool-allocation") == "steady"

    page.click("#pool-actions [data-action=resize] a")
    page.wait_for_selector("#pool-dialog #pool-form")
    shot(page, "50-pool-resize-dialog")
    page.fill("#pool-form input[name=target_dedicated]", "2")
    page.click("#pool-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#pool-allocation').textContent === 'resizing'"
    )
    assert page.locator("#pool-dialog").inner_html().strip() == ""
    assert "resizing to 2 dedicated" in page.inner_text("#pool-flash")
    # The live region follows the nodes as the reconciler creates them and their agents start.
    page.wait_for_function(
        "() => document.querySelectorAll('#node-table tr[data-node]').length === 2",
        timeout=NODE_WAIT,
    )
    shot(page, "51-pool-resizing")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#node-table tr[data-node] .node-state')]"
        ".filter(b => b.textContent === 'idle').length === 2",
        timeout=NODE_WAIT,
    )
    page.wait_for_function(
        "() => document.querySelector('#pool-allocation').textContent === 'steady'",
        timeout=NODE_WAIT,
    )
    assert page.locator("[data-count=dedicated] b").inner_text() == "2 / 2"
    assert page.evaluate("window.__notReloaded") is True
    shot(page, "52-pool-steady")

    # Reboot one node from its page: rebooting at once, then its agent is back with the same id.
    node = ComputeNode.objects.filter(pool__pool_id="farm").order_by("node_id").first()
    booted = node.registered
    page.click(f"#node-table tr[data-node={node.node_id}] a")
    page.wait_for_url(f"**/nodes/{node.node_id}/")
    assert "preparing the node" in page.inner_text("#node-output-text")
    assert page.inner_text("#start-task-state").startswith("completed")
    page.click("#node-actions [data-action=reboot] a")
    page.wait_for_selector("#node-dialog #confirm-reboot")
    assert page.is_checked("#node-dialog input[name=option][value=requeue]")
    shot(page, "53-node-reboot-confirm")
    page.click("#node-dialog button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#node-state').textContent === 'rebooting'"
    )
    assert "reboot ordered" in page.inner_text("#node-flash")
    page.wait_for_function(
        "() => document.querySelector('#node-state').textContent === 'idle'", timeout=NODE_WAIT
    )
    assert ComputeNode.objects.get(pk=node.pk).registered > booted
    shot(page, "54-node-rebooted")
    page.goto("/web/audit/")
    audit = page.inner_text("#audit-table")
    assert (
        "pool-resize" in audit
        and "node-reboot" in audit
        and f"pool farm: {node.node_id} (requeue)" in audit
    )
    assert violations_of(page) == []


def test_viewer_sees_no_pool_or_node_action_and_is_told_why(site, new_page):
    pool = Pool.objects.get(pool_id="local")
    page = new_page("victor")
    for path, region in (
        ("/web/demo/pools/local/", "pool"),
        (f"/web/demo/pools/local/nodes/{pool.nodes.first().node_id}/", "node"),
    ):
        page.goto(path)
        assert (
            page.locator(
                f"#{region}-actions button, #{region}-actions a, #{region}-actions form"
            ).count()
            == 0
        )
        assert "only its operators can act" in page.inner_text(f"#{region}-viewer")
        shot(page, f"55-viewer-{region}")


def test_operator_evaluates_a_formula_then_enables_autoscale(site, new_page):
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
    page.goto("/web/demo/pools/elastic/")
    assert "$TargetDedicatedNodes = 0;" in page.inner_text("#pool-formula")
    assert page.locator("#pool-actions [data-action=resize] button").is_disabled()
    page.click("#pool-actions [data-action=evaluate-autoscale] a")
    page.fill(
        "#pool-form textarea[name=formula]", "pending = 3; $TargetDedicatedNodes = min(2, pending);"
    )
    page.click("#pool-form button[type=submit]")
    page.wait_for_selector("#evaluation-results")
    assert "$TargetDedicatedNodes\t2" in page.inner_text("#evaluation-results")
    shot(page, "56-pool-evaluate")
    assert Pool.objects.get(pool_id="elastic").target_dedicated_nodes == 0  # nothing applied
    page.click("#pool-form [data-close-dialog]")
    page.click("#pool-actions [data-action=enable-autoscale] a")
    page.fill("#pool-form textarea[name=formula]", "$TargetDedicatedNodes = = 1;")
    page.click("#pool-form button[type=submit]")
    page.wait_for_selector("#pool-form .errorlist")
    assert "AutoScalingFormulaSyntaxError" in page.inner_text("#pool-form .errorlist")
    page.fill("#pool-form textarea[name=formula]", "$TargetDedicatedNodes = 1;")
    page.click("#pool-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#pool-formula').textContent.includes('= 1;')"
    )
    assert Pool.objects.get(pool_id="elastic").target_dedicated_nodes == 1
    assert violations_of(page) == []


@pytest.fixture
def scene(site, settings, tmp_path):
    """Three pools as an operator meets them: an autoscaled one at rest with nodes in every
    state (work running on them, a start task that failed, files on disk) and its formula's
    last run; a fixed one resizing from 2 to 8 nodes; one steady short of its targets with
    the resize errors that stopped it."""
    settings.STORAGES = {
        **settings.STORAGES,
        "taskfiles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "nodes")},
        },
    }
    account = site["account"]
    now = timezone.now()
    pool = PoolFactory(
        account=account,
        pool_id="render-farm",
        vm_size="standard_d4s_v3",
        task_slots_per_node=4,
        target_dedicated_nodes=36,
        target_low_priority_nodes=4,
        allocation_state="steady",
        allocation_state_transition_time=now - timedelta(minutes=7),
        enable_auto_scale=True,
        auto_scale_next=now + timedelta(minutes=8),
        auto_scale_formula=(
            "$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 15);\n"
            "$tasks = $samples < 70 ? max(0, $PendingTasks.GetSample(1)) : "
            "max($PendingTasks.GetSample(1), avg($PendingTasks.GetSample(TimeInterval_Minute * 15)));\n"
            "$TargetDedicatedNodes = min(36, $tasks / 4);\n$NodeDeallocationOption = taskcompletion;"
        ),
        auto_scale_run={
            "timestamp": "2026-12-01T10:15:00.0000000Z",
            "results": "$TargetDedicatedNodes=36;$TargetLowPriorityNodes=4;"
            "$NodeDeallocationOption=taskcompletion;$samples=100;$tasks=163",
        },
        spec={
            "displayName": "Blender render farm",
            "startTask": {
                "commandLine": "/bin/sh -c 'apt-get install -y blender && blender --version'",
                "maxTaskRetryCount": 2,
                "resourceFiles": [
                    {
                        "httpUrl": "https://example.org/scenes/setup.tar.gz",
                        "filePath": "setup.tar.gz",
                    }
                ],
            },
            "taskSchedulingPolicy": {"nodeFillType": "pack"},
            "virtualMachineConfiguration": {
                "imageReference": {
                    "publisher": "canonical",
                    "offer": "0001-com-ubuntu-server-jammy",
                    "sku": "22_04-lts",
                },
                "nodeAgentSKUId": "batch.node.ubuntu 22.04",
            },
            "mountConfiguration": [
                {
                    "nfsMountConfiguration": {
                        "source": "nfs://10.0.0.4/scenes",
                        "relativeMountPath": "scenes",
                    }
                }
            ],
            "userAccounts": [
                {"name": "render", "password": "s3cret-never-shown", "elevationLevel": "admin"}
            ],
        },
    )
    states = (
        ["running"] * 18
        + ["idle"] * 8
        + ["creating"] * 4
        + ["starting"] * 2
        + ["waitingforstarttask"]
        + ["rebooting", "leavingpool", "offline", "starttaskfailed", "unusable"]
    )
    job = JobFactory(
        account=account,
        job_id="frames-2026",
        pool_id="render-farm",
        active_count=120,
        running_count=43,
    )
    nodes = []
    for i, state in enumerate(states):
        nodes.append(
            ComputeNodeFactory(
                pool=pool,
                node_id=f"tvmps_{i:032x}_{'p' if i % 10 == 9 else 'd'}",
                state=state,
                is_dedicated=i % 10 != 9,
                slots=4,
                hostname=f"worker-{i}",
                provider_handle=f"local:{i}",
                last_heartbeat=now - timedelta(seconds=3 + i),
                total_tasks_run=40 + i,
                total_tasks_succeeded=38 + i // 2,
                scheduling_enabled=state != "offline",
                start_task_info={
                    "state": "completed",
                    "result": "success",
                    "exitCode": 0,
                    "retryCount": 0,
                    "startTime": "2026-12-01T10:00:00.0000000Z",
                    "endTime": "2026-12-01T10:00:41.0000000Z",
                }
                if state in ("running", "idle")
                else None,
            )
        )
    for i, node in enumerate(nodes[:18]):
        for k in range(1 + i % 4):
            task = TaskFactory(
                job=job,
                task_id=f"frame-{i * 4 + k:04d}",
                running=True,
                node=node,
                node_name=node.node_id,
                pool_id="render-farm",
            )
            AttemptFactory(
                task=task,
                node=node,
                outcome="running",
                end_time=None,
                exit_code=None,
                slots=1,
                claimed=now - timedelta(seconds=30 + k),
            )
    failed = ComputeNode.objects.get(pool=pool, state="starttaskfailed")
    failed.start_task_info = {
        "state": "completed",
        "startTime": "2026-12-01T10:00:00.0000000Z",
        "endTime": "2026-12-01T10:00:41.0000000Z",
        "exitCode": 100,
        "result": "failure",
        "retryCount": 2,
        "lastRetryTime": "2026-12-01T10:00:30.0000000Z",
        "failureInfo": {
            "category": "usererror",
            "code": "FailureExitCode",
            "message": "The task exited with an exit code representing a failure",
        },
    }
    failed.save()
    root = node_root(tmp_path, account.name, pool.pool_id, failed.node_id)
    (root / "startup" / "wd").mkdir(parents=True)
    (root / "startup" / "stdout.txt").write_text(
        "Reading package lists...\nBuilding dependency tree...\n<b>not bold: this is text</b>\n"
    )
    (root / "startup" / "stderr.txt").write_text("E: Unable to locate package blender\n")
    (root / "shared").mkdir()
    (root / "shared" / "scene-cache.blend").write_bytes(b"\x00BLENDER" * 4000)
    for k in range(3):
        task_dir = root / "workitems" / "frames-2026" / "job-1" / f"frame-{k:04d}"
        (task_dir / "wd").mkdir(parents=True)
        (task_dir / "stdout.txt").write_text(
            f"Fra:{k} Mem:412.03M | Rendering 1 / 64 samples\n" * 40
        )
        (task_dir / "stderr.txt").write_text("")
        (
            task_dir / "wd" / f"frame-{k:04d}-with-a-long-output-name-for-the-compositor-pass.png"
        ).write_bytes(b"PNG" * 900)
    (root / "shared" / "outside").symlink_to("/etc")

    grow = PoolFactory(
        account=account,
        pool_id="grow",
        vm_size="standard_d2s_v3",
        target_dedicated_nodes=8,
        allocation_state="resizing",
        allocation_state_transition_time=now - timedelta(seconds=40),
        resize_timeout=timedelta(minutes=10),
        node_deallocation_option="taskcompletion",
    )
    for i, state in enumerate(["idle", "idle", "starting", "creating", "creating", "creating"]):
        ComputeNodeFactory(
            pool=grow,
            node_id=f"tvmps_{0xA0 + i:032x}_d",
            state=state,
            provider_handle=f"local:g{i}",
            slots=1,
        )
    short = PoolFactory(
        account=account,
        pool_id="gpu",
        vm_size="standard_nc6",
        target_dedicated_nodes=4,
        target_low_priority_nodes=2,
        allocation_state="steady",
        allocation_state_transition_time=now - timedelta(minutes=3),
        resize_errors=[
            {
                "code": "AccountCoreQuotaReached",
                "message": "The local node quota (16) is reached.",
                "values": [{"name": "Quota", "value": "16"}],
            },
            {
                "code": "AllocationTimedout",
                "message": "Desired number of dedicated nodes could not "
                "be allocated as the resize timeout was reached",
                "values": [],
            },
        ],
    )
    ComputeNodeFactory(
        pool=short, node_id=f"tvmps_{0xC0:032x}_d", state="idle", provider_handle="local:s1"
    )
    return {"pool": pool, "failed": failed, "busy": nodes[3]}


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_the_pool_pages_on_desktop_and_phone_light_and_dark(scene, new_page, dark, phone):
    page = new_page("olive", dark=dark, phone=phone)
    page.context.add_init_script(CSP_LOG)
    tag = f"{'phone' if phone else 'desktop'}-{'dark' if dark else 'light'}"
    node = f"/web/demo/pools/render-farm/nodes/{scene['failed'].node_id}/"
    paths = [
        ("/web/pools/", "pool-index"),
        ("/web/demo/pools/render-farm/", "pool-autoscaled"),
        ("/web/demo/pools/grow/", "pool-resizing"),
        ("/web/demo/pools/gpu/", "pool-resize-errors"),
        (f"/web/demo/pools/render-farm/nodes/{scene['busy'].node_id}/", "node-running"),
        (node + "files/", "node-files"),
        (node + "output/?file=workitems/frames-2026/job-1/frame-0001/stdout.txt", "node-file"),
        (node, "node"),
    ]
    found = []
    for path, name in paths:
        page.goto(path)
        page.wait_for_load_state("load")
        # Nothing wider than the screen: tables scroll inside their frame, the page does not.
        assert page.evaluate(
            "() => document.documentElement.scrollWidth <= window.innerWidth + 1"
        ), (path, tag)
        shot(page, f"57-{name}-{tag}")
        found += violations_of(page)
    assert "&lt;b&gt;" not in page.inner_text(
        "#node-output-text"
    ) and "<b>not bold" in page.inner_text("#node-output-text")
    assert page.locator("#node-output-text b").count() == 0
    page.goto("/web/demo/pools/render-farm/")
    assert "s3cret-never-shown" not in page.content()
    page.click("#pool-actions [data-action=delete] a")
    page.wait_for_selector("#pool-dialog .confirm-box")
    shot(page, f"58-pool-delete-confirm-{tag}")
    assert found + violations_of(page) == []
