"""API throughput with a light client: Get Task, List Tasks with $filter and Add Task
Collection through gunicorn, each as requests/s and p50/p99 beside a bare Django JSON view
served by the same gunicorn, the same configuration and the same middleware in the same
run (issue 8; target: Get Task >= 0.5 of the bare view).

The server is `manage.py serve`'s gunicorn command line (batchsite.gunicorn_conf, its
worker, --workers, 4 threads, the access log) with benchmarks/ on its --pythonpath and
DJANGO_SETTINGS_MODULE=_bare_settings, which adds the route `/bare` (benchmarks/_bare_urls.py)
to batchsite's own: the view exists only in this benchmark's server.

The client is built not to be the bottleneck: every request is signed once before the
clock starts (ocp-date stays valid for 15 minutes) and kept as bytes, sent over keep-alive
sockets by a few threads that read just the status line, Content-Length and body. Its
own ceiling is measured in the same run against a canned-answer server (an asyncio
process that answers every request at once) and printed with the client's CPU per
request: the figures below are the server's only while that ceiling is far above them.

Each round gives every endpoint --seconds, in slices of half a second taken in turn (the
canned server, the bare view, Get, List, Add, again and again) over the same keep-alive
connections: the machine's load changes from second to second and every endpoint gets its
share of each second. The figures are the medians of the rounds, the ratios those of the
medians.

The job holds --tasks tasks (a third completed by Terminate Task, the rest active, no
node); Get Task rotates over 500 of them; List Tasks is `$filter=state eq 'completed'`,
maxresults=100 (the first page); Add Task Collection sends 100 new `/bin/true` tasks per
request (so its requests/s times 100 is tasks/s).

Usage: .venv/bin/python benchmarks/bench_api_throughput.py [--seconds 5] [--rounds 3] [--connections 8]
                                                          [--workers 2] [--tasks 10000]
DATABASE_URL=postgres://... measures on PostgreSQL (its tables are migrated and written to).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import threading
import time

from _common import ROOT, describe_run, free_port, setup_django, wait_port
from _nodes import percentile
from _signed import signed_request

KEY = "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMDA="
COLLECTION = 100
SLICE = 0.5  # seconds an endpoint is driven before the next one


# --- the light client --------------------------------------------------------------------


def raw_request(
    method: str, path: str, port: int, *, params=None, body=None, signed: bool = True
) -> bytes:
    """The bytes of one request, signed now."""
    if signed:
        url, data, headers = signed_request(
            method, path, account="bench", key=KEY, params=params, body=body
        )
    else:
        url, data, headers = path, b"", {}
    lines = [f"{method} {url} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if method != "GET" and "content-length" not in {k.lower() for k in headers}:
        lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


class Measurement:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.seconds = 0.0
        self.cpu = 0.0
        self.exhausted = False

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def ms(self, p: float) -> float:
        return percentile(self.latencies, p) * 1000 if self.latencies else float("nan")


def _read_answer(sock: socket.socket, buf: bytearray) -> tuple[int, bool]:
    """Read one response (status line, headers, Content-Length body): (status, close)."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head = bytes(buf[:end]).lower()
    status = int(head[9:12])
    length = 0
    i = head.find(b"\r\ncontent-length:")
    if i >= 0:
        j = head.find(b"\r\n", i + 2)
        length = int(head[i + 17 : j if j >= 0 else len(head)])
    close = b"\r\nconnection: close" in head
    total = end + 4 + length
    while len(buf) < total:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    del buf[:total]
    return status, close


class Source:
    """Requests to send: round-robin, or each once (Add Task Collection's new tasks)."""

    def __init__(self, requests: list[bytes], *, reuse: bool = True) -> None:
        self.requests, self.reuse = requests, reuse
        self.position = 0
        self.lock = threading.Lock()

    def next(self) -> bytes | None:
        with self.lock:
            i = self.position
            self.position += 1
        if not self.reuse and i >= len(self.requests):
            return None
        return self.requests[i % len(self.requests)]


