"""Pool lifecycle scenarios run under azure-batch 14.2.0 (msrest; api-version 2024-02-01.19.0).

Run by tests/sdk/test_sdk14_pools.py in .venv-sdk14 while the test process runs the
reconciler; 14.x has no long-running-operation pollers, so each scenario polls the way a
14.x script does (Get Pool until allocationState is steady). Each prints one JSON line of
what it observed; the test asserts. Usage: sdk14_pool_scenarios.py SCENARIO [ARGS];
BATCH_URL, BATCH_ACCOUNT, BATCH_KEY in env.
"""

import datetime as dt
import json
import sys

from azure.batch import models as m
from sdk14_common import client, code_of, wait

IMAGE = m.VirtualMachineConfiguration(
    image_reference=m.ImageReference(
        publisher="canonical",
        offer="0001-com-ubuntu-server-jammy",
        sku="22_04-lts",
        version="latest",
    ),
    node_agent_sku_id="batch.node.ubuntu 22.04",
)


def add_pool(c, pool_id, *, dedicated=0, **kw):
    c.pool.add(
        m.PoolAddParameter(
            id=pool_id,
            vm_size="standard_d2s_v3",
            target_dedicated_nodes=dedicated,
            virtual_machine_configuration=IMAGE,
            **kw,
        )
    )


def idle(c, pool_id, count):
    def check():
        nodes = [n for n in c.compute_node.list(pool_id) if n.state == "idle"]
        return len(nodes) == count and nodes

    return wait(check, f"{count} idle nodes", timeout=90, interval=0.2)


def steady(c, pool_id):
    return wait(
        lambda: (lambda p: p.allocation_state == "steady" and p)(c.pool.get(pool_id)),
        "a steady pool",
        timeout=90,
        interval=0.2,
    )


def add_job(c, job_id, pool_id, tasks):
    c.job.add(m.JobAddParameter(id=job_id, pool_info=m.PoolInformation(pool_id=pool_id)))
    c.task.add_collection(job_id, tasks)


def completed(c, job_id, count):
    def check():
        tasks = list(c.task.list(job_id))
        return len(tasks) == count and all(t.state == "completed" for t in tasks) and tasks

    return wait(check, "the tasks to complete", timeout=90, interval=0.2)


def running(c, job_id, count):
    wait(
        lambda: sum(t.state == "running" for t in c.task.list(job_id)) == count,
        f"{count} running tasks",
        timeout=90,
        interval=0.2,
    )


def outcome(tasks):
    return sorted(
        [
            t.execution_info.requeue_count,
            t.execution_info.result,
            t.execution_info.failure_info.code if t.execution_info.failure_info else None,
        ]
        for t in tasks
    )


def scenario_lifecycle():
    c = client()
    add_pool(
        c,
        "p14",
        dedicated=2,
        task_slots_per_node=2,
        metadata=[m.MetadataItem(name="team", value="render")],
        start_task=m.StartTask(
            command_line="/bin/sh -c 'touch $AZ_BATCH_NODE_SHARED_DIR/ready; echo set up'",
            wait_for_success=True,
        ),
    )
    nodes = idle(c, "p14", 2)
    add_job(
        c,
        "j14",
        "p14",
        [
            m.TaskAddParameter(
                id=f"t{i}", command_line="/bin/sh -c 'test -f $AZ_BATCH_NODE_SHARED_DIR/ready'"
            )
            for i in range(6)
        ],
    )
    tasks = completed(c, "j14", 6)
    pool = c.pool.get("p14")
    selected = c.pool.get("p14", pool_get_options=m.PoolGetOptions(select="id,allocationState"))
    node = c.compute_node.get(
        "p14", tasks[0].node_info.node_id
    )  # one that ran a task (fast ones may all go to one)
    [counts] = [n for n in c.account.list_pool_node_counts() if n.pool_id == "p14"]
    c.pool.patch("p14", m.PoolPatchParameter(metadata=[m.MetadataItem(name="team", value="vfx")]))
    patched = c.pool.get("p14").metadata
    c.pool.update_properties(
        "p14",
        m.PoolUpdatePropertiesParameter(
            certificate_references=[], application_package_references=[], metadata=[]
        ),
    )
    replaced = c.pool.get("p14")
    files = sorted(
        f.name for f in c.file.list_from_compute_node("p14", nodes[0].id, recursive=True)
    )
    startup = b"".join(
        c.file.get_from_compute_node("p14", nodes[0].id, "startup/stdout.txt")
    ).decode()
    images = [
        i.node_agent_sku_id
        for i in c.account.list_supported_images(
            account_list_supported_images_options=m.AccountListSupportedImagesOptions(
                filter="osType eq 'linux'"
            )
        )
    ]
    exists = [c.pool.exists("p14"), c.pool.exists("nosuch")]
    c.pool.delete("p14")
    gone = wait(
        lambda: code_of(lambda: c.pool.get("p14")) == "PoolNotFound",
        "the pool to go",
        timeout=90,
        interval=0.2,
    )
    return {
        "results": sorted({t.execution_info.result for t in tasks}),
        "on_nodes": {t.node_info.node_id for t in tasks}
        <= {n.id for n in nodes},  # a subset: fast tasks may all go to one
        "pool": [
            pool.allocation_state,
            pool.current_dedicated_nodes,
            pool.target_dedicated_nodes,
            pool.task_slots_per_node,
            pool.virtual_machine_configuration.node_agent_sku_id,
        ],
        "selected": [
            selected.id,
            selected.allocation_state,
            selected.vm_size,
            selected.target_dedicated_nodes,
        ],
        "node": [
            node.state,
            node.is_dedicated,
            node.start_task_info.state,
            node.start_task_info.exit_code,
            node.scheduling_state,
            bool(node.node_agent_info.version),
            node.total_tasks_run > 0,
        ],
        "counts": [counts.dedicated.idle, counts.dedicated.total, counts.low_priority.total],
        "patched": [(i.name, i.value) for i in patched],
        "replaced": [replaced.metadata, replaced.start_task],
        "files": [name for name in files if name.startswith(("startup/std", "shared/"))],
        "startup": startup,
        "images": "batch.node.ubuntu 22.04" in images,
        "exists": exists,
        "gone": gone,
    }


