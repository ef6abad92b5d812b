"""A task's outputFiles, uploaded from its node after its command ends, as Batch does.

The agent runs this file as a program (`python -I output_files.py MANIFEST`) in the task's
session, with the task's environment and its working directory, once the command has
exited and before it reports the attempt: the agent's loop never waits on an upload, and
a terminate or a lost agent kills it like the task's own processes. Its stdout and
stderr are the task directory's fileuploadout.txt and fileuploaderr.txt, as on a Batch
node. No Django, no database; Blob storage through azure-storage-blob.

The manifest (JSON) holds the task directory and the outputFiles whose uploadCondition
the command's exit code met (the agent decides that: tasks.node.agent). Each filePattern
is resolved as Batch resolves it: environment variables ($NAME) expanded, relative to the
working directory (`../stdout.txt` is the task's stdout), `*` and `?` within a name, `**`
across directories, `[abc]` a class; a name starting with `.` only matched by a pattern
that names the dot. A plain path uploads one file, to `destination.container.path` (the
blob name) or to its own name; a pattern uploads every file it matches, each at its path
below the pattern's first wildcard, under `path` as a virtual folder. `uploadHeaders` set
the blobs' content settings (Content-Type, Content-Encoding, Content-Language,
Content-Disposition, Cache-Control), `x-ms-meta-*` their metadata. A pattern may not leave
the task directory (batchsite's rule: Batch allows absolute paths on its own nodes).

It exits 0 when every file is uploaded. A failure does not stop the other outputFiles: it
writes Batch's JSON error line to fileuploaderr.txt (its destination without the SAS
query) and goes on; at the end it exits with the first failure's code of EXIT_CODES after
writing `batchsite-output-file: <index>,...` (every failed one) and `batchsite: <reason>`
(the first's). The agent completes the task with that failure code (Batch's
TaskFailureInformationCodes, category usererror, not retried), the command's exit code
kept, the reason as failureInfo.message and each failed output file as
failureInfo.details (`outputFile`: its index). A pattern that matches no file is a
FileUploadMiscError.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import sys
import time
import urllib.parse

EXIT_CODES = {
    20: "FileUploadMiscError",
    21: "FileUploadAccessDenied",
    22: "FileUploadContainerNotFound",
    23: "FileUploadConflict",
    24: "FileUploadTimedOut",
}
_CODE = {code: exit_code for exit_code, code in EXIT_CODES.items()}
PREFIX = "batchsite: "
INDEX_PREFIX = "batchsite-output-file: "
TIMEOUT_SECONDS = 60
_WILDCARD = re.compile(r"[*?\[]")
_CONTENT_SETTINGS = {
    "content-type": "content_type",
    "content-encoding": "content_encoding",
    "content-language": "content_language",
    "content-disposition": "content_disposition",
    "cache-control": "cache_control",
}


class Failed(Exception):
    def __init__(self, code: str, message: str, *, file: str = "", destination: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.file, self.destination = code, message, file, destination


def wanted(output_files: list[dict], *, exit_code: int | None) -> list[dict]:
    """The outputFiles whose uploadCondition the command's exit code meets (for the
    agent): tasksuccess on exit 0, taskfailure on any other, taskcompletion on both."""
    succeeded = exit_code == 0
    chosen = []
    for spec in output_files:
        condition = ((spec.get("uploadOptions") or {}).get("uploadCondition") or "").lower()
        if condition == "taskcompletion" or (condition == "tasksuccess") == succeeded:
            chosen.append(spec)
    return chosen


def failure_of(exit_code: int, err_path: str) -> tuple[str, str, list[int]]:
    """The failure code and message (the first failure's) and the failed output files
    (their indexes in the task's outputFiles) of an upload that exited with `exit_code`:
    the last `batchsite:` lines of fileuploaderr.txt, read without following a link there."""
    code = EXIT_CODES.get(exit_code, "FileUploadMiscError")
    message, indexes = "An output file could not be uploaded.", []
    # Only the agent calls this, where tasks.node is a package (this file also runs alone).
    from .resource_files import tail_lines

    lines = tail_lines(err_path)
    for line in reversed(lines):
        if line.startswith(PREFIX):
            message = line[len(PREFIX) :]
            break
    for line in reversed(lines):
        if line.startswith(INDEX_PREFIX):
            with contextlib.suppress(ValueError):
                indexes = [int(i) for i in line[len(INDEX_PREFIX) :].split(",")]
            break
    return code, message, indexes


def shown(url: str) -> str:
    """The URL without its query: a SAS token is a secret."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


# --- resolving patterns ---------------------------------------------------------------------


def resolve(task_dir: str, working_dir: str, pattern: str, path: str) -> list[tuple[str, str]]:
    """The files `pattern` names, each with its blob name: [(file, blob name)]."""
    pattern = os.path.expandvars(pattern.replace("\\", "/"))
    root = os.path.realpath(task_dir)
    full = os.path.normpath(os.path.join(working_dir, pattern))
    if not _inside(full, os.path.normpath(task_dir)):
        raise Failed(
            "FileUploadMiscError", f"The file pattern {pattern} leaves the task directory."
        )
    if not _WILDCARD.search(pattern):
        if not os.path.isfile(full):
            raise Failed(
                "FileUploadMiscError", f"No file matches the pattern {pattern}.", file=full
            )
        _check_inside(full, root, pattern)
        return [(full, path or os.path.basename(full))]
    parts = full.split("/")
    first = next(i for i, part in enumerate(parts) if _WILDCARD.search(part))
    base = "/".join(parts[:first]) or "/"
    matches = sorted(f for f in glob.glob(full, recursive=True) if os.path.isfile(f))
    if not matches:
        raise Failed("FileUploadMiscError", f"No file matches the pattern {pattern}.")
    prefix = path.strip("/") + "/" if path and path.strip("/") else ""
    resolved = []
    for file in matches:
        _check_inside(file, root, pattern)
        resolved.append((file, prefix + os.path.relpath(file, base)))
    return resolved


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _check_inside(file: str, root: str, pattern: str) -> None:
    # A link the task made may not take the upload out of its directory (the uploader
    # may run with more rights than the task).
    if not _inside(os.path.realpath(file), root):
        raise Failed(
            "FileUploadMiscError",
            f"The file {os.path.basename(file)} matched by {pattern} is a link out of the task directory.",
            file=file,
        )


# --- uploading ------------------------------------------------------------------------------


def _blob_arguments(headers: list[dict]) -> dict:
    from azure.storage.blob import ContentSettings

    settings, metadata, extra = {}, {}, {}
    for header in headers or []:
        name, value = (header.get("name") or "").strip(), header.get("value") or ""
        lowered = name.lower()
        if lowered in _CONTENT_SETTINGS:
            settings[_CONTENT_SETTINGS[lowered]] = value
        elif lowered.startswith("x-ms-meta-"):
            metadata[name[len("x-ms-meta-") :]] = value
        elif name:
            extra[name] = value
    arguments = {"content_settings": ContentSettings(**settings)} if settings else {}
    if metadata:
        arguments["metadata"] = metadata
    if extra:
        arguments["headers"] = extra
    return arguments


def _storage_failure(error: Exception, *, file: str, destination: str) -> Failed:
    from azure.core import exceptions

    status = getattr(error, "status_code", None)
    reason = (getattr(error, "reason", None) or type(error).__name__).rstrip(".")
    what = f"Uploading {os.path.basename(file)} to {destination}"
    if isinstance(error, exceptions.ResourceNotFoundError) or status == 404:
        code, text = "FileUploadContainerNotFound", f"{what} answered HTTP 404 {reason}."
    elif isinstance(error, exceptions.ClientAuthenticationError) or status in (401, 403):
        code, text = "FileUploadAccessDenied", f"{what} answered HTTP {status or 403} {reason}."
    elif isinstance(error, exceptions.ResourceExistsError) or status in (409, 412):
        code, text = "FileUploadConflict", f"{what} answered HTTP {status or 409} {reason}."
    elif isinstance(
        error, (exceptions.ServiceRequestTimeoutError, exceptions.ServiceResponseTimeoutError)
    ):
        code, text = "FileUploadTimedOut", f"{what} timed out."
    elif status:
        code, text = "FileUploadMiscError", f"{what} answered HTTP {status} {reason}."
    else:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        first = re.sub(r"https?://\S+", lambda m: shown(m.group(0)), first).rstrip(".")
        code, text = "FileUploadMiscError", f"{what} failed: {first}."
    return Failed(code, text, file=file, destination=destination)


def upload(spec: dict, files: list[tuple[str, str]]) -> None:
    from azure.core.exceptions import AzureError
    from azure.storage.blob import ContainerClient

    container_spec = (spec.get("destination") or {}).get("container") or {}
    url = container_spec.get("containerUrl") or ""
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
        raise Failed("FileUploadMiscError", "An output file's containerUrl must be http or https.")
    arguments = _blob_arguments(container_spec.get("uploadHeaders") or [])
    try:
        container = ContainerClient.from_container_url(
            url, retry_total=2, connection_timeout=TIMEOUT_SECONDS, read_timeout=TIMEOUT_SECONDS
        )
    except ValueError as e:
        raise Failed(
            "FileUploadMiscError", f"The containerUrl {shown(url)} cannot be used: {e}."
        ) from None
    with container:
        for file, name in files:
            destination = f"{shown(url).rstrip('/')}/{name}"
            _log(f"Uploading {file} to {destination}")
            try:
                fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError as e:
                raise Failed(
                    "FileUploadMiscError",
                    f"The file {os.path.basename(file)} cannot be read: {e.strerror}.",
                    file=file,
                    destination=destination,
                ) from None
            with os.fdopen(fd, "rb") as data:
                try:
                    container.upload_blob(
                        name, data, length=os.fstat(fd).st_size, overwrite=True, **arguments
                    )
                except AzureError as e:
                    raise _storage_failure(e, file=file, destination=destination) from None
            _log(f"Uploaded {file} ({os.path.getsize(file)} bytes)")


def _log(text: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    sys.stdout.write(f"{stamp} {text}\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    # After the manifest, the agent's site-packages when this runs on another Python than
    # the agent's (tasks.nodehost.identity.interpreter): azure-storage-blob is there.
    sys.path.extend(argv[2:])
    with open(argv[1]) as f:
        manifest = json.load(f)
    os.unlink(argv[1])  # it holds SAS tokens: read once
    task_dir, working_dir = manifest["taskDir"], manifest["workingDir"]
    first: Failed | None = None
    failed_indexes: list[int] = []
    for index, spec in manifest["outputFiles"]:
        # A failed output file does not stop the others: what can be kept is kept; the
        # task fails with the first failure.
        pattern = spec.get("filePattern") or ""
        path = ((spec.get("destination") or {}).get("container") or {}).get("path") or ""
        try:
            files = resolve(task_dir, working_dir, pattern, path)
            _log(f"Resolved pattern {pattern}: {len(files)} file(s)")
            upload(spec, files)
        except Failed as failed:
            error = {
                "code": failed.code,
                "user_error": True,
                "pattern": pattern,
                "file": failed.file,
                "destination": failed.destination,
                "message": failed.message,
            }
            sys.stderr.write(f"{json.dumps(error)}\n")
            _log(f"Failed: {failed.message}")
            failed_indexes.append(index)
            first = first or failed
    if first is not None:
        sys.stderr.write(
            f"{INDEX_PREFIX}{','.join(map(str, failed_indexes))}\n{PREFIX}{first.message}\n"
        )
        return _CODE[first.code]
    _log("All output files uploaded")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