class Client:
    """`connections` keep-alive sockets to one server, kept from one slice to the next (so
    every endpoint is measured over the same connections, hence the same workers)."""

    def __init__(self, port: int, connections: int) -> None:
        self.port = port
        self.sockets: list[socket.socket | None] = [None] * connections
        self.buffers = [bytearray() for _ in range(connections)]

    def close(self) -> None:
        for sock in self.sockets:
            if sock is not None:
                sock.close()

    def drive(self, source: Source, m: Measurement, *, seconds: float, ok: set[int]) -> None:
        """Send from `source` over every connection for `seconds`; add to `m`."""
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds

        def worker(n: int) -> None:
            latencies, errors = [], []
            while time.perf_counter() < stop_at:
                data = source.next()
                if data is None:
                    m.exhausted = True
                    break
                if self.sockets[n] is None:
                    sock = socket.create_connection(("127.0.0.1", self.port))
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.sockets[n], self.buffers[n] = sock, bytearray()
                sock, buf = self.sockets[n], self.buffers[n]
                started = time.perf_counter()
                try:
                    sock.sendall(data)
                    status, close = _read_answer(sock, buf)
                except OSError as e:
                    errors.append(type(e).__name__)
                    sock.close()
                    self.sockets[n] = None
                    continue
                latencies.append(time.perf_counter() - started)
                if status not in ok:
                    errors.append(str(status))
                if close:
                    sock.close()
                    self.sockets[n] = None
            with lock:
                m.latencies += latencies
                for e in errors:
                    m.errors[e] = m.errors.get(e, 0) + 1

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(self.sockets))]
        cpu = time.process_time()
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        m.seconds += time.perf_counter() - started
        m.cpu += time.process_time() - cpu


