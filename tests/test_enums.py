"""Each enum is typed once, in the models' TextChoices: the database constraints, the
$filter tables and the request serializers admit exactly its values; so do the forms and
rules for the option lists that are no field's choices (disableTasks, the node
deallocation options, an exit option's jobAction and dependencyAction)."""

import pytest
from django.apps import apps
from django.db.models import CheckConstraint, Q

from tasks import autoscale
from tasks.api import odata
from tasks.api.job_prep import STATUS
from tasks.errors import BatchError
from tasks.models import (
    DISABLE_SCHEDULING_OPTIONS,
    ComputeNode,
    DependencyAction,
    DisableJobOption,
    ExitJobAction,
    Job,
    JobPreparation,
    JobSchedule,
    NodeDeallocationOption,
    Pool,
    Task,
)
from tasks.operations.pool_actions import NODE_ACTIONS
from tasks.operations.pool_specs import check_deallocation_option
from tasks.web.forms import ResizeForm
from tasks.wire.job_serializers import (
    JobAddParameterSerializer,
    JobDisableParameterSerializer,
    JobUpdateParameterSerializer,
)
from tasks.wire.pool_serializers import (
    NodeDisableSchedulingParameterSerializer,
    NodeRebootParameterSerializer,
    NodeReimageParameterSerializer,
    NodeRemoveParameterSerializer,
    PoolResizeParameterSerializer,
)
from tasks.wire.serializers import ExitOptionsSerializer


def constrained_values() -> list[tuple[str, str, list, set]]:
    """(model, field, values a `<field>__in` CheckConstraint admits, the field's choices
    with "" when it may be blank) for every such constraint of the app."""
    found = []
    for model in apps.get_app_config("tasks").get_models():
        for constraint in model._meta.constraints:
            if not isinstance(constraint, CheckConstraint):
                continue
            condition = constraint.condition
            if not (isinstance(condition, Q) and len(condition.children) == 1):
                continue
            lookup, values = condition.children[0]
            if not lookup.endswith("__in"):
                continue
            field = model._meta.get_field(lookup.removesuffix("__in"))
            allowed = {value for value, _ in field.choices}
            if field.blank:
                allowed.add("")
            found.append((model.__name__, field.name, values, allowed))
    return found


def test_every_enum_constraint_admits_exactly_its_fields_choices():
    found = constrained_values()
    assert {(m, f) for m, f, _, _ in found} >= {
        ("Task", "state"),
        ("Task", "result"),
        ("Job", "state"),
        ("JobSchedule", "state"),
        ("Pool", "state"),
        ("Pool", "allocation_state"),
        ("ComputeNode", "state"),
        ("ComputeNode", "pending_action"),
        ("SubTask", "state"),
        ("Attempt", "outcome"),
    }
    for model, field, values, allowed in found:
        assert len(values) == len(set(values)), (model, field)
        assert set(values) == allowed, (model, field)


@pytest.mark.parametrize(
    "schema, name, choices",
    [
        (odata.TASK, "state", Task.State),
        (odata.TASK, "executionInfo/result", Task.Result),
        (odata.JOB, "state", Job.State),
        (odata.JOB_SCHEDULE, "state", JobSchedule.State),
        (odata.POOL, "state", Pool.State),
        (odata.POOL, "allocationState", Pool.AllocationState),
        (STATUS, "jobPreparationTaskExecutionInfo/state", JobPreparation.State),
        (STATUS, "jobReleaseTaskExecutionInfo/result", JobPreparation.Result),
    ],
)
def test_a_filter_admits_exactly_the_models_values(schema, name, choices):
    _, prop = schema.props[name.lower()]
    assert prop.values == set(choices.values)


def test_a_node_filter_admits_the_models_states_and_the_batch_states_never_entered_here():
    _, prop = odata.NODE.props["state"]
    assert prop.values - set(ComputeNode.State.values) == {
        "upgradingos",
        "deallocated",
        "deallocating",
    }
    assert set(ComputeNode.State.values) <= prop.values


@pytest.mark.parametrize("serializer", [JobAddParameterSerializer, JobUpdateParameterSerializer])
def test_the_job_serializers_take_the_models_job_enums(serializer):
    fields = serializer().fields
    assert set(fields["onAllTasksComplete"].choices) == set(Job.OnAllTasksComplete.values)
    if "onTaskFailure" in fields:
        assert set(fields["onTaskFailure"].choices) == set(Job.OnTaskFailure.values)


# --- option lists that are no model field's choices: one enum each, beside the models' ----


@pytest.mark.parametrize(
    "serializer, name, allowed",
    [
        (JobDisableParameterSerializer, "disableTasks", DisableJobOption.values),
        (PoolResizeParameterSerializer, "nodeDeallocationOption", NodeDeallocationOption.values),
        (NodeRemoveParameterSerializer, "nodeDeallocationOption", NodeDeallocationOption.values),
        (NodeRebootParameterSerializer, "nodeRebootOption", NodeDeallocationOption.values),
        (NodeReimageParameterSerializer, "nodeReimageOption", NodeDeallocationOption.values),
        (
            NodeDisableSchedulingParameterSerializer,
            "nodeDisableSchedulingOption",
            DISABLE_SCHEDULING_OPTIONS,
        ),
        (ExitOptionsSerializer, "jobAction", ExitJobAction.values),
        (ExitOptionsSerializer, "dependencyAction", DependencyAction.values),
    ],
)
def test_the_wire_takes_exactly_the_options_of_its_enum(serializer, name, allowed):
    assert set(serializer().fields[name].choices) == set(allowed)


def test_the_node_actions_the_dashboard_and_the_admin_offer_are_the_enums_options():
    assert NODE_ACTIONS["reboot"].options == tuple(NodeDeallocationOption.values)
    assert NODE_ACTIONS["reimage"].options == tuple(NodeDeallocationOption.values)
    assert NODE_ACTIONS["remove"].options == tuple(NodeDeallocationOption.values)
    assert NODE_ACTIONS["disable-scheduling"].options == DISABLE_SCHEDULING_OPTIONS
    # The first is the default (Batch's: requeue).
    assert all(
        a.options[0] == NodeDeallocationOption.REQUEUE for a in NODE_ACTIONS.values() if a.options
    )
    assert [v for v, _ in ResizeForm.base_fields["node_deallocation_option"].choices] == (
        NodeDeallocationOption.values
    )


def test_an_autoscale_formula_assigns_exactly_the_deallocation_options():
    assert set(autoscale.DEALLOCATION_OPTIONS) == set(NodeDeallocationOption.values)


@pytest.mark.parametrize("option", ["requeue", "terminate", "taskcompletion", "retaineddata", "x"])
def test_the_rules_take_exactly_the_deallocation_options(option):
    if option in NodeDeallocationOption.values:
        assert check_deallocation_option(option) == option
    else:
        with pytest.raises(BatchError):
            check_deallocation_option(option)
