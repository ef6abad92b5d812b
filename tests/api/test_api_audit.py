"""Every state change the dashboard audits is audited when it comes through the Batch API
too: who (`api:<account>`, the account whose key signed the call), what, on what, and how
it ended — a refusal included, since the API answered it."""

import pytest

from tasks.models import AuditRecord
from tests.conftest import error_code
from tests.factories import ComputeNodeFactory, PoolFactory, TaskFactory

pytestmark = pytest.mark.django_db


def only_record(account) -> AuditRecord:
    [record] = AuditRecord.objects.filter(account=account)
    return record


def test_a_terminate_through_the_api_is_recorded_as_the_account(batch, account, job):
    TaskFactory(job=job, task_id="t1", running=True)
    assert batch.post(f"/jobs/{job.job_id}/tasks/t1/terminate").status_code == 204
    record = only_record(account)
    assert (record.actor, record.user, record.action) == (f"api:{account.name}", None, "terminate")
    assert record.scope == {"job": job.job_id, "tasks": ["t1"]}
    assert record.outcome == {"succeeded": 1}


def test_a_refused_terminate_is_recorded_with_its_error_code(batch, account, job):
    TaskFactory(job=job, task_id="t1", succeeded=True)
    r = batch.post(f"/jobs/{job.job_id}/tasks/t1/terminate")
    assert (r.status_code, error_code(r)) == (409, "TaskCompleted")
    assert only_record(account).outcome["refused"] == "TaskCompleted"


def test_a_call_on_a_missing_task_records_nothing(batch, account, job):
    assert batch.post(f"/jobs/{job.job_id}/tasks/nope/terminate").status_code == 404
    assert not AuditRecord.objects.exists()


@pytest.mark.parametrize(
    ("method", "path", "body", "action", "trait"),
    [
        ("post", "/tasks", {"id": "new", "commandLine": "/bin/true"}, "add", "failed"),
        ("put", "/tasks/t1", {"constraints": {"maxTaskRetryCount": 2}}, "update", "running"),
        ("post", "/tasks/t1/reactivate", None, "reactivate", "failed"),
        ("delete", "/tasks/t1", None, "delete", "failed"),
    ],
)
def test_each_task_action_is_recorded(batch, account, job, method, path, body, action, trait):
    TaskFactory(job=job, task_id="t1", **{trait: True})
    args = {"body": body} if body is not None else {}
    r = getattr(batch, method)(f"/jobs/{job.job_id}{path}", **args)
    assert r.status_code < 300, r.content
    record = only_record(account)
    assert (record.actor, record.action, record.outcome) == (
        f"api:{account.name}",
        action,
        {"succeeded": 1},
    )
    assert record.scope["job"] == job.job_id


def test_a_task_collection_is_one_record_with_its_refusals(batch, account, job):
    TaskFactory(job=job, task_id="dup")
    r = batch.post(
        f"/jobs/{job.job_id}/addtaskcollection",
        {
            "value": [
                {"id": "a", "commandLine": "/bin/true"},
                {"id": "dup", "commandLine": "/bin/true"},
            ]
        },
    )
    assert r.status_code == 200
    record = only_record(account)
    assert (record.action, record.scope["tasks"]) == ("add", ["a", "dup"])
    assert record.outcome == {
        "state": "done",
        "total": 2,
        "succeeded": 1,
        "refused": {"TaskExists": 1},
    }


def test_pool_and_node_actions_are_recorded_as_the_dashboard_records_them(batch, account):
    pool = PoolFactory(account=account, pool_id="p")
    ComputeNodeFactory(pool=pool, node_id="n1", state="idle")
    assert batch.post("/pools/p/resize", {"targetDedicatedNodes": 2}).status_code == 202
    assert batch.post("/pools/p/nodes/n1/disablescheduling", {}).status_code == 200
    records = list(AuditRecord.objects.filter(account=account).order_by("pk"))
    assert [(r.action, r.actor) for r in records] == [
        ("pool-resize", f"api:{account.name}"),
        ("node-disable-scheduling", f"api:{account.name}"),
    ]
    assert records[0].scope == {"pool": "p", "targetDedicatedNodes": 2, "targetLowPriorityNodes": 0}
    assert records[1].scope == {"pool": "p", "nodes": ["n1"], "option": "requeue"}
