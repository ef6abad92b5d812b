"""Terminate latency: from Terminate Task (15.x SDK, gunicorn) to the task's process gone,
for a running `sleep`, on 2 local nodes, beside the same-run latency of killing the same
process directly from Python (issue 3; target p95 < 1 s).

Usage: .venv/bin/python benchmarks/bench_terminate_latency.py [--samples 30]
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import psutil
from _common import describe_run, setup_django
from _nodes import percentile, poll_seconds, service


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def direct_latency() -> float:
    proc = subprocess.Popen(["/bin/sleep", "60"])
    time.sleep(0.02)
    started = time.perf_counter()
    proc.kill()
    proc.wait()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    data = setup_django("terminate")

    from azure.batch import models as m

    from tasks.models import Task

    direct = [direct_latency() for _ in range(args.samples)]
    latencies = []
    with service(data, nodes=2, slots=2) as (client, _account, _pool):
        client.create_job(m.BatchJobCreateOptions(id="term", pool_info=m.BatchPoolInfo(pool_id="local")))
        for i in range(args.samples):
            task_id = f"t{i}"
            client.create_task("term", m.BatchTaskCreateOptions(
                id=task_id, command_line="/bin/sh -c 'echo $$ > pid; exec sleep 60'"))
            while True:
                task = Task.objects.get(job__job_id="term", task_id=task_id)
                pid_file = Path(task.task_root_directory or "/nonexistent", "wd", "pid")
                if task.state == "running" and pid_file.exists() and pid_file.read_text().strip():
                    break
                time.sleep(0.01)
            pid = int(pid_file.read_text())
            time.sleep(0.1)  # the shell has exec'd sleep
            started = time.perf_counter()
            client.terminate_task("term", task_id)
            while not gone(pid):
                time.sleep(0.002)
            latencies.append(time.perf_counter() - started)

    print(f"terminate latency of {args.samples} running tasks on 2 nodes (poll {poll_seconds()} s)")
    print(f"  {describe_run()}")
    print(f"  terminate -> process gone: p50 {percentile(latencies, 50) * 1000:7.1f} ms   "
          f"p95 {percentile(latencies, 95) * 1000:7.1f} ms   max {max(latencies) * 1000:7.1f} ms")
    print(f"  killed directly (same run): p50 {percentile(direct, 50) * 1000:5.2f} ms   "
          f"p95 {percentile(direct, 95) * 1000:5.2f} ms")
    print(f"  ratio p95 direct / batchsite: {percentile(direct, 95) / percentile(latencies, 95):.4f}   "
          f"target: p95 < 1000 ms")


if __name__ == "__main__":
    main()
