"""azure-batch 14.2.0 (msrest, api-version 2024-02-01.19.0) drives the pool lifecycle
unmodified against batchsite, while the reconciler runs here in the background and starts
real agents (see sdk14_pool_scenarios.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.models import Pool

pytestmark = [pytest.mark.sdk14, pytest.mark.django_db(transaction=True)]

SCENARIOS = Path(__file__).with_name("sdk14_pool_scenarios.py")


@pytest.fixture
def pools14(run14, reconciling):
    return lambda scenario, *args: run14(scenario, *args, script=SCENARIOS)


def test_a_pool_reaches_its_idle_nodes_runs_tasks_shows_node_files_and_is_deleted(pools14):
    out = pools14("lifecycle")
    assert out["results"] == ["success"] and out["on_nodes"] is True
    assert out["pool"] == ["steady", 2, 2, 2, "batch.node.ubuntu 22.04"]
    assert out["selected"] == ["p14", "steady", None, None]
    assert out["node"] == ["idle", True, "completed", 0, "enabled", True, True]
    assert out["counts"] == [2, 2, 0]
    assert out["patched"] == [["team", "vfx"]]
    assert out["replaced"] == [None, None]  # Update Properties replaces: what it omits is gone
    assert out["files"] == ["shared/ready", "startup/stderr.txt", "startup/stdout.txt"]
    assert out["startup"] == "set up\n"
    assert out["images"] is True and out["exists"] == [True, False] and out["gone"] is True
    assert not Pool.objects.filter(pool_id="p14").exists()


@pytest.mark.parametrize(
    ("option", "tasks"),
    [
        ("requeue", [[0, "success", None], [1, "success", None]]),
        ("terminate", [[0, "failure", "TaskEnded"], [0, "success", None]]),
        ("taskcompletion", [[0, "success", None], [0, "success", None]]),
        ("retaineddata", [[0, "success", None], [0, "success", None]]),
    ],
)
def test_resize_down_treats_the_running_tasks_per_the_deallocation_option(pools14, option, tasks):
    out = pools14("resize_down", option)
    assert out["during"] == "resizing"
    assert out["pool"] == [1, 1] and out["nodes"] == 1
    assert out["tasks"] == tasks


def test_resize_up_then_remove_a_named_node(pools14):
    out = pools14("resize_stop_remove")
    assert out["busy"] == "PoolBeingResized"  # one resize at a time
    assert out["grown"] == [3, 600.0]
    assert out["removed"] == [2, 2] and out["left"] is True and out["missing"] == "NodeNotFound"


def test_stop_resize_keeps_the_nodes_the_pool_has(pools14, settings):
    settings.BATCHSITE_NODE_ALLOCATION_SECONDS = 60  # new nodes stay `creating` until stopped
    out = pools14("stop_resize")
    assert out == {"pool": [0, 2], "errors": ["ResizeStopped"], "nodes": 0}


def test_an_autoscale_formula_evaluated_then_enabled_changes_the_node_count(pools14, settings):
    settings.BATCHSITE_POOL_SAMPLE_SECONDS = 1.0
    out = pools14("autoscale")
    assert (
        out["results"]
        == "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion"
    )
    assert out["before"] == 0 and out["bad"] == "AutoScalingFormulaSyntaxError"
    assert out["enabled"] == [True, 2, 300.0]
    assert out["off"] == [False, None, 2]


def test_reboot_with_requeue_requeues_the_running_task(pools14):
    out = pools14("reboot")
    assert out["during"] == "rebooting"
    assert out["task"] == [1, "success"] and out["rebooted"] is True
    assert (
        out["disabled"] == ["disabled", "offline"]
        and out["twice"] == "NodeAlreadyInTargetSchedulingState"
    )
    assert out["enabled"] == "enabled"


def test_a_job_with_an_auto_pool_runs_its_tasks_and_its_pool_goes_after_it(pools14):
    out = pools14("auto_pool")
    assert out["pool_id"].startswith("a14_") and out["info"] == "a14"
    assert out["results"] == ["success"] and out["pools"] == [out["pool_id"]]
    assert out["gone"] is True
