"""Wire shapes of request bodies, as DRF serializers named after the Batch schemas.

They decide names, types, required-ness and lengths only; business rules live in
tasks.operations. Field names are the camelCase wire names, so validated data is wire
form (durations parsed to timedelta, None meaning unlimited).
"""

from __future__ import annotations

import re
import threading

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from tasks.errors import BatchError
from tasks.models import DependencyAction, ExitJobAction
from tasks.timefmt import parse_duration

ID_REGEX = r"\A[A-Za-z0-9_-]{1,64}\Z"  # \Z: "$" would let a trailing newline through
_UNSET = object()
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# DRF error codes that mean "this value has the wrong JSON type": InvalidRequestBody.
WRONG_TYPE = "type"
_WRONG_TYPE_CODES = {WRONG_TYPE, "not_a_list", "not_a_dict"}
UNSUPPORTED = "unsupported"  # a property no schema of any supported api-version has


def wrong_type(what: str) -> serializers.ValidationError:
    return serializers.ValidationError(f"A JSON {what} is required.", code=WRONG_TYPE)


class BatchIdField(serializers.RegexField):
    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)  # " t1" is not a valid id
        super().__init__(ID_REGEX, max_length=64, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise wrong_type("string")
        return super().to_internal_value(data)


class DurationField(serializers.Field):
    """ISO 8601 duration in any form the SDKs send; None stands for unlimited."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise wrong_type("string (an ISO 8601 duration)")
        try:
            return parse_duration(data)
        except ValueError as e:
            raise serializers.ValidationError(str(e)) from None

    def to_representation(self, value):  # pragma: no cover - output is built in render.py
        return value


class EnumField(serializers.ChoiceField):
    """Batch enums: lowercase on the wire; accepted case-insensitively (14.x, .NET)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise wrong_type("string")
        lowered = {c.lower(): c for c in self.choices}
        data = lowered.get(data.lower(), data)
        return super().to_internal_value(data)


# The Batch service reads bodies with ODataLib, which turns a JSON string into the
# property's primitive type with .NET's Convert.ChangeType (invariant culture): the Azure
# CLI relies on it, sending `"maxTaskRetryCount": "1"`. For an integer that is Int32.Parse
# with NumberStyles.Integer: ASCII digits, one optional sign, whitespace around them.
_INTEGER_TEXT = re.compile(r"[\t\n\v\f\r ]*[+-]?[0-9]+[\t\n\v\f\r ]*", re.ASCII)


class StrictIntegerField(serializers.IntegerField):
    """An integer as Batch reads one: a JSON number, or a string Int32.Parse accepts ("3",
    " -1 "); true, 1.5, "1.0" and "0x10" are wrong types. Batch integers are int32 unless a
    field says otherwise (and a database column holds them)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", INT32_MIN)
        kwargs.setdefault("max_value", INT32_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and _INTEGER_TEXT.fullmatch(data):
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            raise wrong_type("integer")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A boolean as Batch reads one: JSON true/false, or a string Boolean.Parse accepts
    ("true", "False", surrounding whitespace); 1 and "yes" are wrong types."""

    def to_internal_value(self, data):
        if isinstance(data, str) and data.strip().lower() in ("true", "false"):
            return data.strip().lower() == "true"
        if not isinstance(data, bool):
            raise wrong_type("boolean")
        return data


class StrictCharField(serializers.CharField):
    """A JSON string, kept exactly as sent (DRF would trim a command line's spaces)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise wrong_type("string")
        return super().to_internal_value(data)


class WireSerializer(serializers.Serializer):
    """Omits absent optional properties from validated data (so stored specs round-trip).
    A nested object refuses properties it does not know, as validate_wire does for the
    body itself, rather than dropping them (a misspelt constraint would vanish)."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise wrong_type("object")
        if self.parent is not None:
            for key in data:
                if key not in self.fields and not key.startswith("odata."):
                    raise serializers.ValidationError(
                        {key: [ErrorDetail("This property is not supported.", code=UNSUPPORTED)]}
                    )
        return super().to_internal_value(data)


# --- task --------------------------------------------------------------------------------


class EnvironmentSettingSerializer(WireSerializer):
    name = StrictCharField(max_length=1024)
    value = StrictCharField(required=False, allow_blank=True)


class TaskConstraintsSerializer(WireSerializer):
    maxWallClockTime = DurationField(required=False)
    retentionTime = DurationField(required=False)
    maxTaskRetryCount = StrictIntegerField(required=False)  # its range: operations.constraints


class ExitOptionsSerializer(WireSerializer):
    jobAction = EnumField(ExitJobAction.values, required=False)
    dependencyAction = EnumField(DependencyAction.values, required=False)


class ExitCodeMappingSerializer(WireSerializer):
    code = StrictIntegerField()
    exitOptions = ExitOptionsSerializer()


class ExitCodeRangeMappingSerializer(WireSerializer):
    start = StrictIntegerField()
    end = StrictIntegerField()
    exitOptions = ExitOptionsSerializer()

    def validate(self, attrs):
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError(
                {"end": ErrorDetail("end must not be less than start", "invalid")}
            )
        return attrs


class ExitConditionsSerializer(WireSerializer):
    exitCodes = ExitCodeMappingSerializer(many=True, required=False)
    exitCodeRanges = ExitCodeRangeMappingSerializer(many=True, required=False)
    preProcessingError = ExitOptionsSerializer(required=False)
    fileUploadError = ExitOptionsSerializer(required=False)
    default = ExitOptionsSerializer(required=False)


class TaskIdRangeSerializer(WireSerializer):
    start = StrictIntegerField()
    end = StrictIntegerField()

    def validate(self, attrs):
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError(
                {"end": ErrorDetail("end must not be less than start", "invalid")}
            )
        return attrs


class TaskDependenciesSerializer(WireSerializer):
    taskIds = serializers.ListField(child=BatchIdField(), required=False)
    taskIdRanges = TaskIdRangeSerializer(many=True, required=False)


MANAGED_IDENTITY_UNSUPPORTED = (
    "batchsite does not support managed identities: give the container a SAS URL "
    "(or use the account's auto-storage) instead."
)


def refuse_identity_reference(attrs: dict) -> None:
    """batchsite has no managed identities: an identityReference is refused when the task
    is added, not at run time (README, "Not supported")."""
    if "identityReference" in attrs:
        raise serializers.ValidationError(
            {"identityReference": ErrorDetail(MANAGED_IDENTITY_UNSUPPORTED, "invalid")}
        )


class ResourceFileSerializer(WireSerializer):
    autoStorageContainerName = StrictCharField(required=False)
    storageContainerUrl = StrictCharField(required=False)
    httpUrl = StrictCharField(required=False)
    blobPrefix = StrictCharField(required=False, allow_blank=True)
    filePath = StrictCharField(required=False)
    fileMode = StrictCharField(required=False)
    identityReference = serializers.DictField(required=False)

    def validate(self, attrs):
        sources = [
            k for k in ("autoStorageContainerName", "storageContainerUrl", "httpUrl") if k in attrs
        ]
        if len(sources) != 1:
            raise serializers.ValidationError(
                {
                    "httpUrl": ErrorDetail(
                        "exactly one of autoStorageContainerName, storageContainerUrl, httpUrl",
                        "invalid",
                    )
                }
            )
        if "httpUrl" in attrs and not attrs.get("filePath"):
            raise serializers.ValidationError(
                {"filePath": ErrorDetail("filePath is required with httpUrl", "required")}
            )
        refuse_identity_reference(attrs)
        return attrs


class HttpHeaderSerializer(WireSerializer):
    name = StrictCharField()
    value = StrictCharField(required=False, allow_blank=True)


class OutputFileBlobContainerDestinationSerializer(WireSerializer):
    containerUrl = StrictCharField()
    path = StrictCharField(required=False, allow_blank=True)
    identityReference = serializers.DictField(required=False)
    uploadHeaders = HttpHeaderSerializer(many=True, required=False)

    def validate(self, attrs):
        refuse_identity_reference(attrs)
        return attrs


class OutputFileDestinationSerializer(WireSerializer):
    container = OutputFileBlobContainerDestinationSerializer()


class OutputFileUploadOptionsSerializer(WireSerializer):
    uploadCondition = EnumField(["tasksuccess", "taskfailure", "taskcompletion"])


class OutputFileSerializer(WireSerializer):
    filePattern = StrictCharField()
    destination = OutputFileDestinationSerializer()
    uploadOptions = OutputFileUploadOptionsSerializer()


class AutoUserSerializer(WireSerializer):
    scope = EnumField(["task", "pool"], required=False)
    elevationLevel = EnumField(["nonadmin", "admin"], required=False)


class UserIdentitySerializer(WireSerializer):
    username = StrictCharField(required=False)
    autoUser = AutoUserSerializer(required=False)


class MultiInstanceSettingsSerializer(WireSerializer):
    numberOfInstances = StrictIntegerField(required=False, min_value=1, max_value=100)
    coordinationCommandLine = StrictCharField(required=False, allow_blank=True)
    commonResourceFiles = ResourceFileSerializer(many=True, required=False)


class AffinityInfoSerializer(WireSerializer):
    affinityId = StrictCharField()


class ApplicationPackageReferenceSerializer(WireSerializer):
    applicationId = StrictCharField()
    version = StrictCharField(required=False)


class TaskContainerSettingsSerializer(WireSerializer):
    imageName = StrictCharField()
    containerRunOptions = StrictCharField(required=False, allow_blank=True)
    registry = serializers.DictField(required=False)
    workingDirectory = EnumField(["taskWorkingDirectory", "containerImageDefault"], required=False)
    containerHostBatchBindMounts = serializers.ListField(
        child=serializers.DictField(), required=False
    )


class AuthenticationTokenSettingsSerializer(WireSerializer):
    access = serializers.ListField(child=EnumField(["job"]), required=False)


class TaskAddParameterSerializer(WireSerializer):
    """BatchTaskCreateOptions (REFERENCE §7.1): the body of Add Task and the items of
    Add Task Collection."""

    id = BatchIdField()
    displayName = StrictCharField(required=False, max_length=1024, allow_blank=True)
    commandLine = StrictCharField(max_length=32768)
    exitConditions = ExitConditionsSerializer(required=False)
    containerSettings = TaskContainerSettingsSerializer(required=False)
    resourceFiles = ResourceFileSerializer(many=True, required=False)
    outputFiles = OutputFileSerializer(many=True, required=False)
    environmentSettings = EnvironmentSettingSerializer(many=True, required=False)
    affinityInfo = AffinityInfoSerializer(required=False)
    constraints = TaskConstraintsSerializer(required=False)
    requiredSlots = StrictIntegerField(required=False, min_value=1)
    userIdentity = UserIdentitySerializer(required=False)
    multiInstanceSettings = MultiInstanceSettingsSerializer(required=False)
    dependsOn = TaskDependenciesSerializer(required=False)
    applicationPackageReferences = ApplicationPackageReferenceSerializer(many=True, required=False)
    # Only in api-versions up to 2024-07-01.20.0; accepted and kept for those clients.
    authenticationTokenSettings = AuthenticationTokenSettingsSerializer(required=False)


class JobManagerTaskSerializer(WireSerializer):
    """JobManagerTask: the task a job starts first (tasks.operations.job_manager)."""

    id = BatchIdField()
    displayName = StrictCharField(required=False, max_length=1024, allow_blank=True)
    commandLine = StrictCharField(max_length=32768)
    containerSettings = TaskContainerSettingsSerializer(required=False)
    resourceFiles = ResourceFileSerializer(many=True, required=False)
    outputFiles = OutputFileSerializer(many=True, required=False)
    environmentSettings = EnvironmentSettingSerializer(many=True, required=False)
    constraints = TaskConstraintsSerializer(required=False)
    requiredSlots = StrictIntegerField(required=False, min_value=1)
    killJobOnCompletion = StrictBooleanField(required=False)
    userIdentity = UserIdentitySerializer(required=False)
    runExclusive = StrictBooleanField(required=False)
    applicationPackageReferences = ApplicationPackageReferenceSerializer(many=True, required=False)
    authenticationTokenSettings = AuthenticationTokenSettingsSerializer(required=False)
    allowLowPriorityNode = StrictBooleanField(required=False)


# Read-only properties of a Batch resource that a client may send back on an Update (14.x
# sends the whole object; 15.x the model it got): ignored.
READ_ONLY = frozenset(
    {
        "url",
        "eTag",
        "lastModified",
        "creationTime",
        "state",
        "stateTransitionTime",
        "previousState",
        "previousStateTransitionTime",
        "executionInfo",
        "stats",
    }
)
TASK_READ_ONLY = READ_ONLY | {"nodeInfo"}


class TaskUpdateParameterSerializer(WireSerializer):
    """Update Task: only `constraints` changes; other BatchTask properties are ignored."""

    constraints = TaskConstraintsSerializer(required=False)


class TaskAddCollectionParameterSerializer(WireSerializer):
    value = serializers.ListField(child=serializers.JSONField(), allow_empty=False)


class MetadataItemSerializer(WireSerializer):
    name = StrictCharField()
    value = StrictCharField(allow_blank=True)


# --- turning DRF verdicts into Batch errors ------------------------------------------------


def _first_error(errors, path: str = ""):
    if isinstance(errors, dict):
        for key, value in errors.items():
            # DRF keys a list's item errors by index: name them as `items[0]`.
            if isinstance(key, int):
                sub = f"{path}[{key}]"
            else:
                sub = key if key == "non_field_errors" else (f"{path}.{key}" if path else key)
            if key == "non_field_errors":
                sub = path
            found = _first_error(value, sub)
            if found:
                return found
    elif isinstance(errors, list):
        for i, value in enumerate(errors):
            if isinstance(value, (dict, list)):
                found = _first_error(value, f"{path}[{i}]")
                if found:
                    return found
            elif isinstance(value, ErrorDetail):
                return path, value
    elif isinstance(errors, ErrorDetail):
        return path, errors
    return None


_instances = threading.local()


def _instance(serializer_class):
    """One bound serializer per class and thread: building one deep-copies every declared
    field (half a millisecond for a task), which Add Collection would pay 100 times."""
    cache = getattr(_instances, "by_class", None)
    if cache is None:
        cache = _instances.by_class = {}
    if serializer_class not in cache:
        cache[serializer_class] = serializer_class()
    return cache[serializer_class]


def refuse_unknown_properties(
    serializer_class, data: dict, *, known: set[str] | None = None, prefix: str = ""
) -> None:
    """400 UnsupportedProperty for a top-level property the schema (or `known`) lacks;
    OData annotations (`odata.type`) are not properties."""
    allowed = set(serializer_class._declared_fields) | (known or set())
    for key in data:
        if key not in allowed and not key.startswith("odata."):
            raise BatchError.unsupported_property(prefix + key)


def validate_wire(serializer_class, data, *, known: set[str] | None = None, prefix: str = ""):
    """Validate a body with a wire serializer, or raise the Batch error for its first
    problem: MissingRequiredProperty, UnsupportedProperty, InvalidPropertyValue or
    InvalidRequestBody (a wrong JSON type, of the whole body or of a property)."""
    if not isinstance(data, dict):
        raise BatchError.invalid_body("The request body must be a JSON object.")
    refuse_unknown_properties(serializer_class, data, known=known, prefix=prefix)
    try:
        return _instance(serializer_class).run_validation(data)
    except serializers.ValidationError as exc:
        errors = exc.detail
    path, detail = _first_error(errors) or ("", ErrorDetail("invalid", "invalid"))
    path = prefix + path
    if detail.code == "required":
        raise BatchError.missing_property(path)
    if detail.code == UNSUPPORTED:
        raise BatchError.unsupported_property(path)
    if detail.code in _WRONG_TYPE_CODES:
        raise BatchError.invalid_body(f"The property '{path}' has the wrong JSON type: {detail}")
    value = _value_at(data, path[len(prefix) :])
    raise BatchError.invalid_property(path, value, str(detail))


def _value_at(data, path: str):
    node = data
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        try:
            node = node[int(part[1:-1])] if part.startswith("[") else node[part]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
    if isinstance(node, (dict, list)):
        return None
    return node
