"""Wire shapes of the job-schedule bodies (BatchJobScheduleCreateOptions, 14.x
JobScheduleAddParameter / UpdateParameter / PatchParameter). Names, types and
required-ness only; the schedule's rules are tasks.operations.job_schedules'."""

from __future__ import annotations

from rest_framework import serializers

from tasks.timefmt import parse_datetime_wire

from .job_serializers import JobAddParameterSerializer
from .serializers import (
    BatchIdField,
    DurationField,
    MetadataItemSerializer,
    StrictCharField,
    WireSerializer,
    wrong_type,
)


class DateTimeWireField(serializers.Field):
    """An RFC 3339 date-time as both SDKs write it."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise wrong_type("string (an RFC 3339 date-time)")
        try:
            return parse_datetime_wire(data)
        except ValueError as e:
            raise serializers.ValidationError(str(e)) from None

    def to_representation(
        self, value
    ):  # pragma: no cover - output is built in render_job_schedules.py
        return value


class ScheduleSerializer(WireSerializer):
    doNotRunUntil = DateTimeWireField(required=False, allow_null=True)
    doNotRunAfter = DateTimeWireField(required=False, allow_null=True)
    startWindow = DurationField(required=False, allow_null=True)
    recurrenceInterval = DurationField(required=False, allow_null=True)


class JobSpecificationSerializer(JobAddParameterSerializer):
    """A job as Add Job takes it, without its id (the schedule names its jobs)."""

    id = None


class JobScheduleAddParameterSerializer(WireSerializer):
    id = BatchIdField()
    displayName = StrictCharField(required=False, max_length=1024, allow_blank=True)
    schedule = ScheduleSerializer()
    jobSpecification = JobSpecificationSerializer()
    metadata = MetadataItemSerializer(many=True, required=False)


class JobScheduleUpdateParameterSerializer(WireSerializer):
    """Update (PUT) replaces all three; what it leaves out is gone."""

    schedule = ScheduleSerializer()
    jobSpecification = JobSpecificationSerializer()
    metadata = MetadataItemSerializer(many=True, required=False)


class JobSchedulePatchParameterSerializer(WireSerializer):
    """Patch changes what it names and keeps the rest."""

    schedule = ScheduleSerializer(required=False)
    jobSpecification = JobSpecificationSerializer(required=False)
    metadata = MetadataItemSerializer(many=True, required=False)