def scenario_resize_down(option):
    c = client()
    add_pool(c, "down14", dedicated=2)
    idle(c, "down14", 2)
    keep = m.TaskConstraints(retention_time=dt.timedelta(seconds=2))
    add_job(
        c,
        "j",
        "down14",
        [
            m.TaskAddParameter(id=f"t{i}", command_line="/bin/sh -c 'sleep 4'", constraints=keep)
            for i in range(2)
        ],
    )
    running(c, "j", 2)
    c.pool.resize(
        "down14", m.PoolResizeParameter(target_dedicated_nodes=1, node_deallocation_option=option)
    )
    during = c.pool.get("down14").allocation_state
    pool = steady(c, "down14")
    return {
        "during": during,
        "pool": [pool.current_dedicated_nodes, pool.target_dedicated_nodes],
        "nodes": len(list(c.compute_node.list("down14"))),
        "tasks": outcome(completed(c, "j", 2)),
    }


def scenario_resize_stop_remove():
    c = client()
    add_pool(c, "rs14", dedicated=1)
    idle(c, "rs14", 1)
    c.pool.resize(
        "rs14",
        m.PoolResizeParameter(target_dedicated_nodes=3, resize_timeout=dt.timedelta(minutes=10)),
    )
    busy = code_of(lambda: c.pool.resize("rs14", m.PoolResizeParameter(target_dedicated_nodes=2)))
    grown = steady(c, "rs14")
    first, *rest = idle(c, "rs14", 3)
    c.pool.remove_nodes(
        "rs14", m.NodeRemoveParameter(node_list=[first.id], node_deallocation_option="requeue")
    )
    removed = steady(c, "rs14")
    left = sorted(n.id for n in c.compute_node.list("rs14"))
    missing = code_of(lambda: c.compute_node.get("rs14", first.id))
    return {
        "busy": busy,
        "grown": [grown.current_dedicated_nodes, grown.resize_timeout.total_seconds()],
        "removed": [removed.current_dedicated_nodes, removed.target_dedicated_nodes],
        "left": left == sorted(n.id for n in rest),
        "missing": missing,
    }


def scenario_stop_resize():
    c = client()
    add_pool(c, "stop14")
    c.pool.resize("stop14", m.PoolResizeParameter(target_dedicated_nodes=2))
    wait(
        lambda: [n.state for n in c.compute_node.list("stop14")] == ["creating", "creating"],
        "nodes creating",
        timeout=90,
        interval=0.2,
    )
    c.pool.stop_resize("stop14")
    pool = steady(c, "stop14")
    return {
        "pool": [pool.current_dedicated_nodes, pool.target_dedicated_nodes],
        "errors": [e.code for e in pool.resize_errors],
        "nodes": len(list(c.compute_node.list("stop14"))),
    }


