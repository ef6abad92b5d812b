"""`$filter` compilation (tasks.api.odata): Batch names, operators, literals and 400s."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Q

from tasks.api.odata import (
    MAX_CONDITIONS,
    file_name_prefix,
    job_filter,
    node_filter,
    pool_filter,
    task_filter,
)
from tasks.errors import MAX_DETAIL, BatchError
from tasks.models import ComputeNode, Job, Pool, Task
from tests.factories import ComputeNodeFactory, JobFactory, PoolFactory, TaskFactory

pytestmark = pytest.mark.django_db

JAN = datetime(2024, 1, 1, tzinfo=UTC)
JUN = datetime(2024, 6, 1, tzinfo=UTC)
MAR = "DateTime'2024-03-01T00:00:00Z'"


@pytest.fixture
def job() -> Job:
    return JobFactory()


def task_ids(text: str) -> set[str]:
    return set(Task.objects.filter(task_filter(text)).values_list("task_id", flat=True))


def job_ids(text: str) -> set[str]:
    return set(Job.objects.filter(job_filter(text)).values_list("job_id", flat=True))


def pool_ids(text: str) -> set[str]:
    return set(Pool.objects.filter(pool_filter(text)).values_list("pool_id", flat=True))


def node_ids(text: str) -> set[str]:
    return set(ComputeNode.objects.filter(node_filter(text)).values_list("node_id", flat=True))


def assert_invalid(func, text: str) -> BatchError:
    with pytest.raises(BatchError) as info:
        func(text)
    err = info.value
    assert err.code == "InvalidQueryParameterValue"
    assert err.status == 400
    assert ("QueryParameterName", "$filter") in err.values
    echoed = dict(err.values)["QueryParameterValue"]
    assert echoed == text if len(text) <= MAX_DETAIL else echoed.startswith(text[:MAX_DETAIL])
    reasons = [value for name, value in err.values if name == "Reason"]
    assert reasons and reasons[0]
    return err


def reason(err: BatchError) -> str:
    return dict(err.values)["Reason"]


# --- empty filters -----------------------------------------------------------------------


@pytest.mark.parametrize("func", [task_filter, job_filter, pool_filter, node_filter])
@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_an_empty_or_blank_filter_is_no_filter(func, text):
    assert func(text) == Q()


def test_an_empty_filter_lists_every_task(job):
    TaskFactory(job=job, task_id="a")
    TaskFactory(job=job, task_id="b", succeeded=True)
    assert task_ids("") == {"a", "b"}


def test_surrounding_whitespace_is_ignored(job):
    TaskFactory(job=job, task_id="a")
    TaskFactory(job=job, task_id="b", running=True)
    assert task_ids("  state eq 'active'  ") == {"a"}


# --- tasks: id ---------------------------------------------------------------------------


def test_id_eq_is_case_insensitive(job):
    TaskFactory(job=job, task_id="MyTask")
    TaskFactory(job=job, task_id="other")
    assert task_ids("id eq 'mytask'") == {"MyTask"}
    assert task_ids("id eq 'MYTASK'") == {"MyTask"}


def test_startswith_on_id_is_case_insensitive(job):
    for task_id in ["ABC-1", "abc-2", "abd"]:
        TaskFactory(job=job, task_id=task_id)
    assert task_ids("startswith(id,'ABC')") == {"ABC-1", "abc-2"}
    assert task_ids("startswith(id, 'abc')") == {"ABC-1", "abc-2"}


def test_startswith_treats_like_wildcards_literally(job):
    TaskFactory(job=job, task_id="a_1")
    TaskFactory(job=job, task_id="ab1")
    assert task_ids("startswith(id,'a_')") == {"a_1"}
    assert task_ids("startswith(id,'%')") == set()


def test_id_ordering_operators_compare_lowercased_ids(job):
    for task_id in ["t1", "T2", "t3", "t4"]:
        TaskFactory(job=job, task_id=task_id)
    assert task_ids("id gt 't2'") == {"t3", "t4"}
    assert task_ids("id ge 'T2'") == {"T2", "t3", "t4"}
    assert task_ids("id lt 't2'") == {"t1"}
    assert task_ids("id le 't2'") == {"t1", "T2"}
    assert task_ids("id ne 't2'") == {"t1", "t3", "t4"}


# --- tasks: state and result -------------------------------------------------------------


def test_state_eq_and_ne_compare_case_insensitively(job):
    TaskFactory(job=job, task_id="waiting")
    TaskFactory(job=job, task_id="busy", running=True)
    TaskFactory(job=job, task_id="done", succeeded=True)
    TaskFactory(job=job, task_id="prep", state=Task.State.PREPARING)
    assert task_ids("state eq 'Running'") == {"busy"}
    assert task_ids("state eq 'preparing'") == {"prep"}
    assert task_ids("state ne 'ACTIVE'") == {"busy", "done", "prep"}
    assert task_ids("state eq 'completed'") == {"done"}


def test_result_eq_accepts_the_capitalised_sample_value(job):
    TaskFactory(job=job, task_id="bad", failed=True)
    TaskFactory(job=job, task_id="good", succeeded=True)
    TaskFactory(job=job, task_id="busy", running=True)
    assert task_ids("executionInfo/result eq 'Failure'") == {"bad"}
    assert task_ids("executionInfo/result eq 'success'") == {"good"}


def test_result_ne_skips_tasks_without_a_result(job):
    TaskFactory(job=job, task_id="bad", failed=True)
    TaskFactory(job=job, task_id="good", succeeded=True)
    TaskFactory(job=job, task_id="busy", running=True)
    assert task_ids("executionInfo/result ne 'success'") == {"bad"}


# --- tasks: exit code --------------------------------------------------------------------


@pytest.fixture
def exit_codes(job) -> None:
    TaskFactory(job=job, task_id="none")
    for task_id, code in [("zero", 0), ("one", 1), ("minus", -1), ("three", 3)]:
        TaskFactory(job=job, task_id=task_id, succeeded=True, exit_code=code)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("executionInfo/exitCode eq 0", {"zero"}),
        ("executionInfo/exitCode ne 0", {"one", "minus", "three"}),
        ("executionInfo/exitCode lt 0", {"minus"}),
        ("executionInfo/exitCode le 0", {"minus", "zero"}),
        ("executionInfo/exitCode gt 0", {"one", "three"}),
        ("executionInfo/exitCode ge 1", {"one", "three"}),
        ("executionInfo/exitCode eq -1", {"minus"}),
        ("0 lt executionInfo/exitCode", {"one", "three"}),
    ],
)
def test_exit_code_comparisons_never_match_tasks_without_an_exit_code(exit_codes, text, expected):
    assert task_ids(text) == expected


def test_parenthesised_or_finds_nonzero_exit_codes(exit_codes):
    text = "(executionInfo/exitCode lt 0) or (executionInfo/exitCode gt 0)"
    assert task_ids(text) == {"minus", "one", "three"}


def test_not_negates_a_whole_condition_including_missing_values(exit_codes):
    # OData logic is two-valued: `exitCode eq 0` is false without an exit code, so its
    # negation is true there.
    assert task_ids("not (executionInfo/exitCode eq 0)") == {"none", "one", "minus", "three"}
    assert task_ids("not(executionInfo/exitCode ne 0)") == {"none", "zero"}


# --- tasks: times ------------------------------------------------------------------------

TASK_TIMES = [
    ("creationTime", "creation_time"),
    ("stateTransitionTime", "state_transition_time"),
    ("lastModified", "last_modified"),
    ("lastModifiedTime", "last_modified"),
    ("executionInfo/startTime", "start_time"),
    ("executionInfo/endTime", "end_time"),
]


@pytest.mark.parametrize(("prop", "field"), TASK_TIMES)
def test_task_datetime_properties_support_every_comparison(job, prop, field):
    TaskFactory(job=job, task_id="jan", **{field: JAN})
    TaskFactory(job=job, task_id="jun", **{field: JUN})
    assert task_ids(f"{prop} lt {MAR}") == {"jan"}
    assert task_ids(f"{prop} le DateTime'2024-01-01T00:00:00Z'") == {"jan"}
    assert task_ids(f"{prop} gt {MAR}") == {"jun"}
    assert task_ids(f"{prop} ge DateTime'2024-06-01T00:00:00Z'") == {"jun"}
    assert task_ids(f"{prop} eq DateTime'2024-01-01T00:00:00Z'") == {"jan"}
    assert task_ids(f"{prop} ne DateTime'2024-01-01T00:00:00Z'") == {"jun"}


@pytest.mark.parametrize("prop", ["executionInfo/startTime", "executionInfo/endTime"])
def test_execution_times_ne_skips_tasks_that_have_not_run(job, prop):
    TaskFactory(job=job, task_id="never")
    TaskFactory(job=job, task_id="ran", start_time=JUN, end_time=JUN)
    assert task_ids(f"{prop} ne {MAR}") == {"ran"}
    assert task_ids(f"{prop} lt {MAR}") == set()


@pytest.mark.parametrize(
    "literal",
    [
        "DateTime'2024-01-01T00:00:00.1234567+00:00'",
        "datetime'2024-01-01T00:00:00.1234567Z'",
        "DATETIME'2024-01-01T00:00:00.123456Z'",
        "DateTime'2024-01-01T02:00:00.1234567+02:00'",
        "DateTime'2024-01-01T00:00:00.123456'",
    ],
)
def test_datetime_literal_forms_all_mean_the_same_instant(job, literal):
    instant = JAN + timedelta(microseconds=123456)
    TaskFactory(job=job, task_id="hit", creation_time=instant)
    TaskFactory(job=job, task_id="miss", creation_time=instant + timedelta(microseconds=1))
    assert task_ids(f"creationTime eq {literal}") == {"hit"}


def test_datetime_literals_become_aware_utc_datetimes():
    q = task_filter("creationTime gt DateTime'2024-01-01T01:00:00+01:00'")
    ((lookup, value),) = q.children
    assert lookup == "creation_time__gt"
    assert value == JAN and value.utcoffset() == timedelta(0)


def test_datetime_text_inside_a_string_literal_is_left_alone():
    q = task_filter("id eq 'DateTime''2024-01-01T00:00:00Z'''")
    assert q == Q(id_key__exact="datetime'2024-01-01t00:00:00z'")


# --- combinations and spelling -----------------------------------------------------------


def test_and_or_not_and_parentheses_combine(job):
    TaskFactory(job=job, task_id="a1")
    TaskFactory(job=job, task_id="a2", running=True)
    TaskFactory(job=job, task_id="b1", failed=True)
    TaskFactory(job=job, task_id="b2", succeeded=True)
    assert task_ids("startswith(id,'a') and state eq 'active'") == {"a1"}
    assert task_ids("state eq 'running' or executionInfo/result eq 'failure'") == {"a2", "b1"}
    assert task_ids("startswith(id,'b') and not (executionInfo/exitCode eq 0)") == {"b1"}
    assert task_ids(
        "(startswith(id,'a') or executionInfo/exitCode eq 0) and (state ne 'active')"
    ) == {"a2", "b2"}


def test_and_binds_tighter_than_or(job):
    TaskFactory(job=job, task_id="a1")
    TaskFactory(job=job, task_id="b1", succeeded=True)
    TaskFactory(job=job, task_id="c1", running=True)
    text = "state eq 'completed' and executionInfo/exitCode eq 0 or id eq 'c1'"
    assert task_ids(text) == {"b1", "c1"}
    text = "id eq 'c1' or state eq 'completed' and executionInfo/exitCode eq 1"
    assert task_ids(text) == {"c1"}


def test_property_and_function_names_are_also_accepted_in_any_case(job):
    TaskFactory(job=job, task_id="abc", succeeded=True)
    TaskFactory(job=job, task_id="xyz", failed=True)
    assert task_ids("STATE eq 'completed' and ExecutionInfo/ExitCode eq 0") == {"abc"}
    assert task_ids("StartsWith(ID,'A')") == {"abc"}
    assert task_ids("executioninfo/result EQ 'failure' AND Id Ne 'abc'") == {"xyz"}


def test_many_conditions_in_one_chain_are_accepted(job):
    TaskFactory(job=job, task_id="t7")
    text = " or ".join(f"id eq 't{n}'" for n in range(MAX_CONDITIONS))
    assert task_ids(text) == {"t7"}


# --- jobs --------------------------------------------------------------------------------


def test_job_id_eq_and_startswith_are_case_insensitive():
    JobFactory(job_id="Nightly-1")
    JobFactory(job_id="nightly-2")
    JobFactory(job_id="weekly")
    assert job_ids("id eq 'NIGHTLY-1'") == {"Nightly-1"}
    assert job_ids("startswith(id,'Nightly')") == {"Nightly-1", "nightly-2"}
    assert job_ids("id gt 'nightly-1'") == {"nightly-2", "weekly"}
    assert job_ids("id ne 'weekly'") == {"Nightly-1", "nightly-2"}


def test_job_state_accepts_every_batch_state():
    states = ["active", "disabling", "disabled", "enabling", "terminating", "completed", "deleting"]
    for state in states:
        JobFactory(job_id=f"j-{state}", state=state)
    for state in states:
        assert job_ids(f"state eq '{state.upper()}'") == {f"j-{state}"}
    assert job_ids("state ne 'active'") == {f"j-{s}" for s in states[1:]}


@pytest.mark.parametrize(
    ("prop", "field"),
    [
        ("creationTime", "creation_time"),
        ("stateTransitionTime", "state_transition_time"),
        ("lastModified", "last_modified"),
        ("executionInfo/startTime", "start_time"),
        ("executionInfo/endTime", "end_time"),
    ],
)
def test_job_datetime_properties_support_comparisons(prop, field):
    JobFactory(job_id="jan", **{field: JAN})
    JobFactory(job_id="jun", **{field: JUN})
    assert job_ids(f"{prop} lt {MAR}") == {"jan"}
    assert job_ids(f"{prop} ge {MAR}") == {"jun"}
    assert job_ids(f"{prop} eq DateTime'2024-06-01T00:00:00Z'") == {"jun"}


def test_job_end_time_ne_skips_jobs_that_have_not_ended():
    JobFactory(job_id="open")
    JobFactory(job_id="ended", completed=True, end_time=JUN)
    assert job_ids(f"executionInfo/endTime ne {MAR}") == {"ended"}


def test_job_pool_id_is_compared_case_insensitively():
    JobFactory(job_id="a", pool_id="PoolA")
    JobFactory(job_id="b", pool_id="poolb")
    JobFactory(job_id="c", pool_id="other")
    assert job_ids("executionInfo/poolId eq 'poola'") == {"a"}
    assert job_ids("startswith(executionInfo/poolId,'POOL')") == {"a", "b"}
    assert job_ids("executionInfo/poolId ne 'POOLA'") == {"b", "c"}
    assert job_ids("executionInfo/poolId gt 'poola'") == {"b"}
    assert job_ids("executionInfo/poolId le 'POOLA'") == {"a", "c"}


def test_job_filter_rejects_task_properties():
    err = assert_invalid(job_filter, "executionInfo/exitCode eq 0")
    assert "executionInfo/exitCode" in reason(err)


def test_job_state_rejects_a_task_state():
    assert_invalid(job_filter, "state eq 'running'")


# --- pools -------------------------------------------------------------------------------


def test_pool_id_and_state_filters():
    PoolFactory(pool_id="Big-1")
    PoolFactory(pool_id="big-2", state=Pool.State.DELETING)
    PoolFactory(pool_id="small")
    assert pool_ids("startswith(id,'BIG')") == {"Big-1", "big-2"}
    assert pool_ids("id eq 'big-1'") == {"Big-1"}
    assert pool_ids("id lt 'c'") == {"Big-1", "big-2"}
    assert pool_ids("state eq 'Deleting'") == {"big-2"}
    assert pool_ids("state ne 'deleting' and startswith(id,'b')") == {"Big-1"}


@pytest.mark.parametrize(
    ("prop", "field"),
    [
        ("creationTime", "creation_time"),
        ("stateTransitionTime", "state_transition_time"),
        ("lastModified", "last_modified"),
    ],
)
def test_pool_datetime_properties_support_comparisons(prop, field):
    PoolFactory(pool_id="jan", **{field: JAN})
    PoolFactory(pool_id="jun", **{field: JUN})
    assert pool_ids(f"{prop} le {MAR}") == {"jan"}
    assert pool_ids(f"{prop} gt {MAR}") == {"jun"}
    assert pool_ids(f"{prop} ne DateTime'2024-06-01T00:00:00Z'") == {"jan"}


def test_pool_vm_size_allows_eq_ne_and_startswith_in_any_case():
    PoolFactory(pool_id="d2", vm_size="standard_d2s_v3")
    PoolFactory(pool_id="e4", vm_size="Standard_E4s_v3")
    assert pool_ids("vmSize eq 'STANDARD_D2S_V3'") == {"d2"}
    assert pool_ids("vmSize ne 'standard_d2s_v3'") == {"e4"}
    assert pool_ids("startswith(vmSize,'standard_e')") == {"e4"}
    assert_invalid(pool_filter, "vmSize gt 'standard'")


def test_pool_allocation_state_allows_eq_only():
    PoolFactory(pool_id="still")
    PoolFactory(pool_id="moving", allocation_state=Pool.AllocationState.RESIZING)
    assert pool_ids("allocationState eq 'Resizing'") == {"moving"}
    assert pool_ids("allocationState eq 'stopping'") == set()
    assert_invalid(pool_filter, "allocationState ne 'steady'")
    assert_invalid(pool_filter, "allocationState eq 'deleting'")


def test_pool_allocation_state_transition_time_supports_comparisons():
    PoolFactory(pool_id="jan", allocation_state_transition_time=JAN)
    PoolFactory(pool_id="jun", allocation_state_transition_time=JUN)
    PoolFactory(pool_id="never", allocation_state_transition_time=None)
    assert pool_ids(f"allocationStateTransitionTime lt {MAR}") == {"jan"}
    assert pool_ids(f"allocationStateTransitionTime ne {MAR}") == {"jan", "jun"}


def test_pool_enable_auto_scale_takes_a_boolean():
    PoolFactory(pool_id="auto", enable_auto_scale=True)
    PoolFactory(pool_id="fixed")
    assert pool_ids("enableAutoScale eq true") == {"auto"}
    assert pool_ids("enableAutoScale ne true") == {"fixed"}
    assert_invalid(pool_filter, "enableAutoScale eq 'true'")
    assert_invalid(pool_filter, "enableAutoScale gt false")


@pytest.mark.parametrize("text", ["enableInterNodeCommunication eq false"])
def test_pool_properties_batchsite_does_not_keep_are_rejected_as_unsupported(text):
    err = assert_invalid(pool_filter, text)
    assert "not supported by batchsite" in reason(err)


def test_an_unknown_pool_property_is_not_called_unsupported():
    err = assert_invalid(pool_filter, "colour eq 'red'")
    assert "not supported by batchsite" not in reason(err)
    assert "colour" in reason(err)


def test_pool_state_rejects_a_value_outside_the_enum():
    assert_invalid(pool_filter, "state eq 'resizing'")


# --- nodes -------------------------------------------------------------------------------


def test_node_state_eq_and_ne_compare_case_insensitively():
    ComputeNodeFactory(node_id="n-idle")
    ComputeNodeFactory(node_id="n-busy", state=ComputeNode.State.RUNNING)
    ComputeNodeFactory(node_id="n-gone", state=ComputeNode.State.LEAVINGPOOL)
    assert node_ids("state eq 'LeavingPool'") == {"n-gone"}
    assert node_ids("state ne 'idle'") == {"n-busy", "n-gone"}
    assert node_ids("state eq 'idle' or state eq 'running'") == {"n-idle", "n-busy"}


@pytest.mark.parametrize(
    "state",
    [
        "idle",
        "running",
        "starting",
        "offline",
        "unusable",
        "leavingpool",
        "unknown",
        "rebooting",
        "reimaging",
        "creating",
        "waitingforstarttask",
        "starttaskfailed",
        "preempted",
        "upgradingos",
        "deallocated",
        "deallocating",
    ],
)
def test_node_state_accepts_every_batch_node_state(state):
    ComputeNodeFactory(node_id="n", state=ComputeNode.State.STARTING)
    expected = {"n"} if state == "starting" else set()
    assert node_ids(f"state eq '{state}'") == expected


def test_node_state_transition_time_and_id_filters():
    ComputeNodeFactory(node_id="node-1", state_transition_time=JAN)
    ComputeNodeFactory(node_id="node-2", state_transition_time=JUN)
    ComputeNodeFactory(node_id="other", state_transition_time=JUN)
    assert node_ids(f"stateTransitionTime lt {MAR}") == {"node-1"}
    assert node_ids(f"stateTransitionTime ge {MAR}") == {"node-2", "other"}
    assert node_ids("id eq 'node-2'") == {"node-2"}
    assert node_ids("startswith(id,'node-')") == {"node-1", "node-2"}
    assert node_ids("id ne 'other'") == {"node-1", "node-2"}


def test_node_boot_and_allocation_times_support_comparisons():
    ComputeNodeFactory(node_id="old", registered=JAN, allocation_time=JAN)
    ComputeNodeFactory(node_id="new", registered=JUN, allocation_time=None)
    assert node_ids(f"lastBootTime lt {MAR}") == {"old"}
    assert node_ids(f"lastBootTime ge {MAR}") == {"new"}
    assert node_ids(f"allocationTime lt {MAR}") == {"old"}
    assert node_ids(f"allocationTime ne {MAR}") == {"old"}  # no allocation time: no match


def test_node_start_task_info_is_filtered_inside_its_json():
    done = {"state": "completed", "result": "success", "exitCode": 0, "retryCount": 0}
    ComputeNodeFactory(node_id="ok", start_task_info=done)
    ComputeNodeFactory(node_id="bad", start_task_info={**done, "result": "failure", "exitCode": 3})
    ComputeNodeFactory(node_id="busy", start_task_info={"state": "running", "retryCount": 0})
    ComputeNodeFactory(node_id="none", start_task_info=None)
    assert node_ids("startTaskInfo/state eq 'Completed'") == {"ok", "bad"}
    assert node_ids("startTaskInfo/result ne 'success'") == {"bad"}
    assert node_ids("startTaskInfo/exitCode gt 0") == {"bad"}
    assert node_ids("startTaskInfo/exitCode ne 3") == {"ok"}
    assert_invalid(node_filter, "startTaskInfo/state ne 'running'")


@pytest.mark.parametrize(
    "text",
    [
        "startTaskInfo/startTime gt DateTime'2024-01-01T00:00:00Z'",
        "startTaskInfo/endTime lt DateTime'2024-01-01T00:00:00Z'",
    ],
)
def test_node_properties_batchsite_does_not_keep_are_rejected_as_unsupported(text):
    err = assert_invalid(node_filter, text)
    assert "not supported by batchsite" in reason(err)


@pytest.mark.parametrize("text", ["state eq 'active'", "startswith(state,'i')", "state lt 'idle'"])
def test_node_state_rejects_task_values_and_other_operators(text):
    assert_invalid(node_filter, text)


# --- 400s --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "state eq",
        "state eq 'active",
        "(state eq 'active'",
        "state = 'active'",
        "state eq 'active' and",
        "state eq 'active' xor id eq 'a'",
        "f(a=1, b=2, c=3)",
        "startswith(id)",
        "unknownfunc(id,'a')",
        "'",
        "()",
    ],
)
def test_a_syntax_error_is_a_400(text):
    assert_invalid(task_filter, text)


@pytest.mark.parametrize(
    "text",
    [
        "foo eq 'x'",
        "executionInfo/foo eq 1",
        "nodeInfo/poolId eq 'p'",
        "executionInfo eq 1",
        "a.b eq 1",
        "startswith(displayName,'x')",
    ],
)
def test_an_unknown_property_is_a_400(text):
    err = assert_invalid(task_filter, text)
    assert "not a property" in reason(err)


@pytest.mark.parametrize(
    "text",
    [
        "startswith(state,'a')",
        "state gt 'active'",
        "executionInfo/result lt 'success'",
        "startswith(executionInfo/exitCode,'1')",
        "startswith(creationTime,'2024')",
        "state in ('active', 'running')",
        "endswith(id,'a')",
        "contains(id,'a')",
    ],
)
def test_an_operator_the_property_does_not_allow_is_a_400(text):
    err = assert_invalid(task_filter, text)
    assert "not allowed" in reason(err) or "not supported" in reason(err)


@pytest.mark.parametrize(
    "text",
    [
        "executionInfo/exitCode eq 'x'",
        "executionInfo/exitCode eq 1.5",
        "executionInfo/exitCode eq null",
        "creationTime gt '2024-01-01T00:00:00Z'",
        "creationTime gt 2024-01-01",
        "creationTime gt 5",
        "id eq 5",
        "state eq true",
        "startswith(id, 1)",
        "executionInfo/result eq DateTime'2024-01-01T00:00:00Z'",
    ],
)
def test_a_literal_of_the_wrong_type_is_a_400(text):
    err = assert_invalid(task_filter, text)
    assert "literal" in reason(err)


@pytest.mark.parametrize(
    "text",
    ["state eq 'deleted'", "state ne 'succeeded'", "executionInfo/result eq 'ok'", "state eq ''"],
)
def test_an_invalid_enum_value_is_a_400(text):
    err = assert_invalid(task_filter, text)
    assert "not a valid value" in reason(err)


@pytest.mark.parametrize(
    "text",
    [
        "creationTime gt DateTime'yesterday'",
        "creationTime gt DateTime'2024-13-01T00:00:00Z'",
        "creationTime gt DateTime'2024-01-01'",
        "creationTime gt DateTime'9999-12-31T23:59:59-01:00'",
    ],
)
def test_an_invalid_datetime_literal_is_a_400(text):
    err = assert_invalid(task_filter, text)
    assert "DateTime" in reason(err)


@pytest.mark.parametrize("code", ["2147483648", "-2147483649", "99999999999999999999"])
def test_an_exit_code_beyond_int32_is_a_400(code):
    assert_invalid(task_filter, f"executionInfo/exitCode eq {code}")


def test_an_exit_code_at_the_int32_limits_is_accepted(job):
    TaskFactory(job=job, task_id="max", succeeded=True, exit_code=2**31 - 1)
    assert task_ids("executionInfo/exitCode eq 2147483647") == {"max"}
    assert task_ids("executionInfo/exitCode ge -2147483648") == {"max"}


@pytest.mark.parametrize(
    "text",
    [
        "id",
        "'abc'",
        "true",
        "executionInfo/exitCode add 1 eq 2",
        "state eq id",
        "not state eq 'active'",
        "startswith(id,'a') eq true",
        "-executionInfo/exitCode eq 1",
    ],
)
def test_something_that_is_not_a_property_literal_condition_is_a_400(text):
    assert_invalid(task_filter, text)


def test_a_nul_character_in_a_string_is_a_400():
    assert_invalid(task_filter, "id eq 'a\x00b'")


def test_too_many_conditions_is_a_400():
    text = " or ".join(f"id eq 't{n}'" for n in range(MAX_CONDITIONS + 1))
    assert "conditions" in reason(assert_invalid(task_filter, text))


def test_deep_nesting_is_a_400_not_a_recursion_error():
    text = "not (" * 500 + "id eq 'a'" + ")" * 500
    assert "nested" in reason(assert_invalid(task_filter, text))


def test_garbage_either_compiles_to_a_runnable_query_or_is_a_400(job):
    # Whatever a client sends, the answer is a result or a 400, never a 500.
    TaskFactory(job=job, task_id="t1", failed=True)
    pieces = [
        "id",
        "state",
        "executionInfo/exitCode",
        "creationTime",
        "eq",
        " eq ",
        " ne ",
        " gt ",
        " and ",
        " or ",
        "not ",
        "(",
        ")",
        ",",
        "'a'",
        "''",
        "'",
        "0",
        "-1",
        "1.5",
        "null",
        "true",
        "startswith(",
        "DateTime'2024-01-01T00:00:00Z'",
        "datetime'",
        "/",
        " ",
        "all",
        "any(x: x eq 1)",
        "2024-01-01",
        "duration'P1D'",
        "geo.distance(",
        "\x00",
        "$",
        "%",
    ]
    rng = random.Random(20240101)
    for _ in range(400):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        try:
            q = task_filter(text)
        except BatchError as err:
            assert err.code == "InvalidQueryParameterValue", text
            continue
        list(Task.objects.filter(q))


# --- file names --------------------------------------------------------------------------


def test_file_name_prefix_returns_the_startswith_literal():
    assert file_name_prefix("startswith(name,'std')") == "std"
    assert file_name_prefix("startswith(name, 'wd/out')") == "wd/out"
    assert file_name_prefix("StartsWith(Name,'Std')") == "Std"
    assert file_name_prefix("startswith(name,'it''s')") == "it's"


@pytest.mark.parametrize("text", ["", "  "])
def test_file_name_prefix_of_no_filter_is_empty(text):
    assert file_name_prefix(text) == ""


@pytest.mark.parametrize(
    "text",
    [
        "name eq 'stdout.txt'",
        "startswith(id,'std')",
        "startswith(name,'a') and startswith(name,'b')",
        "not startswith(name,'a')",
        "endswith(name,'.txt')",
        "startswith(name, 1)",
        "startswith(name,",
        "startswith(name,'a\x00')",
        "x.startswith(name,'a')",
    ],
)
def test_file_name_prefix_rejects_anything_but_startswith_on_name(text):
    assert_invalid(file_name_prefix, text)
