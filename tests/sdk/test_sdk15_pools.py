"""azure-batch 15.1.0 drives the whole pool lifecycle against a live server: the pools' nodes
are real agents that the reconciler (looping in the background, as `manage.py reconcile`
does) starts and stops through each node provider in turn (local processes, then Slurm
jobs: the `reconciling` fixture), and every long-running call's poller returns only once
the server reached what it polls for."""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.batch import models as m
from azure.batch.models import _models as hidden
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tasks.models import ComputeNode, Pool
from tests.agents import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

POLL = 0.3  # seconds between an LRO's polls (the SDK's default is 5)
IMAGE = m.VirtualMachineConfiguration(
    image_reference=m.BatchVmImageReference(
        publisher="canonical",
        offer="0001-com-ubuntu-server-jammy",
        sku="22_04-lts",
        version="latest",
    ),
    node_agent_sku_id="batch.node.ubuntu 22.04",
)


def new_pool(client, pool_id: str, *, dedicated: int = 0, slots: int = 1, **kw) -> None:
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            target_dedicated_nodes=dedicated,
            task_slots_per_node=slots,
            virtual_machine_configuration=IMAGE,
            **kw,
        )
    )


def properties(model) -> set[str]:
    """The Batch properties a response had (the OData annotations are not properties)."""
    return {k for k in model.as_dict() if not k.startswith("odata.")}


def nodes_in(client, pool_id: str, state: str | None = None) -> list:
    return [n for n in client.list_nodes(pool_id) if state is None or n.state == state]


def wait_idle(client, pool_id: str, count: int, timeout: float = 90) -> list:
    return wait_for(
        lambda: (
            len(nodes_in(client, pool_id, "idle")) == count and nodes_in(client, pool_id, "idle")
        ),
        timeout=timeout,
        interval=0.2,
        message=f"{count} idle nodes in {pool_id}",
    )


def add_tasks(client, job_id: str, pool_id: str, tasks: list[m.BatchTaskCreateOptions]) -> None:
    client.create_job(
        m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id))
    )
    client.create_tasks(job_id, tasks)


def task(task_id: str, command: str, **kw) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(id=task_id, command_line=command, **kw)


def completed(client, job_id: str, count: int, timeout: float = 90) -> dict:
    def done():
        tasks = {t.id: t for t in client.list_tasks(job_id)}
        return (
            len(tasks) == count
            and all(t.state == m.BatchTaskState.COMPLETED for t in tasks.values())
            and tasks
        )

    return wait_for(
        done, timeout=timeout, interval=0.2, message=f"the {count} tasks of {job_id} to complete"
    )


def running(client, job_id: str, count: int) -> dict:
    def now_running():
        tasks = {t.id: t for t in client.list_tasks(job_id) if t.state == m.BatchTaskState.RUNNING}
        return len(tasks) == count and tasks

    return wait_for(
        now_running, timeout=90, interval=0.2, message=f"{count} tasks of {job_id} running"
    )


def test_a_new_pool_of_two_dedicated_nodes_reaches_two_idle_nodes_and_runs_tasks(
    client15, reconciling
):
    new_pool(client15, "p2", dedicated=2, slots=2)
    nodes = wait_idle(client15, "p2", 2)
    pool = client15.get_pool("p2")
    assert (pool.allocation_state, pool.current_dedicated_nodes, pool.target_dedicated_nodes) == (
        "steady",
        2,
        2,
    )
    assert pool.virtual_machine_configuration.node_agent_sku_id == "batch.node.ubuntu 22.04"
    assert all(
        n.is_dedicated and n.scheduling_state == "enabled" and n.node_agent_info.version
        for n in nodes
    )

    add_tasks(
        client15,
        "j",
        "p2",
        [task(f"t{i}", "/bin/sh -c 'echo $AZ_BATCH_NODE_ID'") for i in range(8)],
    )
    tasks = completed(client15, "j", 8)
    assert {t.execution_info.result for t in tasks.values()} == {m.BatchTaskExecutionResult.SUCCESS}
    assert {t.node_info.node_id for t in tasks.values()} <= {n.id for n in nodes}
    # An agent reports the runs it finished with its next heartbeat.
    listed = wait_for(
        lambda: (lambda ns: sum(n.total_tasks_run for n in ns.values()) == 8 and ns)(
            {n.id: n for n in client15.list_nodes("p2")}
        ),
        timeout=30,
        message="totalTasksRun to reach 8",
    )
    recent = [r for n in listed.values() for r in n.recent_tasks or []]
    assert {(r.job_id, r.task_state) for r in recent} == {("j", "completed")} and len(recent) == 8
    [counts] = [c for c in client15.list_pool_node_counts(filter="poolId eq 'p2'")]
    assert (counts.dedicated.idle, counts.dedicated.total, counts.low_priority.total) == (2, 2, 0)


