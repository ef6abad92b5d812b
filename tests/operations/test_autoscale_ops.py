"""Enable, Disable and Evaluate AutoScale, the periodic evaluation and the pool samples, with
the real formula evaluator (tasks.autoscale)."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.errors import BatchError
from tasks.models import Attempt, ComputeNode, Pool, PoolSample
from tasks.operations import autoscale as ops
from tasks.operations.attempts import finish_attempt
from tasks.operations.nodes import register_node
from tasks.operations.pools import add_pool
from tasks.operations.reconcile import Reconciler
from tests.execution import add, claim, make_job
from tests.factories import AccountFactory, ComputeNodeFactory, PoolFactory
from tests.providers.fakes import FakeProvider

pytestmark = pytest.mark.django_db

RESULTS_2 = "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
# From Microsoft's "Create a formula to automatically scale compute nodes in a Batch pool".
PENDING_TASKS = """
startingNumberOfVMs = 1;
maxNumberofVMs = 25;
pendingTaskSamplePercent = $PendingTasks.GetSamplePercent(180 * TimeInterval_Second);
pendingTaskSamples = pendingTaskSamplePercent < 70 ? startingNumberOfVMs : avg($PendingTasks.GetSample(180 * TimeInterval_Second));
$TargetDedicatedNodes=min(maxNumberofVMs, pendingTaskSamples);
$NodeDeallocationOption = taskcompletion;
"""


def refreshed(pool):
    return Pool.objects.get(pk=pool.pk)


def test_enable_evaluates_at_once_and_resizes_toward_the_formulas_targets():
    pool = PoolFactory()
    after = ops.enable_auto_scale(
        pool, formula="$TargetDedicatedNodes=2", evaluation_interval=timedelta(minutes=6)
    )
    after = refreshed(after)
    assert (after.enable_auto_scale, after.auto_scale_formula) == (True, "$TargetDedicatedNodes=2")
    assert (after.target_dedicated_nodes, after.allocation_state) == (2, "resizing")
    assert after.auto_scale_run["results"] == RESULTS_2 and "error" not in after.auto_scale_run
    assert after.auto_scale_evaluation_interval == timedelta(minutes=6)
    assert (
        timedelta(minutes=6)
        <= after.auto_scale_next - after.last_modified
        < timedelta(minutes=6, seconds=5)
    )
    assert after.etag != pool.etag


def test_enable_takes_the_formulas_deallocation_option():
    pool = PoolFactory(target_dedicated_nodes=3)
    after = ops.enable_auto_scale(
        pool, formula="$TargetDedicatedNodes=1; $NodeDeallocationOption=taskcompletion;"
    )
    assert (after.target_dedicated_nodes, after.node_deallocation_option) == (1, "taskcompletion")


def test_a_formula_whose_targets_do_not_change_starts_no_resize():
    pool = PoolFactory(target_dedicated_nodes=2)
    after = ops.enable_auto_scale(pool, formula="$TargetDedicatedNodes=2")
    assert after.allocation_state == "steady"


def test_a_formula_that_fails_as_it_runs_is_enabled_with_the_error_and_the_targets_kept():
    pool = PoolFactory(target_dedicated_nodes=1)
    after = ops.enable_auto_scale(
        pool,
        formula="$TargetDedicatedNodes = avg($ActiveTasks.GetSample(TimeInterval_Minute * 5));",
    )
    after = refreshed(after)
    assert after.enable_auto_scale and after.target_dedicated_nodes == 1
    assert after.auto_scale_run["error"]["code"] == "InsufficientSampleData"


def test_enable_refuses_a_formula_batch_refuses_and_changes_nothing():
    pool = PoolFactory()
    with pytest.raises(BatchError) as info:
        ops.enable_auto_scale(pool, formula="$TargetDedicatedNodes = nosuchfunction(1)")
    assert (info.value.code, info.value.status) == ("AutoScalingFormulaSyntaxError", 400)
    assert dict(info.value.values)["Message"].startswith("Line 1, Col")
    assert refreshed(pool).enable_auto_scale is False


def test_enable_without_a_formula_needs_one_unless_the_pool_is_autoscaled():
    pool = PoolFactory()
    with pytest.raises(BatchError) as info:
        ops.enable_auto_scale(pool)
    assert (info.value.code, dict(info.value.values)["PropertyName"]) == (
        "MissingRequiredProperty",
        "autoScaleFormula",
    )
    ops.enable_auto_scale(pool, formula="$TargetDedicatedNodes=1")
    again = ops.enable_auto_scale(refreshed(pool), evaluation_interval=timedelta(hours=1))
    assert (again.auto_scale_formula, again.auto_scale_evaluation_interval) == (
        "$TargetDedicatedNodes=1",
        timedelta(hours=1),
    )


@pytest.mark.parametrize("interval", [timedelta(minutes=4), timedelta(hours=168, seconds=1)])
def test_enable_refuses_an_interval_out_of_range(interval):
    with pytest.raises(BatchError) as info:
        ops.enable_auto_scale(
            PoolFactory(), formula="$TargetDedicatedNodes=1", evaluation_interval=interval
        )
    assert (info.value.code, dict(info.value.values)["PropertyName"]) == (
        "InvalidPropertyValue",
        "autoScaleEvaluationInterval",
    )


def test_enable_refuses_a_pool_in_a_manual_resize():
    with pytest.raises(BatchError) as info:
        ops.enable_auto_scale(
            PoolFactory(allocation_state="resizing"), formula="$TargetDedicatedNodes=1"
        )
    assert (info.value.code, info.value.status) == ("PoolBeingResized", 409)


STATES = list(itertools.product(Pool.State.values, Pool.AllocationState.values, [False, True]))


@pytest.mark.parametrize("state, allocation, autoscale", STATES)
def test_can_enable_agrees_with_enable(state, allocation, autoscale):
    pool = PoolFactory(
        state=state,
        allocation_state=allocation,
        enable_auto_scale=autoscale,
        auto_scale_formula="$TargetDedicatedNodes=0" if autoscale else "",
    )
    predicted = ops.can_enable_auto_scale(pool)
    try:
        ops.enable_auto_scale(pool, formula="$TargetDedicatedNodes=1")
        outcome = None
    except BatchError as error:
        outcome = error.code
    assert outcome == (predicted.code if predicted else None)


def test_disable_keeps_the_targets_and_drops_the_formula():
    pool = ops.enable_auto_scale(PoolFactory(), formula="$TargetDedicatedNodes=2")
    after = refreshed(ops.disable_auto_scale(pool))
    assert (after.enable_auto_scale, after.auto_scale_formula, after.auto_scale_run) == (
        False,
        "",
        None,
    )
    assert after.target_dedicated_nodes == 2 and after.etag != pool.etag


@pytest.mark.parametrize("state, allocation, autoscale", STATES)
def test_can_disable_agrees_with_disable(state, allocation, autoscale):
    pool = PoolFactory(state=state, allocation_state=allocation, enable_auto_scale=autoscale)
    predicted = ops.can_disable_auto_scale(pool)
    try:
        ops.disable_auto_scale(pool)
        outcome = None
    except BatchError as error:
        outcome = error.code
    assert outcome == (predicted.code if predicted else None)


def test_evaluate_answers_the_run_and_applies_nothing():
    pool = ops.enable_auto_scale(PoolFactory(), formula="$TargetDedicatedNodes=2")
    run = ops.evaluate_auto_scale(pool, formula="$TargetDedicatedNodes=3")
    assert (
        run["results"]
        == "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    )
    assert run["timestamp"].endswith("Z") and "error" not in run
    after = refreshed(pool)
    assert (after.target_dedicated_nodes, after.auto_scale_formula, after.etag) == (
        2,
        "$TargetDedicatedNodes=2",
        pool.etag,
    )


def test_evaluate_answers_a_run_time_failure_in_the_run():
    pool = ops.enable_auto_scale(PoolFactory(), formula="$TargetDedicatedNodes=1")
    run = ops.evaluate_auto_scale(
        pool,
        formula="$TargetDedicatedNodes = avg($CPUPercent.GetSample(TimeInterval_Minute * 10));",
    )
    assert run["error"]["code"] == "InsufficientSampleData"
    assert run["error"]["values"][0]["name"] == "Message"


def test_evaluate_refuses_an_invalid_formula():
    pool = ops.enable_auto_scale(PoolFactory(), formula="$TargetDedicatedNodes=1")
    with pytest.raises(BatchError) as info:
        ops.evaluate_auto_scale(pool, formula="$TargetDedicatedNodes = = 1")
    assert (info.value.code, info.value.status) == ("AutoScalingFormulaSyntaxError", 400)


def test_evaluate_refuses_a_pool_without_autoscale():
    with pytest.raises(BatchError) as info:
        ops.evaluate_auto_scale(PoolFactory(), formula="$TargetDedicatedNodes=1")
    assert (info.value.code, info.value.status) == ("OperationNotValidOnPool", 409)


@pytest.mark.parametrize("state, allocation, autoscale", STATES)
def test_can_evaluate_agrees_with_evaluate(state, allocation, autoscale):
    pool = PoolFactory(state=state, allocation_state=allocation, enable_auto_scale=autoscale)
    predicted = ops.can_evaluate_auto_scale(pool)
    try:
        ops.evaluate_auto_scale(pool, formula="$TargetDedicatedNodes=1")
        outcome = None
    except BatchError as error:
        outcome = error.code
    assert outcome == (predicted.code if predicted else None)


def test_the_periodic_evaluation_runs_when_due_and_sees_new_samples():
    pool = ops.enable_auto_scale(PoolFactory(), formula=PENDING_TASKS)
    assert refreshed(pool).target_dedicated_nodes == 1  # no samples yet: startingNumberOfVMs
    assert ops.evaluate_due_pools() == 0  # not due
    t = timezone.now()
    for i in range(7):
        PoolSample.objects.create(
            pool=pool, time=t - timedelta(seconds=30 * i), values={"PendingTasks": 8}
        )
    Pool.objects.filter(pk=pool.pk).update(
        auto_scale_next=t - timedelta(seconds=1), allocation_state="steady"
    )
    assert ops.evaluate_due_pools() == 1
    after = refreshed(pool)
    assert (
        after.target_dedicated_nodes,
        after.node_deallocation_option,
        after.allocation_state,
    ) == (8, "taskcompletion", "resizing")
    assert after.auto_scale_next > t + timedelta(minutes=14)
    assert "pendingTaskSamples=8" in after.auto_scale_run["results"]


def test_samples_measure_the_pools_tasks_and_nodes():
    pool = add_pool(AccountFactory(), spec={"id": "p", "vmSize": "a"})
    node = ComputeNodeFactory(pool=pool, cpu_percent=30.0, memory_bytes=1000)
    ComputeNodeFactory(pool=pool, cpu_percent=50.0, memory_bytes=3000)
    job = make_job(pool.account, pool)
    for i in range(3):
        add(job, f"t{i}")
    claim(node, limit=1)
    first = timezone.now()
    assert ops.record_samples(at=first) == 1
    values = PoolSample.objects.get(pool=pool).values
    assert {
        k: values[k]
        for k in (
            "ActiveTasks",
            "RunningTasks",
            "PendingTasks",
            "SampleNodeCount",
            "CPUPercent",
            "MemoryBytes",
        )
    } == {
        "ActiveTasks": 2,
        "RunningTasks": 1,
        "PendingTasks": 3,
        "SampleNodeCount": 2,
        "CPUPercent": 40.0,
        "MemoryBytes": 2000,
    }
    assert "SucceededTasks" not in values  # nothing to compare with yet
    assert ops.record_samples(at=first + timedelta(seconds=5)) == 0  # not a period yet
    finish_attempt(Attempt.objects.get(node=node), exit_code=0)
    assert ops.record_samples(at=first + timedelta(seconds=30)) == 1
    latest = PoolSample.objects.filter(pool=pool).order_by("-time").first().values
    assert (latest["SucceededTasks"], latest["FailedTasks"], latest["RunningTasks"]) == (1, 0, 0)


def test_samples_older_than_the_history_are_dropped():
    pool = PoolFactory()
    old = PoolSample.objects.create(pool=pool, time=timezone.now() - timedelta(hours=26), values={})
    ops.record_samples()
    assert (
        not PoolSample.objects.filter(pk=old.pk).exists()
        and PoolSample.objects.filter(pool=pool).count() == 1
    )


def test_a_formula_reads_the_recorded_samples():
    pool = add_pool(AccountFactory(), spec={"id": "p", "vmSize": "a"})
    job = make_job(pool.account, pool)
    for i in range(5):
        add(job, f"t{i}")
    t = timezone.now()
    for i in range(10):
        ops.record_samples(at=t - timedelta(seconds=30 * (9 - i)))
    ops.enable_auto_scale(
        pool,
        formula="$TargetDedicatedNodes = max($ActiveTasks.GetSample(TimeInterval_Minute * 4));",
    )
    assert refreshed(pool).target_dedicated_nodes == 5


def test_autoscale_changes_the_node_count_through_the_reconciler():
    provider = FakeProvider()
    reconciler = Reconciler(providers={"local": provider})
    pool = add_pool(
        AccountFactory(),
        spec={
            "id": "p",
            "vmSize": "a",
            "enableAutoScale": True,
            "autoScaleFormula": "$TargetDedicatedNodes=2",
        },
    )
    reconciler.run_pass()
    assert ComputeNode.objects.filter(pool=pool).count() == 2
    for node in ComputeNode.objects.filter(pool=pool):
        register_node(pool, node_id=node.node_id, slots=node.slots)
    reconciler.run_pass()
    assert refreshed(pool).allocation_state == "steady"
    ops.enable_auto_scale(
        refreshed(pool), formula="$TargetDedicatedNodes=$CurrentDedicatedNodes - 1"
    )
    reconciler.run_pass()
    assert ComputeNode.objects.filter(pool=pool, pending_action="remove").count() == 1
