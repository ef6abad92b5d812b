"""azure-batch 14.2.0 against a live server: a job manager task, itself an SDK 14 script
authenticating as Azure's samples do (BasicTokenAuthentication), adds its job's tasks with
its token, is refused outside its job, and with killJobOnCompletion ends the job
(tests/sdk/sdk14_job_manager_scenarios.py runs in .venv-sdk14)."""

from __future__ import annotations

from pathlib import Path

from tasks.models import ComputeNode, Task
from tasks.operations.pools import add_pool

SCENARIOS = Path(__file__).with_name("sdk14_job_manager_scenarios.py")
FLOW = Path(__file__).with_name("job_manager_flow.py")


def test_a_job_manager_adds_its_tasks_with_its_token_and_ends_its_job(
    run14, agents, sdk_account, live_server
):
    pool = add_pool(sdk_account, spec={"id": "jmpool14", "vmSize": "local"})
    agents.start(pool, "jm14-1", slots=3, BATCHSITE_ACCOUNT_URL=live_server.url)
    assert ComputeNode.objects.filter(pool=pool, state="idle").exists()
    out = run14("manager", "jmpool14", str(FLOW), "3", script=SCENARIOS)
    assert out["reason"] == "JMComplete"
    assert out["manager"] == ["completed", 0] and out["job_manager"] == "manager"
    assert out["tasks"] == ["manager", "w0", "w1", "w2"]
    seen = out["seen"]
    assert seen["sdk"].startswith("14.") and seen["job"] == "managed14"
    assert seen["done"] is True and seen["results"] == ["success"] * 3
    assert seen["other_job"] == [403, "AuthorizationFailure"]
    assert seen["other_add"] == [403, "AuthorizationFailure"]
    assert seen["list_jobs"] == [403, "AuthorizationFailure"]
    assert seen["pools"] == [403, "AuthorizationFailure"]
    assert not Task.objects.filter(job__job_id="not-mine14").exists()
