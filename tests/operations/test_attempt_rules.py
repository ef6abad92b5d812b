"""tasks.operations.attempt_rules: the attempt lifecycle's Batch rules over plain values,
without a database (no django_db mark: a query here would fail the test)."""

from dataclasses import dataclass, replace

import pytest

from tasks import exit_conditions
from tasks.operations import attempt_rules as rules
from tasks.operations.attempt_rules import Ended, Placement


def ended(**kwargs) -> Ended:
    values = {
        "exit_code": 0,
        "failed": None,
        "cancel_requested": "",
        "task_running": True,
        "subtask_id": None,
        "number_of_instances": 1,
        "retry_count": 0,
        "max_task_retry_count": 0,
    }
    values.update(kwargs)
    if "failed" not in kwargs:
        values["failed"] = rules.failure_of(values["exit_code"])
    return Ended(**values)


# --- exit codes and exit options ---------------------------------------------------------

RANGES = {
    "exitConditions": {
        "exitCodes": [{"code": 3, "exitOptions": {"jobAction": "disable"}}],
        "exitCodeRanges": [
            {"start": 2, "end": 4, "exitOptions": {"dependencyAction": "satisfy"}},
            {"start": 10, "end": 20, "exitOptions": {"jobAction": "none"}},
        ],
        "default": {"jobAction": "none", "dependencyAction": "satisfy"},
    }
}


def test_exit_zero_without_conditions_takes_no_job_action_and_satisfies():
    assert exit_conditions.exit_options({}, 0, None) == {
        "jobAction": "none",
        "dependencyAction": "satisfy",
    }


def test_a_failure_without_conditions_terminates_the_job_and_blocks():
    assert exit_conditions.exit_options({}, 1, rules.failure_of(1)) == {
        "jobAction": "terminate",
        "dependencyAction": "block",
    }


def test_an_exit_codes_entry_wins_over_a_range_and_unset_members_take_failure_defaults():
    # 3 is in exitCodes and in the 2..4 range: the exitCodes entry applies alone.
    assert exit_conditions.exit_options(RANGES, 3, rules.failure_of(3)) == {
        "jobAction": "disable",
        "dependencyAction": "block",
    }


@pytest.mark.parametrize(("code", "action"), [(2, "terminate"), (4, "terminate"), (10, "none")])
def test_exit_code_ranges_include_both_ends(code, action):
    assert exit_conditions.exit_options(RANGES, code, rules.failure_of(code))["jobAction"] == action


def test_a_code_in_no_entry_takes_the_default():
    assert exit_conditions.exit_options(RANGES, 7, rules.failure_of(7)) == {
        "jobAction": "none",
        "dependencyAction": "satisfy",
    }


def test_exit_zero_takes_no_default_but_an_exit_codes_entry_for_zero():
    assert exit_conditions.exit_options(RANGES, 0, None)["jobAction"] == "none"
    spec = {
        "exitConditions": {"exitCodes": [{"code": 0, "exitOptions": {"jobAction": "terminate"}}]}
    }
    assert exit_conditions.exit_options(spec, 0, None)["jobAction"] == "terminate"


def test_a_command_that_could_not_start_takes_pre_processing_error():
    spec = {"exitConditions": {"preProcessingError": {"jobAction": "none"}, "default": {}}}
    failed = rules.failure_of(None, failure_code="CommandProgramNotFound", failure_message="x")
    assert exit_conditions.exit_options(spec, None, failed)["jobAction"] == "none"
    blob = rules.failure_of(None, failure_code="BlobNotFound", failure_message="x")
    assert exit_conditions.exit_options(spec, None, blob)["jobAction"] == "none"


def test_an_upload_failure_takes_file_upload_error_after_a_matching_exit_code():
    spec = {
        "exitConditions": {
            "exitCodes": [{"code": 0, "exitOptions": {"jobAction": "disable"}}],
            "fileUploadError": {"jobAction": "none", "dependencyAction": "satisfy"},
        }
    }
    upload = rules.failure_of(0, failure_code="FileUploadTimedOut", failure_message="x")
    assert exit_conditions.exit_options(spec, 0, upload)["jobAction"] == "disable"
    assert exit_conditions.exit_options(spec, 5, upload) == {
        "jobAction": "none",
        "dependencyAction": "satisfy",
    }


