"""The wire shapes of Batch jobs (JobAddParameter, JobUpdateParameter, JobDisableParameter,
JobTerminateParameter): built on the task shapes (serializers) and the pool shapes
(pool_serializers, for poolInfo.autoPoolSpecification), which import neither this module
nor each other's back."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from tasks.models import DisableJobOption, Job

from .pool_serializers import AutoPoolSpecificationSerializer
from .serializers import (
    BatchIdField,
    DurationField,
    EnumField,
    EnvironmentSettingSerializer,
    JobManagerTaskSerializer,
    MetadataItemSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    WireSerializer,
)


class JobConstraintsSerializer(WireSerializer):
    maxWallClockTime = DurationField(required=False)
    maxTaskRetryCount = StrictIntegerField(required=False)  # its range: operations.constraints


class AutoPoolSpecificationField(serializers.Field):
    """poolInfo.autoPoolSpecification, validated like Add Pool's body."""

    def to_internal_value(self, data):
        nested = AutoPoolSpecificationSerializer()
        nested.bind(self.field_name, self.parent)  # a nested serializer refuses unknown properties
        return nested.run_validation(data)

    def to_representation(self, value):  # pragma: no cover - output is built in render.py
        return value


class PoolInfoSerializer(WireSerializer):
    poolId = BatchIdField(required=False)
    autoPoolSpecification = AutoPoolSpecificationField(required=False)

    def validate(self, attrs):
        # One of the two; an auto pool's rules are the rules layer's (tasks.operations.auto_pools).
        if "poolId" not in attrs and "autoPoolSpecification" not in attrs:
            raise serializers.ValidationError(
                {"poolId": ErrorDetail("This field is required.", "required")}
            )
        return attrs


class JobAddParameterSerializer(WireSerializer):
    id = BatchIdField()
    displayName = StrictCharField(required=False, max_length=1024, allow_blank=True)
    usesTaskDependencies = StrictBooleanField(required=False)
    priority = StrictIntegerField(required=False)  # its range: operations.constraints
    allowTaskPreemption = StrictBooleanField(required=False)
    maxParallelTasks = StrictIntegerField(required=False)  # its range: operations.constraints
    constraints = JobConstraintsSerializer(required=False)
    jobManagerTask = JobManagerTaskSerializer(required=False)
    jobPreparationTask = serializers.DictField(required=False)
    jobReleaseTask = serializers.DictField(required=False)
    commonEnvironmentSettings = EnvironmentSettingSerializer(many=True, required=False)
    poolInfo = PoolInfoSerializer()
    onAllTasksComplete = EnumField(Job.OnAllTasksComplete.values, required=False)
    onTaskFailure = EnumField(Job.OnTaskFailure.values, required=False)
    networkConfiguration = serializers.DictField(required=False)
    metadata = MetadataItemSerializer(many=True, required=False)


class JobUpdateParameterSerializer(WireSerializer):
    priority = StrictIntegerField(required=False)
    allowTaskPreemption = StrictBooleanField(required=False)
    maxParallelTasks = StrictIntegerField(required=False)
    constraints = JobConstraintsSerializer(required=False)
    poolInfo = PoolInfoSerializer(required=False)
    onAllTasksComplete = EnumField(Job.OnAllTasksComplete.values, required=False)
    metadata = MetadataItemSerializer(many=True, required=False)
    networkConfiguration = serializers.DictField(required=False)


class JobDisableParameterSerializer(WireSerializer):
    disableTasks = EnumField(DisableJobOption.values)


class JobTerminateParameterSerializer(WireSerializer):
    terminateReason = StrictCharField(required=False, max_length=64, allow_blank=True)
