"""A NUL in a URL path is an unknown path, not a lookup: PostgreSQL answered every such
lookup with a 500 (`/jobs/a%00`, `/web/<account>/jobs/a%00/`)."""

import json

import pytest

from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path", ["/jobs/a%00", "/jobs/a%00/tasks", "/pools/a%00", "/pools/p/nodes/a%00"]
)
def test_an_api_path_with_a_nul_is_an_invalid_uri(batch, path):
    r = batch.get(path)
    assert r.status_code == 400 and json.loads(r.content)["code"] == "InvalidUri"


def test_a_dashboard_path_with_a_nul_is_not_found(client, django_user_model, account):
    user = django_user_model.objects.create_superuser("root", "", "pw-pw-pw-pw")
    client.force_login(user)
    job = JobFactory(account=account)
    assert client.get(f"/web/{account.name}/jobs/{job.job_id}/").status_code == 200
    assert client.get(f"/web/{account.name}/jobs/a%00/").status_code == 404
    assert client.get(f"/web/{account.name}/jobs/{job.job_id}/tasks/a%00/").status_code == 404