def scenario_autoscale():
    c = client()
    add_pool(c, "as14")
    add_job(
        c, "j", "as14", [m.TaskAddParameter(id=f"t{i}", command_line="/bin/true") for i in range(2)]
    )
    c.pool.enable_auto_scale("as14", auto_scale_formula="$TargetDedicatedNodes = 0;")
    # Microsoft's example: as many nodes as pending tasks, at most 2.
    formula = "$TargetDedicatedNodes = min(2, $PendingTasks.GetSample(1)); $NodeDeallocationOption = taskcompletion;"

    def two():
        run = c.pool.evaluate_auto_scale("as14", formula)
        return run.error is None and run.results.startswith("$TargetDedicatedNodes=2;") and run

    run = wait(two, "a sample of the pending tasks", timeout=60, interval=0.2)
    before = c.pool.get("as14").target_dedicated_nodes
    bad = code_of(lambda: c.pool.evaluate_auto_scale("as14", "$TargetDedicatedNodes = ;"))
    c.pool.enable_auto_scale(
        "as14", auto_scale_formula=formula, auto_scale_evaluation_interval=dt.timedelta(minutes=5)
    )
    pool = c.pool.get("as14")
    idle(c, "as14", 2)
    completed(c, "j", 2)
    c.pool.disable_auto_scale("as14")
    off = c.pool.get("as14")
    return {
        "results": run.results,
        "before": before,
        "bad": bad,
        "enabled": [
            pool.enable_auto_scale,
            pool.target_dedicated_nodes,
            pool.auto_scale_evaluation_interval.total_seconds(),
        ],
        "off": [off.enable_auto_scale, off.auto_scale_formula, off.target_dedicated_nodes],
    }


def scenario_reboot():
    c = client()
    add_pool(c, "rb14", dedicated=1)
    [node] = idle(c, "rb14", 1)
    add_job(c, "j", "rb14", [m.TaskAddParameter(id="t", command_line="/bin/sh -c 'sleep 3'")])
    running(c, "j", 1)
    c.compute_node.reboot("rb14", node.id, node_reboot_option="requeue")
    during = c.compute_node.get("rb14", node.id).state
    [task] = completed(c, "j", 1)
    again = c.compute_node.get("rb14", node.id)
    c.compute_node.disable_scheduling(
        "rb14", node.id, node_disable_scheduling_option="taskcompletion"
    )
    disabled = c.compute_node.get("rb14", node.id)
    twice = code_of(lambda: c.compute_node.disable_scheduling("rb14", node.id))
    c.compute_node.enable_scheduling("rb14", node.id)
    return {
        "during": during,
        "task": [task.execution_info.requeue_count, task.execution_info.result],
        "rebooted": again.last_boot_time > node.last_boot_time,
        "disabled": [disabled.scheduling_state, disabled.state],
        "twice": twice,
        "enabled": c.compute_node.get("rb14", node.id).scheduling_state,
    }


def scenario_auto_pool():
    c = client()
    spec = m.PoolSpecification(
        vm_size="standard_d2s_v3", target_dedicated_nodes=1, virtual_machine_configuration=IMAGE
    )
    c.job.add(
        m.JobAddParameter(
            id="auto14",
            on_all_tasks_complete="terminateJob",
            pool_info=m.PoolInformation(
                auto_pool_specification=m.AutoPoolSpecification(
                    auto_pool_id_prefix="a14",
                    pool_lifetime_option="job",
                    keep_alive=False,
                    pool=spec,
                )
            ),
        )
    )
    pool_id = c.job.get("auto14").execution_info.pool_id
    c.task.add_collection(
        "auto14", [m.TaskAddParameter(id=f"t{i}", command_line="/bin/true") for i in range(3)]
    )
    wait(
        lambda: c.job.get("auto14").state == "completed",
        "the job to complete",
        timeout=90,
        interval=0.2,
    )
    tasks = list(c.task.list("auto14"))
    gone = wait(
        lambda: code_of(lambda: c.pool.get(pool_id)) == "PoolNotFound",
        "the auto pool to go",
        timeout=90,
        interval=0.2,
    )
    return {
        "pool_id": pool_id,
        "results": sorted({t.execution_info.result for t in tasks}),
        "pools": sorted({t.node_info.pool_id for t in tasks}),
        "gone": gone,
        "info": c.job.get("auto14").pool_info.auto_pool_specification.auto_pool_id_prefix,
    }


if __name__ == "__main__":
    name, *args = sys.argv[1:]
    print(json.dumps(globals()[f"scenario_{name}"](*args), default=str))