def test_get_pool_with_select_returns_only_what_was_selected(client15, reconciling):
    new_pool(client15, "sel", dedicated=1)
    pool = client15.get_pool("sel", select=["id", "allocationState", "targetDedicatedNodes"])
    assert properties(pool) == {"id", "allocationState", "targetDedicatedNodes"}
    assert (pool.id, pool.target_dedicated_nodes) == ("sel", 1)
    [listed] = client15.list_pools(select=["id", "vmSize"])
    assert properties(listed) == {"id", "vmSize"} and listed.vm_size == "standard_d2s_v3"
    [node] = wait_idle(client15, "sel", 1)
    got = client15.get_node("sel", node.id, select=["id", "state"])
    assert properties(got) == {"id", "state"} and got.state == "idle"
    assert client15.pool_exists("sel")
    # 15.1.0's exception policy turns every 404, this HEAD's too, into an exception.
    with pytest.raises(ResourceNotFoundError):
        client15.pool_exists("nosuch")


def test_resize_up_waits_for_the_new_nodes(client15, reconciling):
    new_pool(client15, "up", dedicated=1)
    wait_idle(client15, "up", 1)
    client15.begin_resize_pool(
        "up", m.BatchPoolResizeOptions(target_dedicated_nodes=3), polling_interval=POLL
    ).result()
    pool = client15.get_pool("up")
    assert (pool.allocation_state, pool.current_dedicated_nodes) == ("steady", 3)
    assert len(wait_idle(client15, "up", 3)) == 3


@pytest.mark.parametrize("option", ["requeue", "terminate", "taskcompletion", "retaineddata"])
def test_resize_down_treats_the_running_tasks_per_the_deallocation_option(
    client15, reconciling, option
):
    new_pool(client15, "down", dedicated=2)
    wait_idle(client15, "down", 2)
    keep = m.BatchTaskConstraints(retention_time=timedelta(seconds=2))
    add_tasks(
        client15,
        "j",
        "down",
        [task(f"t{i}", "/bin/sh -c 'sleep 4'", constraints=keep) for i in range(2)],
    )
    running(client15, "j", 2)
    client15.begin_resize_pool(
        "down",
        m.BatchPoolResizeOptions(target_dedicated_nodes=1, node_deallocation_option=option),
        polling_interval=POLL,
    ).result()
    pool = client15.get_pool("down")
    assert (pool.allocation_state, pool.current_dedicated_nodes, pool.target_dedicated_nodes) == (
        "steady",
        1,
        1,
    )
    tasks = completed(client15, "j", 2)
    outcome = sorted(
        (
            t.execution_info.requeue_count,
            t.execution_info.result,
            t.execution_info.failure_info.code if t.execution_info.failure_info else None,
        )
        for t in tasks.values()
    )
    expected = {
        "requeue": [(0, "success", None), (1, "success", None)],  # run again on the node left
        "terminate": [(0, "failure", "TaskEnded"), (0, "success", None)],
        "taskcompletion": [(0, "success", None), (0, "success", None)],
        "retaineddata": [(0, "success", None), (0, "success", None)],
    }[option]
    assert outcome == expected
    assert len(nodes_in(client15, "down")) == 1


def test_remove_nodes_removes_the_named_node_and_lowers_the_target(client15, reconciling):
    new_pool(client15, "rm", dedicated=2)
    first, second = wait_idle(client15, "rm", 2)
    client15.begin_remove_nodes(
        "rm", m.BatchNodeRemoveOptions(node_ids=[first.id]), polling_interval=POLL
    ).result()
    assert [n.id for n in client15.list_nodes("rm")] == [second.id]
    pool = client15.get_pool("rm")
    assert (pool.allocation_state, pool.target_dedicated_nodes, pool.current_dedicated_nodes) == (
        "steady",
        1,
        1,
    )
    with pytest.raises(ResourceNotFoundError) as e:
        client15.get_node("rm", first.id)
    assert e.value.error.code == "NodeNotFound"


