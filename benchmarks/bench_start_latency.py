"""Task start latency on an idle slot: from Add Task (15.x SDK, gunicorn) to the task's
process running on one of 2 idle local nodes, measured by the process itself (it prints
the time it started), beside the same-run latency of starting the same command directly
from Python (issue 3; target p50 < 0.5 s).

Usage: .venv/bin/python benchmarks/bench_start_latency.py [--samples 40]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import time

from _common import describe_run, setup_django
from _nodes import percentile, poll_seconds, service

COMMAND = ["/bin/date", "+%s.%N"]


def direct_latency() -> float:
    started = time.time()
    out = subprocess.run(COMMAND, capture_output=True, text=True, check=True).stdout
    return float(out) - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--slots", type=int, default=2)
    args = parser.parse_args()
    data = setup_django("start")

    from azure.batch import models as m

    from tasks.models import Task

    direct = [direct_latency() for _ in range(args.samples)]
    latencies = []
    with service(data, nodes=args.nodes, slots=args.slots) as (client, _account, _pool):
        client.create_job(m.BatchJobCreateOptions(id="lat", pool_info=m.BatchPoolInfo(pool_id="local")))
        for i in range(args.samples):
            # Let the nodes go idle, and add at a random moment of their poll interval.
            time.sleep(0.25 + random.random() * 0.2)
            task_id = f"t{i}"
            sent = time.time()
            client.create_task("lat", m.BatchTaskCreateOptions(id=task_id, command_line=" ".join(COMMAND)))
            while Task.objects.get(job__job_id="lat", task_id=task_id).state != "completed":
                time.sleep(0.01)
            out = b"".join(client.download_task_file("lat", task_id, "stdout.txt"))
            latencies.append(float(out) - sent)

    print(f"start latency of {args.samples} tasks on {args.nodes} idle nodes x {args.slots} slots "
          f"(poll {poll_seconds()} s)")
    print(f"  {describe_run()}")
    print(f"  add -> process running: p50 {percentile(latencies, 50) * 1000:7.1f} ms   "
          f"p95 {percentile(latencies, 95) * 1000:7.1f} ms   max {max(latencies) * 1000:7.1f} ms")
    print(f"  started directly (same run): p50 {percentile(direct, 50) * 1000:5.1f} ms   "
          f"p95 {percentile(direct, 95) * 1000:5.1f} ms")
    print(f"  ratio p50 direct / batchsite: {percentile(direct, 50) / percentile(latencies, 50):.3f}   "
          f"target: p50 < 500 ms")


if __name__ == "__main__":
    main()
