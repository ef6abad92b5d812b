"""api-version and timeout/timeOut on every call (REFERENCE §0, §1)."""

import json

import pytest

from tests.conftest import error_code

pytestmark = pytest.mark.django_db

# Every api-version since 2020-09-01.12.0 (azure-batch 10.0.0 on): Azure serves them, and
# scripts pin old SDKs (Azure's Python quickstart: azure-batch 11.0.0, 2021-06-01.14.0).
SUPPORTED = [
    "2020-09-01.12.0",
    "2021-06-01.14.0",
    "2022-01-01.15.0",
    "2022-10-01.16.0",
    "2023-05-01.17.0",
    "2023-11-01.18.0",
    "2024-02-01.19.0",
    "2024-07-01.20.0",
    "2025-06-01",
]


def values(response) -> dict:
    return {v["key"]: v["value"] for v in json.loads(response.content).get("values", [])}


@pytest.mark.parametrize("version", SUPPORTED)
def test_every_supported_api_version_is_served(batch, job, version):
    assert batch.get(f"/jobs/{job.job_id}/tasks", api_version=version).status_code == 200
    r = batch.post(
        f"/jobs/{job.job_id}/tasks",
        {"id": "t-" + version.replace(".", "-"), "commandLine": "x"},
        api_version=version,
    )
    assert r.status_code == 201


def test_a_missing_api_version_is_a_missing_required_query_parameter(batch, job):
    r = batch.get(f"/jobs/{job.job_id}/tasks", api_version=None)
    assert (r.status_code, error_code(r)) == (400, "MissingRequiredQueryParameter")
    assert values(r) == {"QueryParameterName": "api-version"}


@pytest.mark.parametrize(
    "version", ["2020-03-01.11.0", "2019-08-01.10.0", "2025-06-01.0", "latest"]
)
def test_an_unknown_api_version_is_an_invalid_query_parameter_value(batch, job, version):
    # UNCONFIRMED (REFERENCE §15.1): InvalidQueryParameterValue, not UnsupportedRequestVersion.
    r = batch.get(f"/jobs/{job.job_id}/tasks", api_version=version)
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue")
    assert values(r)["QueryParameterName"] == "api-version"


def test_an_empty_api_version_is_missing_as_every_empty_parameter_is_absent(batch, job):
    # The SDKs sign no empty parameter, so none may mean more than its absence.
    r = batch.get(f"/jobs/{job.job_id}/tasks", api_version="")
    assert (r.status_code, error_code(r)) == (400, "MissingRequiredQueryParameter")


def test_a_write_with_an_unknown_api_version_changes_nothing(batch, job):
    r = batch.post(
        f"/jobs/{job.job_id}/tasks", {"id": "t", "commandLine": "x"}, api_version="1999-01-01"
    )
    assert r.status_code == 400 and not job.tasks.exists()


def test_the_api_version_name_is_case_insensitive(batch, job):
    r = batch.get(
        f"/jobs/{job.job_id}/tasks", api_version=None, params={"API-Version": "2025-06-01"}
    )
    assert r.status_code == 200, r.content


@pytest.mark.parametrize("name", ["timeout", "timeOut", "TIMEOUT"])
def test_timeout_is_accepted_under_either_spelling(batch, job, name):
    assert batch.get(f"/jobs/{job.job_id}/tasks", params={name: "30"}).status_code == 200


def test_a_timeout_over_30_seconds_is_not_refused(batch, job):
    assert batch.get(f"/jobs/{job.job_id}/tasks", params={"timeOut": "600"}).status_code == 200


@pytest.mark.parametrize("value", ["abc", "1.5"])
def test_a_timeout_that_is_not_an_integer_is_invalid(batch, job, value):
    r = batch.get(f"/jobs/{job.job_id}/tasks", params={"timeout": value})
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue")
    assert values(r)["QueryParameterName"] == "timeout"


def test_an_empty_timeout_is_absent(batch, job):
    assert batch.get(f"/jobs/{job.job_id}/tasks", params={"timeout": ""}).status_code == 200