def test_stop_resize_leaves_the_pool_steady_with_the_nodes_it_has(client15, reconciling, settings):
    settings.BATCHSITE_NODE_ALLOCATION_SECONDS = 60  # new nodes stay `creating` until stopped
    new_pool(client15, "stop")
    client15.begin_resize_pool(
        "stop", m.BatchPoolResizeOptions(target_dedicated_nodes=2), polling_interval=POLL
    )
    wait_for(
        lambda: len(nodes_in(client15, "stop", "creating")) == 2,
        timeout=30,
        message="2 nodes creating",
    )
    client15.begin_stop_pool_resize("stop", polling_interval=POLL).result()
    pool = client15.get_pool("stop")
    assert (pool.allocation_state, pool.current_dedicated_nodes, pool.target_dedicated_nodes) == (
        "steady",
        0,
        2,
    )
    assert [e.code for e in pool.resize_errors] == ["ResizeStopped"]
    assert nodes_in(client15, "stop") == []


def test_an_autoscale_formula_evaluated_then_enabled_changes_the_node_count(
    client15, reconciling, settings
):
    settings.BATCHSITE_POOL_SAMPLE_SECONDS = 1.0
    # Microsoft's "pending tasks" formula (Create an automatic formula for scaling compute nodes).
    formula = (
        "$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 15);"
        "$tasks = $samples < 70 ? max(0, $PendingTasks.GetSample(1)) : max($PendingTasks.GetSample(1), "
        "avg($PendingTasks.GetSample(TimeInterval_Minute * 15)));"
        "$targetVMs = $tasks > 0 ? $tasks : max(0, $TargetDedicatedNodes / 2);"
        "$TargetDedicatedNodes = max(0, min($targetVMs, 2));"
        "$NodeDeallocationOption = taskcompletion;"
    )
    new_pool(client15, "auto")
    add_tasks(client15, "j", "auto", [task(f"t{i}", "/bin/true") for i in range(3)])
    client15.enable_pool_auto_scale(
        "auto", m.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes = 0;")
    )

    def evaluated_to_two():
        run = client15.evaluate_pool_auto_scale(
            "auto", m.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=formula)
        )
        return run.error is None and "$TargetDedicatedNodes=2;" in run.results and run

    run = wait_for(
        evaluated_to_two, timeout=60, interval=0.5, message="a sample of the 3 pending tasks"
    )
    assert "$NodeDeallocationOption=taskcompletion" in run.results
    assert client15.get_pool("auto").target_dedicated_nodes == 0  # Evaluate applies nothing

    client15.enable_pool_auto_scale(
        "auto",
        m.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula=formula, auto_scale_evaluation_interval=timedelta(minutes=5)
        ),
    )
    pool = client15.get_pool("auto")
    assert (pool.enable_auto_scale, pool.target_dedicated_nodes) == (True, 2)
    assert pool.auto_scale_run.results.startswith("$TargetDedicatedNodes=2;")
    wait_idle(client15, "auto", 2)
    completed(client15, "j", 3)
    with pytest.raises(HttpResponseError) as e:
        client15.begin_resize_pool(
            "auto", m.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=POLL
        )
    assert e.value.error.code == "OperationNotValidOnPool"
    client15.disable_pool_auto_scale("auto")
    pool = client15.get_pool("auto")
    assert (pool.enable_auto_scale, pool.auto_scale_formula, pool.target_dedicated_nodes) == (
        False,
        None,
        2,
    )


def test_a_start_task_with_wait_for_success_runs_before_any_task_and_its_files_are_the_nodes(
    client15, reconciling
):
    start = m.BatchStartTask(
        command_line="/bin/sh -c 'sleep 1; echo $GREETING > $AZ_BATCH_NODE_SHARED_DIR/ready; "
        "echo set up'",
        environment_settings=[m.EnvironmentSetting(name="GREETING", value="hello")],
        wait_for_success=True,
        max_task_retry_count=1,
    )
    new_pool(client15, "st", dedicated=1, start_task=start)
    add_tasks(
        client15,
        "j",
        "st",
        [task("t", "/bin/sh -c 'test \"$(cat $AZ_BATCH_NODE_SHARED_DIR/ready)\" = hello'")],
    )
    [node] = wait_idle(client15, "st", 1)
    info = client15.get_node("st", node.id).start_task_info
    assert (info.state, info.exit_code, info.result, info.retry_count) == (
        "completed",
        0,
        "success",
        0,
    )
    assert client15.get_pool("st").start_task.wait_for_success is True
    assert completed(client15, "j", 1)["t"].execution_info.result == "success"
    # The node's files: the start task's output and what it left in shared/.
    names = {f.name for f in client15.list_node_files("st", node.id, recursive=True)}
    assert {"startup/stdout.txt", "shared/ready", "workitems/j/job-1/t/stdout.txt"} <= names
    assert b"".join(client15.download_node_file("st", node.id, "startup/stdout.txt")) == b"set up\n"
    assert b"".join(client15.download_node_file("st", node.id, "shared/ready")) == b"hello\n"


