"""start_task_started / start_task_ended: startTaskInfo, retries per maxTaskRetryCount,
waitForSuccess holding the node, starttaskfailed."""

import pytest

from tasks.models import ComputeNode
from tasks.operations.nodes import register_node, start_task_ended, start_task_started
from tests.execution import add, claim, make_job, make_pool

pytestmark = pytest.mark.django_db


def pool_with(account, **start_task):
    pool = make_pool(account)
    pool.spec["startTask"] = {"commandLine": "/bin/true", **start_task}
    pool.save()
    return pool


def node_of(pool):
    return register_node(pool, node_id="n1", slots=2, root_dir="/tmp/bs/n1")


def state(node):
    return ComputeNode.objects.get(pk=node.pk).state


def info(node):
    return ComputeNode.objects.get(pk=node.pk).start_task_info


def test_with_wait_for_success_the_node_waits_and_takes_no_work_until_it_succeeds(account):
    pool = pool_with(account, waitForSuccess=True)
    node = node_of(pool)
    start_task_started(node)
    assert state(node) == "waitingforstarttask"
    assert (
        info(node)["state"] == "running"
        and info(node)["retryCount"] == 0
        and "endTime" not in info(node)
    )
    add(make_job(account, pool), "t1")
    assert claim(node) == []
    assert start_task_ended(node, exit_code=0) is False
    assert state(node) == "idle"
    assert {k: info(node)[k] for k in ("state", "exitCode", "result", "retryCount")} == {
        "state": "completed",
        "exitCode": 0,
        "result": "success",
        "retryCount": 0,
    }
    assert len(claim(node)) == 1


def test_wait_for_success_is_the_default(account):
    node = node_of(pool_with(account))
    start_task_started(node)
    assert state(node) == "waitingforstarttask"


def test_a_failure_is_retried_up_to_max_task_retry_count_then_the_node_is_starttaskfailed(account):
    pool = pool_with(account, maxTaskRetryCount=2)
    node = node_of(pool)
    start_task_started(node)
    assert start_task_ended(node, exit_code=3) is True
    assert info(node)["state"] == "completed" and info(node)["exitCode"] == 3  # between tries
    start_task_started(node, retry=True)
    assert (info(node)["state"], info(node)["retryCount"]) == ("running", 1)
    assert info(node)["lastRetryTime"] == info(node)["startTime"]
    assert state(node) == "waitingforstarttask"
    assert start_task_ended(node, exit_code=3) is True
    start_task_started(node, retry=True)
    assert start_task_ended(node, exit_code=4) is False
    assert state(node) == "starttaskfailed"
    assert {k: info(node)[k] for k in ("state", "exitCode", "result", "retryCount")} == {
        "state": "completed",
        "exitCode": 4,
        "result": "failure",
        "retryCount": 2,
    }
    assert info(node)["failureInfo"]["code"] == "FailureExitCode"
    add(make_job(account, pool), "t1")
    assert claim(node) == []


def test_minus_one_retries_without_limit(account):
    node = node_of(pool_with(account, maxTaskRetryCount=-1))
    start_task_started(node)
    for _ in range(5):
        assert start_task_ended(node, exit_code=1) is True
        start_task_started(node, retry=True)
    assert info(node)["retryCount"] == 5


def test_a_command_that_cannot_start_fails_without_retry(account):
    node = node_of(pool_with(account, maxTaskRetryCount=3))
    start_task_started(node)
    assert (
        start_task_ended(
            node,
            exit_code=None,
            failure_code="CommandProgramNotFound",
            failure_message="The program nope was not found on PATH.",
        )
        is False
    )
    assert state(node) == "starttaskfailed"
    assert "exitCode" not in info(node)
    assert info(node)["failureInfo"] == {
        "category": "usererror",
        "code": "CommandProgramNotFound",
        "message": "The program nope was not found on PATH.",
    }


def test_without_wait_for_success_the_node_works_at_once_and_a_failure_does_not_stop_it(account):
    pool = pool_with(account, waitForSuccess=False)
    node = node_of(pool)
    start_task_started(node)
    assert state(node) == "idle"
    add(make_job(account, pool), "t1")
    assert len(claim(node)) == 1
    assert start_task_ended(node, exit_code=1) is False
    assert state(node) == "idle"
    assert info(node)["result"] == "failure"


def test_a_node_ordered_to_reboot_while_its_start_task_runs_stays_rebooting(account):
    node = node_of(pool_with(account))
    start_task_started(node)
    ComputeNode.objects.filter(pk=node.pk).update(state="rebooting", pending_action="reboot")
    start_task_ended(node, exit_code=0)
    assert state(node) == "rebooting"
