"""Dashboard forms. A form only reads the HTML input; the task it describes is checked by
the API's wire serializer (so the web and the API accept exactly the same tasks) and then
by the rules layer. The pool forms' values go straight to the pool operations, which check
them as they check the API's (targets, timeouts, intervals, formulas)."""

from __future__ import annotations

from django import forms

from tasks.errors import BatchError
from tasks.models import NodeDeallocationOption, Task
from tasks.templatetags.batchweb import duration
from tasks.timefmt import format_duration
from tasks.wire.serializers import (
    TaskAddParameterSerializer,
    TaskUpdateParameterSerializer,
    validate_wire,
)

DURATION_HELP = "As 01:30:00, 2 00:00:00 (2 days) or PT1H30M."

# Wire property -> form field, to put an API refusal next to the field it is about.
_WIRE_FIELDS = {
    "id": "task_id",
    "displayName": "display_name",
    "commandLine": "command_line",
    "requiredSlots": "required_slots",
    "constraints.maxWallClockTime": "max_wall_clock_time",
    "constraints.retentionTime": "retention_time",
    "constraints.maxTaskRetryCount": "max_task_retry_count",
    "multiInstanceSettings.numberOfInstances": "number_of_instances",
    "multiInstanceSettings.coordinationCommandLine": "coordination_command_line",
}


class ConstraintsForm(forms.Form):
    max_wall_clock_time = forms.DurationField(
        required=False,
        label="Max wall-clock time",
        help_text="Empty: unlimited. Applies to a running attempt too, "
        "measured from its start: one that has run longer is "
        "ended at once (TaskEnded). " + DURATION_HELP,
    )
    retention_time = forms.DurationField(
        required=False, label="Retention time", help_text="Empty: 7 days. " + DURATION_HELP
    )
    max_task_retry_count = forms.IntegerField(
        required=False,
        min_value=-1,
        label="Max retries",
        help_text="-1: unlimited. Empty: the job's.",
    )

    @classmethod
    def for_task(cls, task, data=None) -> ConstraintsForm:
        initial = {
            "max_wall_clock_time": task.max_wall_clock_time,
            "retention_time": task.retention_time,
            "max_task_retry_count": task.max_task_retry_count,
        }
        return cls(data=data, initial=initial)

    def wire_constraints(self) -> dict:
        """The constraints as the wire sends them (omitted ones take their defaults)."""
        data = self.cleaned_data
        out = {}
        for key, field in (
            ("maxWallClockTime", "max_wall_clock_time"),
            ("retentionTime", "retention_time"),
        ):
            if data[field] is not None:
                out[key] = format_duration(data[field])
        if data["max_task_retry_count"] is not None:
            out["maxTaskRetryCount"] = data["max_task_retry_count"]
        return out

    def constraints(self) -> dict | None:
        """The Update Task constraints as the API's serializer reads them (a very long
        duration is unlimited, counts are int32), or None with the refusal on its field."""
        body = self.validated(
            TaskUpdateParameterSerializer, {"constraints": self.wire_constraints()}
        )
        return None if body is None else body["constraints"]

    @staticmethod
    def outcome(task, constraints: dict) -> str:
        """What the update did, as the page says it: a running task's new wall clock acts
        on its current attempt (tasks.operations.tasks.update_task)."""
        done = f"Task {task.task_id}: constraints updated."
        if task.state in (Task.State.RUNNING, Task.State.PREPARING):
            limit = constraints.get("maxWallClockTime")
            shown = duration(limit, "unlimited")
            done += (
                f" The running attempt now has max wall-clock {shown}, from its start"
                f"{' (it ends now if it has run longer)' if limit else ''}."
            )
        return done

    def validated(self, serializer, body: dict) -> dict | None:
        try:
            return validate_wire(serializer, body)
        except BatchError as error:
            self.add_batch_error(error)
            return None

    def add_batch_error(self, error: BatchError) -> None:
        values = dict(error.values)
        field = _WIRE_FIELDS.get(values.get("PropertyName", ""))
        reason = values.get("Reason") or error.message
        self.add_error(field, f"{error.code}: {reason}")


