"""Job preparation and release tasks with real agents (tasks/node/job_tasks.py): an agent
that dies mid-preparation runs it again when it comes back, maxWallClockTime ends one,
the tasks see its directory, and a release runs after the job's tasks on the node."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from tasks.models import ComputeNode, Job, JobPreparation, Task
from tasks.operations.jobs import terminate_job
from tasks.operations.pools import add_pool
from tests.agents import wait_for
from tests.execution import add, make_job
from tests.factories import AccountFactory


def sh(script: str) -> str:
    return f"/bin/sh -c '{script}'"


def record(job) -> JobPreparation | None:
    return JobPreparation.objects.filter(job=job).first()


def test_an_agent_killed_mid_preparation_runs_it_again_before_the_jobs_tasks(
    agents, transactional_db
):
    pool = add_pool(AccountFactory(), spec={"id": "prep-crash", "vmSize": "local"})
    agents.start(pool, "n1", slots=1)
    # The first run hangs; the second (after the restart) ends at once.
    prep = sh(
        "echo run >> $AZ_BATCH_NODE_SHARED_DIR/runs; "
        "[ $(wc -l < $AZ_BATCH_NODE_SHARED_DIR/runs) -ge 2 ] || sleep 60"
    )
    job = make_job(pool.account, pool, "crashjob", jobPreparationTask={"commandLine": prep})
    task = add(job, "t1", sh("cat $AZ_BATCH_NODE_SHARED_DIR/runs | wc -l"))
    runs = Path(ComputeNode.objects.get(pool=pool, node_id="n1").root_dir) / "shared" / "runs"
    wait_for(
        lambda: runs.exists() and runs.read_text() == "run\n",
        timeout=30,
        message="the preparation to start",
    )
    assert record(job).prep_state == "running"
    agents.kill("n1")
    assert Task.objects.get(pk=task.pk).state == "active"  # the claim never took it
    agents.start(pool, "n1", slots=1, clean=False)
    wait_for(
        lambda: Task.objects.get(pk=task.pk).state == "completed",
        timeout=40,
        message="t1 to complete",
    )
    r = record(job)
    assert (r.prep_state, r.prep_result, r.prep_retry_count) == ("completed", "success", 0)
    node = ComputeNode.objects.get(pool=pool, node_id="n1")
    assert r.boot == node.registered
    root = Path(node.root_dir)
    assert (root / "shared" / "runs").read_text() == "run\nrun\n"
    assert (root / "workitems/crashjob/job-1/t1/stdout.txt").read_text().strip() == "2"


def test_max_wall_clock_time_ends_a_preparation_and_the_release_runs_after_the_tasks(
    agents, transactional_db
):
    pool = add_pool(AccountFactory(), spec={"id": "prep-wall", "vmSize": "local"})
    agents.start(pool, "n1", slots=2)
    slow = make_job(
        pool.account,
        pool,
        "slowprep",
        jobPreparationTask={
            "commandLine": "/bin/sleep 60",
            "constraints": {"maxWallClockTime": "PT1S"},
        },
    )
    add(slow, "t1")
    wait_for(
        lambda: (r := record(slow)) is not None and r.prep_state == "completed",
        timeout=30,
        message="the preparation to be ended",
    )
    r = record(slow)
    assert (r.prep_result, r.prep_failure_info["code"]) == ("failure", "TaskEnded")
    assert Task.objects.get(job=slow).state == "active"

    job = make_job(
        pool.account,
        pool,
        "relj",
        jobPreparationTask={"commandLine": "/bin/true"},
        jobReleaseTask={"commandLine": sh("env > env.txt")},
    )
    task = add(job, "t1", sh("echo $AZ_BATCH_JOB_PREP_WORKING_DIR; sleep 1"))
    wait_for(
        lambda: Task.objects.get(pk=task.pk).state == "completed",
        timeout=30,
        message="t1 to complete",
    )
    terminate_job(job)
    wait_for(
        lambda: Job.objects.get(pk=job.pk).state == "completed",
        timeout=30,
        message="the job to complete",
    )
    r = record(job)
    assert (r.release_state, r.release_result) == ("completed", "success")
    node = ComputeNode.objects.get(pool=pool, node_id="n1")
    root = Path(node.root_dir)
    prep_dir = root / "workitems/relj/job-1/jobpreparation"
    assert (root / "workitems/relj/job-1/t1/stdout.txt").read_text().strip() == f"{prep_dir}/wd"
    env = dict(
        line.split("=", 1)
        for line in (root / "workitems/relj/job-1/jobrelease/wd/env.txt").read_text().splitlines()
        if "=" in line
    )
    assert (env["AZ_BATCH_TASK_ID"], env["AZ_BATCH_JOB_ID"], env["AZ_BATCH_JOB_PREP_DIR"]) == (
        "jobrelease",
        "relj",
        str(prep_dir),
    )
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == str(root / "workitems/relj/job-1/jobrelease/wd")


def test_preparations_that_run_as_root_take_turns_on_the_host(agents, transactional_db):
    """As root start tasks do (tasks/node/root_turns.py): two nodes' admin preparations
    (apt-get install, say) run one after the other on the one host they share."""
    log = Path(settings.DATA_DIR) / "preparation-turns.txt"
    log.unlink(missing_ok=True)  # the data dir outlives a test
    pool = add_pool(AccountFactory(), spec={"id": "prep-turns", "vmSize": "local"})
    agents.start(pool, "n1", slots=1, wait=False)
    agents.start(pool, "n2", slots=1)
    step = f"echo start $(date +%s.%N) >> {log}; sleep 0.6; echo end $(date +%s.%N) >> {log}"
    job = make_job(
        pool.account,
        pool,
        "turnsjob",
        jobPreparationTask={
            "commandLine": sh(step),
            "userIdentity": {"autoUser": {"elevationLevel": "admin"}},
        },
    )
    tasks = [add(job, f"t{i}", sh("sleep 0.5")) for i in range(4)]
    wait_for(
        lambda: all(Task.objects.get(pk=t.pk).state == "completed" for t in tasks),
        timeout=40,
        message="the job's tasks",
    )
    records = JobPreparation.objects.filter(job=job)
    assert sorted(r.node.node_id for r in records) == ["n1", "n2"]
    assert {(r.prep_state, r.prep_result) for r in records} == {("completed", "success")}
    events = sorted(
        (float(t), kind) for kind, t in (line.split() for line in log.read_text().splitlines())
    )
    assert [kind for _, kind in events] == ["start", "end", "start", "end"], events
