"""Tasks that move data, end to end: --tasks tasks (1,000) added through the 15.x SDK to a
gunicorn-served batchsite and run by local `runnode` agents, each downloading a 1 MB
resource file (a blob SAS httpUrl, as Azure's Python quickstart does) from Azurite and
uploading a 1 MB output (an OutputFile to a container SAS on task success, through
azure-storage-blob in tasks/node/output_files.py), from the first add to the last
completed; beside the same transfers done directly with azure-storage-blob in this
process, as many at a time as the nodes have slots (issue 10). Every output blob is
checked to be there with its 1 MB.

The ratio is the service's rate over the direct one. The direct transfers have no task
around them: no process, no task directory, no claim or report, no upload program
started (whose `import azure.storage.blob` alone is printed too: the interpreter with the
import against the interpreter without it, medians of 5).

Figures (2026-12-01, 2 CPUs shared with other engineers' test runs, load average 10-15,
SQLite, 2 nodes x 2 slots, 1,000 tasks):
  through batchsite 1.2 tasks/s (838 s) beside 14.2 tasks/s directly: ratio 0.08
  (40 tasks at load 11-12: 1.0 beside 14.3 tasks/s, ratio 0.07).
  `import azure.storage.blob` in the upload program: 1.1-1.2 s a task at that load (the
  interpreter alone 0.2 s; `-X importtime` puts the import at ~0.6 s of CPU, most of it
  azure.core's requests/urllib3 transport and the blob client's generated models).
Where a task's ~3.4 s of slot time goes at that load: two interpreters started (the
download program with the standard library only, the upload program with
azure-storage-blob), the command, and the agent's claim and report; the direct baseline
has none of that (threads in one warm process). The import is the largest single part: an
upload program that kept azure-storage-blob imported across tasks (a fork server) would
remove it, but the uploader would then no longer be started through tasks/node/process.py
in the task's own session as the task's user.

Usage: .venv/bin/python benchmarks/bench_task_files.py [--tasks 1000] [--nodes 2] [--slots 2]
       (DATABASE_URL=postgres://... for PostgreSQL; Azurite from tests/storage/azurite.py)
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import ROOT, setup_django
from _nodes import service

MB = 1 << 20


def start_azurite(location: Path) -> tuple[subprocess.Popen, str]:
    from tests.storage.azurite import ACCOUNT, program

    found = program()
    if found is None:
        raise SystemExit(
            "Azurite is not installed: npm install --prefix ~/.cache/batchsite-azurite azurite"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            found,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(location),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}/{ACCOUNT}"
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("Azurite did not start") from None
            time.sleep(0.1)


def sas_urls(endpoint: str, inputs: str, outputs: str) -> tuple[str, str]:
    from azure.storage.blob import (
        BlobSasPermissions,
        ContainerSasPermissions,
        generate_blob_sas,
        generate_container_sas,
    )

    from tests.storage.azurite import ACCOUNT, KEY

    expiry = datetime.now(UTC) + timedelta(hours=4)
    blob = generate_blob_sas(
        ACCOUNT,
        inputs,
        "input.bin",
        account_key=KEY,
        expiry=expiry,
        permission=BlobSasPermissions(read=True),
    )
    container = generate_container_sas(
        ACCOUNT,
        outputs,
        account_key=KEY,
        expiry=expiry,
        permission=ContainerSasPermissions(write=True, create=True),
    )
    return f"{endpoint}/{inputs}/input.bin?{blob}", f"{endpoint}/{outputs}?{container}"


def direct(
    service_client, inputs: str, outputs: str, count: int, concurrency: int, work: Path
) -> float:
    """The baseline: per task, the 1 MB blob downloaded to a file and a 1 MB file uploaded
    as a blob, with azure-storage-blob, `concurrency` tasks at a time."""
    source = service_client.get_blob_client(inputs, "input.bin")
    container = service_client.get_container_client(outputs)
    work.mkdir(parents=True, exist_ok=True)

    def one(i: int) -> None:
        path = work / f"in{i}.bin"
        with open(path, "wb") as f:
            source.download_blob().readinto(f)
        with open(path, "rb") as f:
            container.upload_blob(f"direct/{i}.bin", f, overwrite=True)

    t = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - t


def import_cost() -> float:
    """Seconds `import azure.storage.blob` adds to the upload program's start (medians of 5)."""

    def run(code: str) -> float:
        samples = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-I", "-c", code], check=True)
            samples.append(time.perf_counter() - t)
        return statistics.median(samples)

    return run("import azure.storage.blob, azure.core.exceptions") - run("pass")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--slots", type=int, default=2)
    args = parser.parse_args()
    data = setup_django("files")
    sys.path.insert(0, str(ROOT))
    from azure.batch import models as m
    from azure.storage.blob import BlobServiceClient

    from tasks.models import Task
    from tests.storage.azurite import ACCOUNT, KEY

    load_before = os.getloadavg()
    azurite, endpoint = start_azurite(Path(tempfile.mkdtemp(prefix="batchsite-bench-azurite-")))
    try:
        storage = BlobServiceClient.from_connection_string(
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={endpoint};"
        )
        inputs, outputs = "inputs", "outputs"
        storage.create_container(inputs)
        storage.create_container(outputs)
        storage.get_blob_client(inputs, "input.bin").upload_blob(os.urandom(MB))
        input_url, output_url = sas_urls(endpoint, inputs, outputs)
        concurrency = args.nodes * args.slots

        direct_seconds = direct(storage, inputs, outputs, args.tasks, concurrency, data / "direct")
        with service(data, nodes=args.nodes, slots=args.slots) as (client, _account, _pool):
            client.create_job(
                m.BatchJobCreateOptions(id="files", pool_info=m.BatchPoolInfo(pool_id="local"))
            )
            upload = m.OutputFileUploadConfiguration(
                upload_condition=m.OutputFileUploadCondition.TASK_SUCCESS
            )
            tasks = [
                m.BatchTaskCreateOptions(
                    id=f"t{i:05d}",
                    command_line="/bin/sh -c 'cp input.bin output.bin'",
                    resource_files=[m.ResourceFile(http_url=input_url, file_path="input.bin")],
                    output_files=[
                        m.OutputFile(
                            file_pattern="output.bin",
                            upload_options=upload,
                            destination=m.OutputFileDestination(
                                container=m.OutputFileBlobContainerDestination(
                                    container_url=output_url, path=f"service/{i}.bin"
                                )
                            ),
                        )
                    ],
                )
                for i in range(args.tasks)
            ]
            t = time.perf_counter()
            client.create_tasks("files", tasks, max_concurrency=4)
            while (
                Task.objects.filter(job__job_id="files")
                .exclude(state=Task.State.COMPLETED)
                .exists()
            ):
                time.sleep(0.2)
            service_seconds = time.perf_counter() - t
            load_during = os.getloadavg()
        failed = Task.objects.filter(job__job_id="files").exclude(result=Task.Result.SUCCESS)
        if failed.exists():
            raise SystemExit(f"{failed.count()} tasks failed, e.g. {failed.first().failure_info}")
        uploaded = [
            b for b in storage.get_container_client(outputs).list_blobs(name_starts_with="service/")
        ]
        assert len(uploaded) == args.tasks and all(b.size == MB for b in uploaded), (
            "outputs missing"
        )
        cost = import_cost()
    finally:
        azurite.terminate()
        azurite.wait(10)
    service_rate, direct_rate = args.tasks / service_seconds, args.tasks / direct_seconds
    print(
        f"{args.tasks:,} tasks, each 1 MB down and 1 MB up, {args.nodes} nodes x {args.slots} slots, "
        f"{'PostgreSQL' if os.environ.get('DATABASE_URL', '').startswith('postgres') else 'SQLite'}"
    )
    print(
        f"  through batchsite (add to last completed): {service_rate:>7,.1f} tasks/s ({service_seconds:.1f} s)"
    )
    print(
        f"  azure-storage-blob directly (same run)   : {direct_rate:>7,.1f} tasks/s ({direct_seconds:.1f} s)"
    )
    print(f"  ratio batchsite/direct: {service_rate / direct_rate:.2f}")
    print(f"  import azure.storage.blob in the upload program: {cost * 1000:.0f} ms a task")
    print(
        f"  load average before {load_before[0]:.1f}, at the end {load_during[0]:.1f} ({os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