# --- failure information and retries ----------------------------------------------------


def test_failure_information_of_each_kind_of_end():
    assert rules.failure_of(0) is None
    assert rules.failure_of(2)["code"] == "FailureExitCode"
    assert rules.failure_of(0, timed_out=True)["code"] == "TaskEnded"
    launch = rules.failure_of(
        None,
        failure_code="CommandLaunchFailed",
        failure_message="no",
        failure_details=[{"name": "a", "value": "b"}],
    )
    assert launch == {
        "category": "usererror",
        "code": "CommandLaunchFailed",
        "message": "no",
        "details": [{"name": "a", "value": "b"}],
    }


@pytest.mark.parametrize(
    ("retry_count", "max_retries", "retried"),
    [(0, 0, False), (0, 1, True), (1, 1, False), (2, 3, True), (3, 3, False), (99, -1, True)],
)
def test_a_failing_exit_code_is_retried_while_retry_count_is_below_max_task_retry_count(
    retry_count, max_retries, retried
):
    end = rules.exit_of(
        ended(exit_code=1, retry_count=retry_count, max_task_retry_count=max_retries)
    )
    assert end.task == ("retry" if retried else "complete")
    assert end.outcome == "failed"
    assert (end.task_failure is None) is retried


@pytest.mark.parametrize(
    "failed",
    [
        rules.failure_of(None, failure_code="CommandProgramNotFound", failure_message="x"),
        rules.failure_of(0, timed_out=True),
        rules.failure_of(0, failure_code="FileUploadMiscError", failure_message="x"),
    ],
)
def test_failures_other_than_the_exit_code_are_never_retried(failed):
    end = rules.exit_of(ended(exit_code=None, failed=failed, max_task_retry_count=-1))
    assert (end.task, end.task_failure) == ("complete", failed)


def test_a_success_completes_the_task_with_its_exit_code_and_counts_its_statistics():
    end = rules.exit_of(ended(exit_code=0))
    assert (end.outcome, end.task, end.task_exit_code, end.task_failure) == (
        "succeeded",
        "complete",
        0,
        None,
    )
    assert end.stats and not end.subtask and end.instances == ""


def test_an_attempt_of_a_terminated_or_deleted_task_only_ends_itself():
    for cancel, outcome in (("terminate", "terminated"), ("delete", "deleted")):
        end = rules.exit_of(ended(exit_code=1, cancel_requested=cancel))
        assert (end.outcome, end.task, end.stats) == (outcome, "", False)
    end = rules.exit_of(ended(exit_code=0, task_running=False, subtask_id=2))
    assert (end.outcome, end.subtask, end.subtask_failure["code"]) == (
        "terminated",
        True,
        "TaskEnded",
    )


# --- multi-instance hand-off -------------------------------------------------------------


def test_a_subtask_that_succeeds_keeps_its_attempt_running_until_the_primary_ends():
    end = rules.exit_of(ended(exit_code=0, subtask_id=1, number_of_instances=3))
    assert (end.outcome, end.subtask, end.subtask_failure, end.task) == ("", True, None, "")


def test_a_failing_subtask_fails_the_whole_task_or_retries_it_and_ends_the_others():
    failing = ended(exit_code=4, subtask_id=2, number_of_instances=3)
    end = rules.exit_of(failing)
    assert (end.outcome, end.task, end.instances, end.task_exit_code) == (
        "failed",
        "complete",
        "failed",
        None,
    )
    assert end.task_failure["message"].startswith("Subtask 2 failed: ")
    retried = rules.exit_of(replace(failing, max_task_retry_count=1))
    assert (retried.task, retried.instances, retried.task_failure) == ("retry", "retry", None)


