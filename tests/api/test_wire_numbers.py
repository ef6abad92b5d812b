"""Integers and booleans sent as JSON strings (issue 8, item 15). The Azure CLI sends
`"maxTaskRetryCount": "1"` and the Batch service accepts it: it reads bodies with ODataLib,
which turns a string into the property's type with .NET's Convert.ChangeType (invariant
culture), that is Int32.Parse with NumberStyles.Integer (ASCII digits, an optional sign,
surrounding whitespace) and Boolean.Parse ("true"/"false" in any case). What those refuse
stays refused. The rule lives in the shared field types, so every serializer has it."""

import json

import pytest
from rest_framework.exceptions import ValidationError

from tasks.models import Job, Pool, Task
from tasks.wire.serializers import StrictBooleanField, StrictIntegerField
from tests.conftest import error_code

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("-1", -1),
        ("+7", 7),
        (" 12 ", 12),
        ("\t3\r\n", 3),
        ("007", 7),
        ("2147483647", 2**31 - 1),
    ],
)
def test_a_string_holding_an_integer_is_that_integer(text, value):
    assert StrictIntegerField().run_validation(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "1.0",
        "1e3",
        "0x10",
        "1_000",
        "1 2",
        "+-1",
        "one",
        "\u0661\u0662",
        "\uff11",
        "1\u00a0",
    ],
)
def test_a_string_that_int32_parse_refuses_is_still_a_wrong_type(text):
    with pytest.raises(ValidationError) as refused:
        StrictIntegerField().run_validation(text)
    assert refused.value.detail[0].code == "type"


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("False", False), ("TRUE", True), (" false ", False)]
)
def test_a_string_holding_a_boolean_is_that_boolean(text, value):
    assert StrictBooleanField().run_validation(text) is value


@pytest.mark.parametrize("text", ["", "yes", "1", "0", "t", "truth"])
def test_a_string_that_boolean_parse_refuses_is_still_a_wrong_type(text):
    with pytest.raises(ValidationError) as refused:
        StrictBooleanField().run_validation(text)
    assert refused.value.detail[0].code == "type"


def test_json_booleans_and_numbers_keep_their_own_types():
    for field, wrong in (
        (StrictIntegerField(), True),
        (StrictIntegerField(), 1.5),
        (StrictBooleanField(), 1),
    ):
        with pytest.raises(ValidationError) as refused:
            field.run_validation(wrong)
        assert refused.value.detail[0].code == "type"


def test_add_task_reads_every_integer_sent_as_a_string(batch, job):
    job.uses_task_dependencies = True
    job.save()
    r = batch.post(
        f"/jobs/{job.job_id}/tasks",
        {
            "id": "t1",
            "commandLine": "/bin/true",
            "requiredSlots": "2",
            "constraints": {"maxTaskRetryCount": "3"},
            "exitConditions": {
                "exitCodes": [{"code": "-1", "exitOptions": {"dependencyAction": "satisfy"}}],
                "exitCodeRanges": [{"start": "2", "end": " 9", "exitOptions": {}}],
            },
            "dependsOn": {"taskIdRanges": [{"start": "1", "end": "3"}]},
        },
    )
    assert r.status_code == 201, r.content
    task = Task.objects.get(task_id="t1")
    assert (task.required_slots, task.max_task_retry_count) == (2, 3)
    assert task.spec["exitConditions"]["exitCodes"][0]["code"] == -1
    assert task.spec["exitConditions"]["exitCodeRanges"][0] == {
        "start": 2,
        "end": 9,
        "exitOptions": {},
    }
    assert task.spec["dependsOn"]["taskIdRanges"] == [{"start": 1, "end": 3}]
    got = json.loads(batch.get(f"/jobs/{job.job_id}/tasks/t1").content)
    assert got["requiredSlots"] == 2 and got["constraints"]["maxTaskRetryCount"] == 3


def test_a_string_integer_out_of_range_is_an_invalid_value_like_the_number(batch, job):
    for value in ("-2", -2):
        r = batch.post(
            f"/jobs/{job.job_id}/tasks",
            {"id": "t1", "commandLine": "x", "constraints": {"maxTaskRetryCount": value}},
        )
        assert (r.status_code, error_code(r)) == (400, "InvalidPropertyValue"), r.content


def test_update_task_reads_a_retry_count_sent_as_a_string(batch, job):
    batch.post(f"/jobs/{job.job_id}/tasks", {"id": "t1", "commandLine": "x"})
    r = batch.put(f"/jobs/{job.job_id}/tasks/t1", {"constraints": {"maxTaskRetryCount": "4"}})
    assert r.status_code == 200, r.content
    assert Task.objects.get(task_id="t1").max_task_retry_count == 4


def test_add_job_reads_integers_and_booleans_sent_as_strings(batch):
    r = batch.post(
        "/jobs",
        {
            "id": "j1",
            "poolInfo": {"poolId": "p"},
            "priority": "-5",
            "maxParallelTasks": "3",
            "usesTaskDependencies": "True",
            "allowTaskPreemption": "false",
            "constraints": {"maxTaskRetryCount": "2"},
        },
    )
    assert r.status_code == 201, r.content
    job = Job.objects.get(job_id="j1")
    assert (
        job.priority,
        job.max_parallel_tasks,
        job.max_task_retry_count,
        job.uses_task_dependencies,
    ) == (-5, 3, 2, True)
    assert job.spec["allowTaskPreemption"] is False


def test_patch_job_reads_a_priority_sent_as_a_string(batch, job):
    r = batch.patch(f"/jobs/{job.job_id}", {"priority": "9"})
    assert r.status_code == 200, r.content
    job.refresh_from_db()
    assert job.priority == 9


def test_add_pool_reads_node_counts_and_flags_sent_as_strings(batch):
    r = batch.post(
        "/pools",
        {
            "id": "p1",
            "vmSize": "standard_d2s_v3",
            "targetDedicatedNodes": "2",
            "taskSlotsPerNode": "3",
            "enableInterNodeCommunication": "true",
        },
    )
    assert r.status_code == 201, r.content
    pool = Pool.objects.get(pool_id="p1")
    assert pool.task_slots_per_node == 3 and pool.target_dedicated_nodes == 2
    assert pool.spec["enableInterNodeCommunication"] is True