def test_a_failing_start_task_that_is_waited_for_leaves_the_node_starttaskfailed(
    client15, reconciling
):
    start = m.BatchStartTask(command_line="/bin/sh -c 'exit 3'", wait_for_success=True)
    new_pool(client15, "bad", dedicated=1, start_task=start)
    [node] = wait_for(
        lambda: nodes_in(client15, "bad", "starttaskfailed"), timeout=90, message="starttaskfailed"
    )
    info = node.start_task_info
    assert (info.exit_code, info.result, info.failure_info.code) == (
        3,
        "failure",
        "FailureExitCode",
    )
    [counts] = client15.list_pool_node_counts(filter="poolId eq 'bad'")
    assert counts.dedicated.start_task_failed == 1


def test_reboot_with_requeue_requeues_the_running_task(client15, reconciling):
    new_pool(client15, "rb", dedicated=1)
    [node] = wait_idle(client15, "rb", 1)
    add_tasks(client15, "j", "rb", [task("t", "/bin/sh -c 'sleep 3'")])
    running(client15, "j", 1)
    client15.begin_reboot_node(
        "rb",
        node.id,
        hidden.BatchNodeRebootOptions(node_reboot_kind="requeue"),
        polling_interval=POLL,
    ).result()
    again = client15.get_node("rb", node.id)
    assert again.state != "rebooting" and again.last_boot_time > node.last_boot_time
    t = completed(client15, "j", 1)["t"]
    assert (t.execution_info.requeue_count, t.execution_info.result) == (1, "success")


def test_reimage_waits_for_the_node_and_wipes_its_disk(client15, reconciling):
    new_pool(client15, "ri", dedicated=1)
    [node] = wait_idle(client15, "ri", 1)
    add_tasks(
        client15, "j", "ri", [task("t", "/bin/sh -c 'echo kept > $AZ_BATCH_NODE_SHARED_DIR/mine'")]
    )
    completed(client15, "j", 1)
    assert "shared/mine" in {
        f.name for f in client15.list_node_files("ri", node.id, recursive=True)
    }
    client15.begin_reimage_node(
        "ri",
        node.id,
        hidden.BatchNodeReimageOptions(node_reimage_option="requeue"),
        polling_interval=POLL,
    ).result()
    again = wait_idle(client15, "ri", 1)[0]
    assert again.id == node.id and again.last_boot_time > node.last_boot_time
    assert "shared/mine" not in {
        f.name for f in client15.list_node_files("ri", node.id, recursive=True)
    }


def test_disable_and_enable_scheduling(client15, reconciling):
    new_pool(client15, "ds", dedicated=1)
    [node] = wait_idle(client15, "ds", 1)
    client15.disable_node_scheduling(
        "ds",
        node.id,
        m.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option="taskcompletion"),
    )
    got = client15.get_node("ds", node.id)
    assert (got.scheduling_state, got.state) == ("disabled", "offline")
    with pytest.raises(ResourceExistsError) as e:
        client15.disable_node_scheduling(
            "ds",
            node.id,
            m.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option="requeue"),
        )
    assert e.value.error.code == "NodeAlreadyInTargetSchedulingState"
    client15.enable_node_scheduling("ds", node.id)
    assert client15.get_node("ds", node.id).scheduling_state == "enabled"


def test_delete_pool_waits_until_the_pool_and_its_agents_are_gone(
    client15, reconciling, node_provider
):
    new_pool(client15, "gone", dedicated=2)
    wait_idle(client15, "gone", 2)
    client15.begin_delete_pool("gone", polling_interval=POLL).result()
    with pytest.raises(ResourceNotFoundError) as e:
        client15.get_pool("gone")
    assert e.value.error.code == "PoolNotFound"
    assert not Pool.objects.exists() and not ComputeNode.objects.exists()
    wait_for(lambda: not node_provider.running(), timeout=30, message="the agents to exit")
