"""tasks.operations.waiting.explain_waiting against the claim: for each reason, while it
holds no node takes the task; once it is gone, the reason says so and a node does."""

import pytest

from tasks.models import ComputeNode, Job, Task
from tasks.operations import claim_scan
from tasks.operations.jobs import disable_job, enable_job
from tasks.operations.tasks import delete_task, reactivate_task
from tasks.operations.waiting import explain_waiting
from tests.execution import add, claim, claimed_ids, finish, fresh, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db

MULTI = {"multiInstanceSettings": {"numberOfInstances": 2, "coordinationCommandLine": "/bin/true"}}


def why(task: Task):
    return explain_waiting(fresh(task))


def code(task: Task) -> str:
    return why(task).code


@pytest.fixture
def pool(account):
    return make_pool(account)


def test_a_task_that_is_not_active_has_no_reason(account, pool):
    node = make_node(pool)
    task = add(make_job(account, pool), "t1")
    [attempt] = claim(node)
    assert why(task) is None
    finish(attempt, 0)
    assert why(task) is None


def test_an_eligible_task_is_the_one_the_claim_takes(account, pool):
    node = make_node(pool)
    task = add(make_job(account, pool), "t1")
    assert code(task) == "eligible"
    assert claimed_ids(node) == ["t1"]


def test_a_failed_dependency_blocks_for_good_until_it_is_reactivated_and_succeeds(account, pool):
    node = make_node(pool, slots=1)
    job = make_job(account, pool, usesTaskDependencies=True)
    bad = add(job, "transform-bad", "exit 5")
    [attempt] = claim(node)
    finish(attempt, 5)
    load = add(job, "load", dependsOn={"taskIds": ["transform-bad"]})
    reason = why(load)
    assert (reason.code, reason.forever, reason.facts["task_id"], reason.facts["exit_code"]) == (
        "dependency_failed",
        True,
        "transform-bad",
        5,
    )
    assert "transform-bad" in reason.message and "exit code 5" in reason.message
    assert claim(node) == []
    reactivate_task(fresh(bad))
    assert code(load) == "dependencies_waiting"
    [again] = claim(node)
    assert again.task_id == bad.pk
    finish(again, 0)
    assert code(load) == "eligible"
    assert claimed_ids(node) == ["load"]


