"""The flow of Azure's Python Batch tutorials (batch-python-quickstart; the ffmpeg tutorial
for output files), shared by the 15.1.0 and 14.2.0 tests: inputs uploaded to a container
with azure-storage-blob, one task per input with a ResourceFile(http_url=<blob SAS URL>,
file_path=<name>), a command that transforms it, and an OutputFile to an output container
SAS URL uploaded on task success; beside them, in the same job, the three ways such a
script goes wrong: an output pattern that matches nothing, a bad SAS, an unreachable
httpUrl. The storage side runs here (Azurite); the SDK side in each test."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

INPUTS = {f"taskdata{i}.txt": f"input number {i}\nsecond line of {i}\n".encode() for i in range(3)}
# What each failing task gets wrong, and the failureInfo code Batch gives it.
FAILING = {
    "nomatch": "FileUploadMiscError",
    "badsas": "BlobAccessDenied",
    "unreachable": "BlobDownloadMiscError",
}


def transformed(data: bytes) -> bytes:
    return data.upper()


def command_line(name: str) -> str:
    return f'/bin/bash -c "tr a-z A-Z < {name} > {output_name(name)}"'


def output_name(name: str) -> str:
    return name.replace("taskdata", "output")


@dataclass
class Flow:
    """The tasks to add: [(task id, command line, [(http url, file path)], [(pattern, container url)])]."""

    output_container: str
    tasks: list[tuple[str, str, list[tuple[str, str]], list[tuple[str, str]]]] = field(
        default_factory=list
    )
    closed: socket.socket | None = None

    def close(self) -> None:
        if self.closed is not None:
            self.closed.close()


def prepare(azurite) -> Flow:
    inputs, outputs = azurite.container("input"), azurite.container("output")
    for name, data in INPUTS.items():
        azurite.put(inputs, name, data)
    out_url = azurite.container_sas_url(outputs, write=True)
    flow = Flow(output_container=outputs)
    for i, name in enumerate(INPUTS):
        flow.tasks.append(
            (
                f"Task{i}",
                command_line(name),
                [(azurite.blob_sas_url(inputs, name), name)],
                [(output_name(name), out_url)],
            )
        )
    name = "taskdata0.txt"
    bad_sas = azurite.blob_sas_url(inputs, name).replace("sig=", "sig=BAD")
    flow.closed = socket.socket()
    flow.closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    unreachable = f"http://127.0.0.1:{flow.closed.getsockname()[1]}/{name}"
    flow.tasks += [
        (
            "nomatch",
            command_line(name),
            [(azurite.blob_sas_url(inputs, name), name)],
            [("nothing-*.txt", out_url)],
        ),
        ("badsas", command_line(name), [(bad_sas, name)], [(output_name(name), out_url)]),
        ("unreachable", command_line(name), [(unreachable, name)], [(output_name(name), out_url)]),
    ]
    return flow


def check_blobs(azurite, flow: Flow) -> None:
    """Every good task's output is in the output container with the transformed bytes,
    and nothing else is."""
    assert azurite.names(flow.output_container) == sorted(output_name(n) for n in INPUTS)
    for name, data in INPUTS.items():
        assert azurite.get(flow.output_container, output_name(name)) == transformed(data)