def test_the_primary_of_a_multi_instance_task_ends_its_other_instances():
    assert rules.exit_of(ended(exit_code=0, number_of_instances=2)).instances == "finished"
    retry = ended(exit_code=1, number_of_instances=2, max_task_retry_count=1)
    assert rules.exit_of(retry).instances == "retry"
    assert rules.exit_of(ended(exit_code=0)).instances == ""


def test_other_instances_end_by_why_their_task_ended():
    assert rules.other_instance_outcome("requeue", True) == "requeued"
    assert rules.other_instance_outcome("finished", True) == "succeeded"
    assert rules.other_instance_outcome("failed", False) == "terminated"
    assert rules.unfinished_subtask_end("finished") == ("", None)
    result, failure = rules.unfinished_subtask_end("retry")
    assert (result, failure["code"]) == ("failure", "TaskEnded") and "retried" in failure["message"]


def test_the_primary_runs_once_every_subtask_succeeded():
    assert not rules.subtasks_done(1, 3)
    assert rules.subtasks_done(2, 3)


# --- job actions -------------------------------------------------------------------------

DISABLE_ON_3 = {
    "exitConditions": {"exitCodes": [{"code": 3, "exitOptions": {"jobAction": "disable"}}]}
}
NONE_ON_1 = {"exitConditions": {"exitCodes": [{"code": 1, "exitOptions": {"jobAction": "none"}}]}}


def test_a_job_acts_on_exit_options_only_with_perform_exit_options_job_action():
    failed = [(DISABLE_ON_3, 3, rules.failure_of(3))]
    assert rules.job_action("performexitoptionsjobaction", failed, False) == "disable"
    assert rules.job_action("noaction", failed, False) == ""


def test_the_first_failed_task_with_an_action_decides_and_none_is_passed_over():
    failed = [
        (NONE_ON_1, 1, rules.failure_of(1)),
        (DISABLE_ON_3, 3, rules.failure_of(3)),
        ({}, 5, rules.failure_of(5)),
    ]
    assert rules.job_action("performexitoptionsjobaction", failed, False) == "disable"


def test_an_exit_option_action_takes_precedence_over_the_job_managers_completion():
    failed = [({}, 2, rules.failure_of(2))]
    assert rules.job_action("performexitoptionsjobaction", failed, True) == "terminate"
    assert (
        rules.job_action("performexitoptionsjobaction", [(NONE_ON_1, 1, None)], True)
        == "jobmanager"
    )
    assert rules.job_action("noaction", failed, True) == "jobmanager"


def test_the_spec_of_a_failed_task_is_not_read_unless_the_job_acts_on_exit_options():
    def failed():
        raise AssertionError("read")
        yield

    assert rules.job_action("noaction", failed(), False) == ""


# --- dependencies ------------------------------------------------------------------------


def test_dependency_ids_lower_case_ids_and_expand_ranges_inclusively():
    depends = {"taskIds": ["A", "b"], "taskIdRanges": [{"start": 9, "end": 11}]}
    assert exit_conditions.dependency_ids(depends) == ["a", "b", "9", "10", "11"]


def test_a_failed_dependency_satisfies_only_with_dependency_action_satisfy():
    assert exit_conditions.satisfies_dependency("success", {}, 0, None)
    assert not exit_conditions.satisfies_dependency("failure", {}, 1, rules.failure_of(1))
    assert exit_conditions.satisfies_dependency("failure", RANGES, 2, rules.failure_of(2))


def test_a_task_is_ready_once_every_dependency_is_satisfied():
    wanted = {1: ["a", "b"], 2: ["a"], 3: []}
    assert exit_conditions.dependencies_met(wanted, {"a"}) == {2, 3}


# --- claim -------------------------------------------------------------------------------


def test_a_node_takes_work_while_idle_or_running_with_scheduling_and_a_free_slot():
    assert rules.takes_work("idle", True, 1)
    assert rules.takes_work("running", True, 2)
    assert not rules.takes_work("running", True, 0)
    assert not rules.takes_work("idle", False, 4)
    assert not rules.takes_work("starting", True, 4)