def _canned_server(port: int, ready) -> None:
    """Answer every request at once with a small JSON body: the client's ceiling."""
    body = json.dumps({"id": "canned", "state": "active"}).encode()
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )

    class Answerer(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.pending = transport, b""

        def data_received(self, data):
            self.pending += data
            n = self.pending.count(b"\r\n\r\n")
            if n:
                self.pending = self.pending[self.pending.rindex(b"\r\n\r\n") + 4 :]
                self.transport.write(answer * n)

    async def main():
        server = await asyncio.get_running_loop().create_server(Answerer, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- the data and the server ---------------------------------------------------------------


def make_job(tasks: int):
    from tasks.models import Account, Task
    from tasks.operations import jobs as job_ops
    from tasks.operations import tasks as task_ops
    from tasks.wire.serializers import TaskAddParameterSerializer, validate_wire

    account = Account.objects.create(name="bench", primary_key=KEY)
    job = job_ops.add_job(account, spec={"id": "bench", "poolInfo": {"poolId": "nowhere"}})
    for start in range(0, tasks, COLLECTION):
        raws = [
            {"id": f"t{i:06d}", "commandLine": "/bin/true"}
            for i in range(start, min(tasks, start + COLLECTION))
        ]
        task_ops.add_task_collection(
            job,
            specs=[validate_wire(TaskAddParameterSerializer, r) for r in raws],
            ids=[r["id"] for r in raws],
        )
    for task in Task.objects.filter(job=job).order_by("id_key")[::3]:
        task.job = job
        task_ops.terminate_task(task)
    return job


def start_server(data, port: int, workers: int) -> subprocess.Popen:
    from tasks.management.commands.serve import _gunicorn

    argv = _gunicorn("127.0.0.1", port, workers) + ["--pythonpath", str(ROOT / "benchmarks")]
    env = dict(os.environ, BATCHSITE_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="_bare_settings")
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args()
    data = setup_django("api")
    from django.db import connection

    job = make_job(args.tasks)
    database = describe_run().split(";")[0]
    connection.close()

    port = free_port()
    server = start_server(data, port, args.workers)
    ready = multiprocessing.Event()
    canned_port = free_port()
    canned = multiprocessing.Process(target=_canned_server, args=(canned_port, ready), daemon=True)
    canned.start()
    try:
        wait_port(port, timeout=120)
        ready.wait(30)
        ids = [f"t{i:06d}" for i in range(0, min(args.tasks, 5000), 10)]
        get = [raw_request("GET", f"/jobs/{job.job_id}/tasks/{i}", port) for i in ids]
        listing = [
            raw_request(
                "GET",
                f"/jobs/{job.job_id}/tasks",
                port,
                params={"$filter": "state eq 'completed'", "maxresults": "100"},
            )
        ]
        bare = [raw_request("GET", "/bare", port, signed=False)]
        canned_requests = [raw_request("GET", "/bare", canned_port, signed=False)]

        def collections(tag: str, count: int) -> list[bytes]:
            return [
                raw_request(
                    "POST",
                    f"/jobs/{job.job_id}/addtaskcollection",
                    port,
                    body={
                        "value": [
                            {"id": f"a{tag}-{n:05d}-{i:03d}", "commandLine": "/bin/true"}
                            for i in range(COLLECTION)
                        ]
                    },
                )
                for n in range(count)
            ]

        api, ceiling = Client(port, args.connections), Client(canned_port, args.connections)
        sources = {
            "bare": (Source(bare), {200}),
            "get": (Source(get), {200}),
            "list": (Source(listing), {200}),
        }
        # Warm up: connections, the workers' lazy imports, the database's caches.
        for source, ok in sources.values():
            api.drive(source, Measurement(), seconds=1.0, ok=ok)
        api.drive(
            Source(collections("warm", 50), reuse=False), Measurement(), seconds=1.0, ok={200}
        )
        figures: dict[str, list[Measurement]] = {
            k: [] for k in ("ceiling", "bare", "get", "list", "add")
        }
        loads = [os.getloadavg()[0]]
        slices = max(1, round(args.seconds / SLICE))
        for r in range(args.rounds):
            # Every endpoint in turn, SLICE seconds each, `slices` times: the machine's load
            # changes from second to second, and each endpoint gets its share of every second.
            rounds = {name: Measurement() for name in figures}
            adding = (Source(collections(str(r), 500), reuse=False), {200})
            answers = (Source(canned_requests), {200})
            for _ in range(slices):
                for name, (source, ok) in {"ceiling": answers, **sources, "add": adding}.items():
                    client = ceiling if name == "ceiling" else api
                    client.drive(source, rounds[name], seconds=SLICE, ok=ok)
            for name, m in rounds.items():
                figures[name].append(m)
            loads.append(os.getloadavg()[0])
        api.close()
        ceiling.close()
    finally:
        server.terminate()
        server.wait(30)
        canned.terminate()

    def med(name: str, attr) -> float:
        return statistics.median(attr(m) for m in figures[name])

    bare_rate = med("bare", lambda m: m.rate)
    print(
        f"API throughput through gunicorn ({args.workers} workers x 4 threads), {database}, "
        f"{args.connections} keep-alive connections, pre-signed requests; medians of {args.rounds} rounds "
        f"of {args.seconds:.0f} s; load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs"
    )
    ceiling = med("ceiling", lambda m: m.rate)
    print(
        f"  client ceiling (canned answers, same client): {ceiling:,.0f} req/s = "
        f"{ceiling / bare_rate:.1f}x the bare view"
    )
    print(
        f"{'':<38}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}{'client CPU/req':>16}  errors"
    )
    labels = {
        "bare": "bare Django JSON view",
        "get": "Get Task",
        "list": "List Tasks $filter (100 of a page)",
        "add": f"Add Task Collection ({COLLECTION} tasks)",
    }
    for name, label in labels.items():
        rate = med(name, lambda m: m.rate)
        cpu_us = med(name, lambda m: m.cpu / max(1, len(m.latencies)) * 1e6)
        errors: dict[str, int] = {}
        for m in figures[name]:
            for k, v in m.errors.items():
                errors[k] = errors.get(k, 0) + v
        exhausted = (
            " (ran out of prepared bodies)" if any(m.exhausted for m in figures[name]) else ""
        )
        print(
            f"  {label:<36}{rate:>9,.0f}{med(name, lambda m: m.ms(50)):>9.1f}{med(name, lambda m: m.ms(99)):>9.1f}"
            f"{rate / bare_rate:>8.2f}{cpu_us:>13.0f} us  {errors or '-'}{exhausted}"
        )
    add_rate = med("add", lambda m: m.rate)
    print(f"  Add Task Collection: {add_rate * COLLECTION:,.0f} tasks/s")
    get_ratio = med("get", lambda m: m.rate) / bare_rate
    print(f"ratio Get Task / bare view: {get_ratio:.2f}   target: >= 0.5")


if __name__ == "__main__":
    main()