class AddTaskForm(ConstraintsForm):
    task_id = forms.CharField(max_length=64, label="Task ID", help_text="Letters, digits, - and _.")
    display_name = forms.CharField(max_length=1024, required=False)
    command_line = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Run without a shell: write /bin/sh -c '...' for one.",
    )
    environment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="One NAME=value per line.",
    )
    required_slots = forms.IntegerField(required=False, min_value=1, initial=1)
    number_of_instances = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=100,
        label="Instances (multi-instance)",
        help_text="More than 1 makes a multi-instance task.",
    )
    coordination_command_line = forms.CharField(
        required=False,
        label="Coordination command line",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Run on every instance before the command line.",
    )

    field_order = [
        "task_id",
        "display_name",
        "command_line",
        "environment",
        "required_slots",
        "max_wall_clock_time",
        "retention_time",
        "max_task_retry_count",
        "number_of_instances",
        "coordination_command_line",
    ]

    def clean_environment(self) -> list[dict]:
        settings = []
        for number, line in enumerate(self.cleaned_data["environment"].splitlines(), 1):
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise forms.ValidationError(f"Line {number} is not NAME=value.")
            settings.append({"name": name.strip(), "value": value})
        return settings

    def wire(self) -> dict:
        """The task as an Add Task request body."""
        data = self.cleaned_data
        body = {"id": data["task_id"], "commandLine": data["command_line"]}
        if data["display_name"]:
            body["displayName"] = data["display_name"]
        if data["environment"]:
            body["environmentSettings"] = data["environment"]
        if data["required_slots"]:
            body["requiredSlots"] = data["required_slots"]
        if self.wire_constraints():
            body["constraints"] = self.wire_constraints()
        instances = data["number_of_instances"] or 1
        if instances > 1 or data["coordination_command_line"]:
            body["multiInstanceSettings"] = {"numberOfInstances": instances}
            if data["coordination_command_line"]:
                body["multiInstanceSettings"]["coordinationCommandLine"] = data[
                    "coordination_command_line"
                ]
        return body

    def spec(self) -> dict | None:
        """The validated task spec, or None with the wire refusal attached to its field."""
        return self.validated(TaskAddParameterSerializer, self.wire())


# --- pools -----------------------------------------------------------------------------------

INT32_MAX = 2**31 - 1
DEALLOCATION_CHOICES = [(o, o) for o in NodeDeallocationOption.values]


class BatchErrorsForm(forms.Form):
    """A form whose values the rules layer checks: a refusal naming a wire property is
    shown at the field it came from (`wire_fields`), any other above the form."""

    wire_fields: dict[str, str] = {}
    default_field: str | None = None  # where a refusal naming no property goes

    def add_batch_error(self, error: BatchError) -> None:
        values = dict(error.values)
        field = self.wire_fields.get(values.get("PropertyName", ""), self.default_field)
        reason = values.get("Reason") or values.get("Message") or error.message
        self.add_error(field, f"{error.code}: {reason}")


class ResizeForm(BatchErrorsForm):
    target_dedicated = forms.IntegerField(min_value=0, max_value=INT32_MAX, label="Dedicated nodes")
    target_low_priority = forms.IntegerField(
        min_value=0, max_value=INT32_MAX, label="Low-priority nodes"
    )
    resize_timeout = forms.DurationField(
        required=False,
        label="Resize timeout",
        help_text="Empty: 15 minutes; at least 5 minutes. " + DURATION_HELP,
    )
    node_deallocation_option = forms.ChoiceField(
        choices=DEALLOCATION_CHOICES,
        initial=NodeDeallocationOption.REQUEUE,
        label="Nodes that leave",
        help_text="What happens to the tasks running on a node that leaves the pool.",
    )
    wire_fields = {
        "targetDedicatedNodes": "target_dedicated",
        "targetLowPriorityNodes": "target_low_priority",
        "resizeTimeout": "resize_timeout",
        "nodeDeallocationOption": "node_deallocation_option",
    }

    @classmethod
    def for_pool(cls, pool, data=None) -> ResizeForm:
        initial = {
            "target_dedicated": pool.target_dedicated_nodes,
            "target_low_priority": pool.target_low_priority_nodes,
            "node_deallocation_option": pool.node_deallocation_option
            or NodeDeallocationOption.REQUEUE,
        }
        return cls(data=data, initial=initial)


class AutoScaleForm(BatchErrorsForm):
    formula = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        strip=False,
        label="Formula",
        help_text="Batch's autoscale formula language, e.g. "
        "$TargetDedicatedNodes = min(4, $PendingTasks.GetSample(1));",
    )
    evaluation_interval = forms.DurationField(
        required=False,
        label="Evaluation interval",
        help_text="Empty: as it is (15 minutes at first); between 5 minutes "
        "and 168 hours. " + DURATION_HELP,
    )
    wire_fields = {
        "autoScaleFormula": "formula",
        "autoScaleEvaluationInterval": "evaluation_interval",
    }
    default_field = (
        "formula"  # a formula Batch refuses (AutoScalingFormulaSyntaxError) names no property
    )

    @classmethod
    def for_pool(cls, pool, data=None) -> AutoScaleForm:
        initial = {
            "formula": pool.auto_scale_formula,
            "evaluation_interval": pool.auto_scale_evaluation_interval,
        }
        return cls(data=data, initial=initial)


class EvaluateForm(BatchErrorsForm):
    formula = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        strip=False,
        label="Formula",
    )
    wire_fields = {"autoScaleFormula": "formula"}
    default_field = "formula"

    @classmethod
    def for_pool(cls, pool, data=None) -> EvaluateForm:
        return cls(data=data, initial={"formula": pool.auto_scale_formula})