def test_max_parallel_tasks_caps_what_a_claim_starts():
    assert rules.parallel_allowance(4, -1, 100) == 4
    assert rules.parallel_allowance(4, 3, 1) == 2
    assert rules.parallel_allowance(4, 3, 3) == 0


def test_fill_type_defaults_to_spread():
    assert rules.fill_type({}) == "spread"
    assert rules.fill_type({"taskSchedulingPolicy": {"nodeFillType": "Pack"}}) == "pack"


def test_placement_is_needed_only_with_less_work_than_the_pools_free_slots():
    assert rules.needs_placement(3, 2, 4)
    assert not rules.needs_placement(6, 2, 4)
    assert not rules.needs_placement(1, 2, 0)


def test_spread_evens_work_out_and_pack_fills_the_fullest_node_first():
    # Two idle 4-slot nodes: "a" (this one) and "b".
    spread = Placement("spread", "a", 4, [("b", 0, 4)])
    assert spread.allows(1, 4) and not spread.allows(1, 3)
    pack = Placement("pack", "a", 4, [("b", 0, 4)])
    assert pack.allows(1, 4) and pack.allows(1, 1)
    assert not Placement("pack", "b", 4, [("a", 0, 4)]).allows(1, 4)  # tie: lower id packs
    assert Placement("pack", "a", 4, [("b", 3, 1)]).allows(2, 4)  # b cannot take 2 slots


@dataclass
class T:
    task_id: str = "t"
    required_slots: int = 1
    previous_state: str = ""


class Manager:
    def __init__(self, slots, starts_first=True):
        self.slots, self.starts_first = slots, starts_first

    def slots_for(self, task, node, free):
        return self.slots if task.task_id == "jm" else task.required_slots

    def holds_back(self, task):
        return task.task_id == "jm" and self.starts_first


def test_a_task_takes_its_required_slots_when_they_are_free():
    assert (
        rules.slots_to_take(T(required_slots=2), node=None, free=2, manager=None, placement=None)
        == 2
    )
    assert (
        rules.slots_to_take(T(required_slots=3), node=None, free=2, manager=None, placement=None)
        is None
    )


def test_a_job_manager_that_cannot_start_here_holds_its_job_back_until_it_started():
    take = rules.slots_to_take
    assert (
        take(T("jm"), node=None, free=4, manager=Manager(None), placement=None) == rules.HOLD_BACK
    )
    assert take(T("jm"), node=None, free=4, manager=Manager(None, False), placement=None) is None
    assert take(T("jm"), node=None, free=4, manager=Manager(4), placement=None) == 4
    assert take(T("x"), node=None, free=4, manager=Manager(None), placement=None) == 1


def test_placement_can_leave_a_task_to_another_node():
    busy_here = Placement("spread", "a", 4, [("b", 0, 4)])
    assert rules.slots_to_take(T(), node=None, free=3, manager=None, placement=busy_here) is None


def test_instances_go_to_the_nodes_with_most_free_slots_all_or_nothing():
    assert rules.pick_instance_nodes({"n1": 1, "n2": 3, "n3": 0, "n4": 3}, 2) == ["n2", "n4"]
    assert rules.pick_instance_nodes({"n1": 1, "n3": 0}, 2) is None
    assert rules.pick_instance_nodes({}, 0) == []


def test_a_scan_resumes_with_half_its_budget_and_keeps_the_oldest_the_other_half():
    assert rules.scan_budgets(2000, False) == (2000, 0)
    assert rules.scan_budgets(2000, True) == (1000, 1000)
    assert sum(rules.scan_budgets(5, True)) == 5


# --- requeue -----------------------------------------------------------------------------


def test_only_a_preparing_or_running_task_is_requeued():
    assert rules.requeues("running") and rules.requeues("preparing")
    assert not rules.requeues("completed") and not rules.requeues("active")


def test_a_cancelled_attempt_ends_deleted_or_terminated():
    assert rules.cancelled_outcome("delete") == "deleted"
    assert rules.cancelled_outcome("terminate") == "terminated"