def test_a_failed_dependency_whose_exit_options_satisfy_does_not_block(account, pool):
    node = make_node(pool, slots=1)
    job = make_job(account, pool, usesTaskDependencies=True)
    add(
        job,
        "soft",
        "exit 3",
        exitConditions={"exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "satisfy"}}]},
    )
    [attempt] = claim(node)
    finish(attempt, 3)
    after = add(job, "after", dependsOn={"taskIds": ["soft"]})
    assert code(after) == "eligible"
    assert claimed_ids(node) == ["after"]


def test_dependencies_still_running_are_counted(account, pool):
    node = make_node(pool, slots=1)
    job = make_job(account, pool, usesTaskDependencies=True)
    add(job, "1")
    add(job, "2")
    last = add(job, "last", dependsOn={"taskIdRanges": [{"start": 1, "end": 2}]})
    [first] = claim(node)
    reason = why(last)
    assert (reason.code, reason.facts) == ("dependencies_waiting", {"satisfied": 0, "total": 2})
    finish(first, 0)
    assert why(last).facts == {"satisfied": 1, "total": 2}
    [second] = claim(node)
    assert second.task.task_id == "2"
    finish(second, 0)
    assert code(last) == "eligible"
    assert claimed_ids(node) == ["last"]


def test_a_disabled_job_runs_nothing_until_enabled(account, pool):
    node = make_node(pool)
    job = make_job(account, pool)
    task = add(job, "t1")
    disable_job(job, disable_tasks="requeue")
    assert code(task) == "job_disabled"
    assert claim(node) == []
    enable_job(Job.objects.get(pk=job.pk))
    assert code(task) == "eligible"
    assert claimed_ids(node) == ["t1"]


def test_a_job_at_max_parallel_tasks_says_how_many_run(account, pool):
    node = make_node(pool, slots=4)
    job = make_job(account, pool, maxParallelTasks=1)
    add(job, "a")
    b = add(job, "b")
    [running] = claim(node)
    reason = why(b)
    assert (reason.code, reason.facts) == ("max_parallel", {"running": 1, "limit": 1})
    assert claim(node) == []
    finish(running, 0)
    assert code(b) == "eligible"
    assert claimed_ids(node) == ["b"]


def test_a_pool_with_no_nodes(account, pool):
    task = add(make_job(account, pool), "t1")
    reason = why(task)
    assert reason.code == "no_nodes" and pool.pool_id in reason.message
    node = make_node(pool)
    assert code(task) == "eligible"
    assert claimed_ids(node) == ["t1"]


@pytest.mark.parametrize(
    "change",
    [
        {"state": ComputeNode.State.STARTING},
        {"scheduling_enabled": False},
        {"state": ComputeNode.State.STARTTASKFAILED},
    ],
)
def test_a_pool_whose_nodes_take_no_work_names_their_states(account, pool, change):
    node = make_node(pool)
    ComputeNode.objects.filter(pk=node.pk).update(**change)
    task = add(make_job(account, pool), "t1")
    reason = why(task)
    assert reason.code == "no_node_takes_work"
    shown = change.get("state") or "scheduling disabled"
    assert reason.facts["states"] == {shown: 1} and shown in reason.message
    assert claim(node) == []
    ComputeNode.objects.filter(pk=node.pk).update(
        state=ComputeNode.State.IDLE, scheduling_enabled=True
    )
    assert code(task) == "eligible"
    assert claimed_ids(node) == ["t1"]


def test_a_multi_instance_task_needs_that_many_nodes(account, pool):
    node = make_node(pool, "node-1")
    task = add(make_job(account, pool), "mpi", **MULTI)
    reason = why(task)
    assert (reason.code, reason.facts) == ("needs_nodes", {"wanted": 2, "nodes": 1})
    assert claim(node) == []
    make_node(pool, "node-2")
    assert code(task) == "eligible"
    assert claimed_ids(node) == ["mpi"]


def test_a_multi_instance_task_needs_its_nodes_free_at_once(account, pool):
    first, second = make_node(pool, "node-1", slots=1), make_node(pool, "node-2", slots=1)
    job = make_job(account, pool)
    add(job, "busy")
    [busy] = claim(second)
    task = add(job, "mpi", **MULTI)
    reason = why(task)
    assert (reason.code, reason.facts) == ("needs_nodes_at_once", {"wanted": 2, "free": 1})
    assert "Needs 2 nodes at once, 1 free" in reason.message
    assert claim(first) == []
    finish(busy, 0)
    assert code(task) == "eligible"
    assert claimed_ids(first) == ["mpi"]


def test_all_slots_busy(account, pool):
    node = make_node(pool, slots=1)
    job = make_job(account, pool)
    add(job, "a")
    b = add(job, "b")
    [running] = claim(node)
    reason = why(b)
    assert (reason.code, reason.facts) == ("slots_busy", {"used": 1, "total": 1})
    assert claim(node) == []
    finish(running, 0)
    assert code(b) == "eligible"
    assert claimed_ids(node) == ["b"]


def test_more_required_slots_than_any_node_has_can_never_run_there(account, pool):
    small = make_node(pool, "small", slots=2)
    task = add(make_job(account, pool), "big", requiredSlots=3)
    reason = why(task)
    assert (reason.code, reason.forever, reason.facts) == (
        "slots_exceed_nodes",
        True,
        {"required": 3, "largest": 2},
    )
    assert claim(small) == []
    large = make_node(pool, "large", slots=4)
    assert code(task) == "eligible"
    assert claimed_ids(large) == ["big"]


def test_a_job_whose_pool_does_not_exist(account):
    job = make_job(account, make_pool(account, "elsewhere"), "j")
    Job.objects.filter(pk=job.pk).update(pool_id="later")
    task = add(Job.objects.get(pk=job.pk), "t1")
    reason = why(task)
    assert (reason.code, reason.facts["pool_id"]) == ("no_pool", "later")
    node = make_node(make_pool(account, "later"))
    assert code(task) == "eligible"
    assert claimed_ids(node) == ["t1"]


def test_a_task_whose_lifetime_expired_is_never_scheduled(account, pool):
    node = make_node(pool)
    task = add(make_job(account, pool), "t1")
    Task.objects.filter(pk=task.pk).update(lifetime_expired=True)
    reason = why(task)
    assert (reason.code, reason.forever) == ("lifetime_expired", True)
    assert claim(node) == []


def test_a_retried_task_is_eligible_and_says_which_retry(account, pool):
    node = make_node(pool, slots=1)
    task = add(make_job(account, pool), "t1", "exit 1", constraints={"maxTaskRetryCount": 1})
    [attempt] = claim(node)
    finish(attempt, 1)
    reason = why(task)
    assert reason.code == "eligible" and "retry 1" in reason.message
    assert claimed_ids(node) == ["t1"]


def test_a_task_behind_more_active_tasks_than_a_claim_reads_waits_for_them(
    account, pool, monkeypatch
):
    monkeypatch.setattr(claim_scan, "CLAIM_SCAN_LIMIT", 5)
    node = make_node(pool, slots=1)
    job = make_job(account, pool, usesTaskDependencies=True)
    add(job, "bad", "exit 5")
    [attempt] = claim(node)
    finish(attempt, 5)
    stuck = [add(job, f"stuck-{i}", dependsOn={"taskIds": ["bad"]}) for i in range(6)]
    late = add(job, "late")
    reason = why(late)
    assert (reason.code, reason.facts) == ("behind_scan_limit", {"older": 5, "limit": 5})
    assert claim(node, limit=1) == []
    for task in stuck[:2]:
        delete_task(fresh(task))
    assert code(late) == "eligible"
    assert claimed_ids(node, limit=1) == ["late"]


def test_a_task_behind_more_active_tasks_than_a_claim_reads_is_reached_by_a_later_pass(
    account, pool, monkeypatch
):
    monkeypatch.setattr(claim_scan, "CLAIM_SCAN_LIMIT", 5)
    node = make_node(pool, slots=1)
    job = make_job(account, pool, usesTaskDependencies=True)
    add(job, "bad", "exit 5")
    [attempt] = claim(node)
    finish(attempt, 5)
    for i in range(6):
        add(job, f"stuck-{i}", dependsOn={"taskIds": ["bad"]})
    late = add(job, "late")
    reason = why(late)
    assert reason.code == "behind_scan_limit"
    assert "goes on from where it stopped in the next" in reason.message
    assert claim(node, limit=1) == []
    assert claimed_ids(node, limit=1) == ["late"]


def test_a_dependency_not_added_yet_is_waited_for_and_named(account, pool):
    node = make_node(pool, slots=1)
    job = make_job(account, pool, usesTaskDependencies=True)
    task = add(job, "after", dependsOn={"taskIds": ["later"]})
    reason = why(task)
    assert (
        reason.code == "dependencies_waiting"
        and "1 of them not added to the job yet" in reason.message
    )
    assert claim(node) == []
    add(job, "later")
    [attempt] = claim(node)
    finish(attempt, 0)
    assert code(task) == "eligible"
    assert claimed_ids(node) == ["after"]
