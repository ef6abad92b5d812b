"""A task's resourceFiles, downloaded on its node before its command runs, as Batch does.

The agent runs this file as a program (`python -I resource_files.py MANIFEST`) in the
task's session, with the task's environment, as the task's first process: the agent's loop
never waits on a download, and a terminate, a wall-clock limit or a lost agent kills it
like the task's own processes. No Django, no database (it runs with a task's
environment): an `httpUrl` is fetched with the standard library, a container (a
`storageContainerUrl`, or an `autoStorageContainerName` the agent turned into a
container URL with a short-lived SAS) is listed and read with azure-storage-blob,
imported only then (about 1 s of a loaded 2-CPU machine: benchmarks/bench_task_files.py).

The manifest (JSON) lists `[directory, resourceFile]` pairs; each resource file is placed
as Batch places it: `httpUrl` at `filePath` (required), `storageContainerUrl` every blob of
the container (under `blobPrefix`) at its name, under `filePath` when given; `fileMode`
(octal, default 0770) applied to each file. A `filePath` may not leave its directory
(absolute, `..`), and the walk there never follows a link: a link where a directory is
expected fails the task, a link where the file goes is replaced by the file.

It exits 0 when every file is in place, or with one of EXIT_CODES after writing
`batchsite: <reason>` as its last line to stderr (the line before it names the failing
entry: `batchsite-resource-file: <index>`); the agent then completes the task with that
failure code (Batch's TaskFailureInformationCodes, category usererror; not retried, as
Batch does not retry pre-processing errors), the reason as failureInfo.message and the
entry as failureInfo.details (`resourceFile`: its index in the manifest).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import sys
import urllib.error
import urllib.parse
import urllib.request

EXIT_CODES = {
    10: "BlobNotFound",
    11: "BlobAccessDenied",
    12: "BlobDownloadTimedOut",
    13: "BlobDownloadMiscError",
    14: "ResourceFileCreateFailed",
    15: "ResourceFileWriteFailed",
    16: "ResourceContainerNotFound",
    17: "ResourceContainerAccessDenied",
    18: "ResourceContainerListTimedOut",
    19: "ResourceContainerListMiscError",
}
_CODE = {code: exit_code for exit_code, code in EXIT_CODES.items()}
PREFIX = "batchsite: "
INDEX_PREFIX = "batchsite-resource-file: "
TIMEOUT_SECONDS = 60  # no byte for this long: BlobDownloadTimedOut
DEFAULT_MODE = 0o770
_CHUNK = 1 << 20


class Failed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def failure_of(exit_code: int, stderr_path: str) -> tuple[str, str, int | None]:
    """The failure code, message and failing entry (its index in the manifest, None when
    unknown) of a download that exited with `exit_code` (for the agent: they are the last
    `batchsite:` lines of the task's stderr.txt, read without following a link there)."""
    code = EXIT_CODES.get(exit_code, "BlobDownloadMiscError")
    message, index = "A resource file could not be downloaded.", None
    lines = tail_lines(stderr_path)
    for line in reversed(lines):
        if line.startswith(PREFIX):
            message = line[len(PREFIX) :]
            break
    for line in reversed(lines):
        if line.startswith(INDEX_PREFIX):
            with contextlib.suppress(ValueError):
                index = int(line[len(INDEX_PREFIX) :])
            break
    return code, message, index


def tail_lines(path: str, size: int = 4096) -> list[str]:
    """The last lines of a file a task could have replaced by a link: never followed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        f.seek(max(os.fstat(fd).st_size - size, 0))
        return f.read().decode("utf-8", "replace").splitlines()


# --- placing files, never through a link ---------------------------------------------------


def _relative_parts(file_path: str) -> list[str]:
    parts = [p for p in file_path.replace("\\", "/").split("/") if p not in ("", ".")]
    if file_path.startswith("/") or ".." in parts:
        raise Failed(
            "ResourceFileCreateFailed",
            f"The resource file path {file_path} must be relative and stay in its directory.",
        )
    return parts


def _open_dir(root: str, parts: list[str]) -> int:
    """A descriptor of root/parts..., each directory made when missing, none a link."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts:
            try:
                os.mkdir(part, 0o770, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as e:
                raise Failed(
                    "ResourceFileCreateFailed",
                    f"The directory {part} of a resource file cannot be used: {e.strerror}.",
                ) from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _create(dir_fd: int, name: str, mode: int) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    try:
        return os.open(name, flags, mode, dir_fd=dir_fd)
    except OSError as e:
        if not os.path.islink(f"/proc/self/fd/{dir_fd}/{name}"):
            raise Failed(
                "ResourceFileCreateFailed",
                f"The resource file {name} cannot be created: {e.strerror}.",
            ) from None
    os.unlink(name, dir_fd=dir_fd)  # a link where the file goes: the file replaces it
    return os.open(name, flags, mode, dir_fd=dir_fd)


def _mode(spec: dict) -> int:
    text = spec.get("fileMode")
    if text is None:
        return DEFAULT_MODE
    try:
        mode = int(text, 8)
    except (TypeError, ValueError):
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise Failed("ResourceFileCreateFailed", f"The fileMode {text} is not an octal file mode.")
    return mode


# --- downloading ---------------------------------------------------------------------------


def _get(url: str):
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
        raise Failed("BlobDownloadMiscError", "A resource file URL must be http or https.")
    try:
        return urllib.request.urlopen(
            urllib.request.Request(url, headers={"x-ms-version": "2021-08-06"}),
            timeout=TIMEOUT_SECONDS,
        )
    except urllib.error.HTTPError as e:
        e.close()
        code = {404: "BlobNotFound", 401: "BlobAccessDenied", 403: "BlobAccessDenied"}.get(
            e.code, "BlobDownloadMiscError"
        )
        raise Failed(
            code, f"Downloading {_shown(url)} answered HTTP {e.code} {str(e.reason).rstrip('.')}."
        ) from None
    except TimeoutError:
        raise Failed("BlobDownloadTimedOut", f"Downloading {_shown(url)} timed out.") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        if isinstance(getattr(e, "reason", None), TimeoutError):
            raise Failed("BlobDownloadTimedOut", f"Downloading {_shown(url)} timed out.") from None
        raise Failed(
            "BlobDownloadMiscError", f"Downloading {_shown(url)} failed: {getattr(e, 'reason', e)}."
        ) from None


def _shown(url: str) -> str:
    """The URL without its query: a SAS token is a secret."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def download(url: str, root: str, file_path: str, mode: int) -> None:
    parts = _relative_parts(file_path)
    if not parts:
        raise Failed("ResourceFileCreateFailed", "A resource file needs a filePath.")
    response = _get(url)
    dir_fd = _open_dir(root, parts[:-1])
    try:
        fd = _create(dir_fd, parts[-1], mode)
        try:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except TimeoutError:
                    raise Failed(
                        "BlobDownloadTimedOut", f"Downloading {_shown(url)} timed out."
                    ) from None
                except OSError as e:
                    raise Failed(
                        "BlobDownloadMiscError", f"Downloading {_shown(url)} failed: {e}."
                    ) from None
                if not chunk:
                    break
                try:
                    os.write(fd, chunk)
                except OSError as e:
                    raise Failed(
                        "ResourceFileWriteFailed",
                        f"The resource file {file_path} cannot be written: {e.strerror}.",
                    ) from None
            os.fchmod(fd, stat.S_IMODE(mode))
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)
        response.close()


def _container_client(container_url: str):
    if urllib.parse.urlsplit(container_url).scheme.lower() not in ("http", "https"):
        raise Failed(
            "ResourceContainerListMiscError", "A storageContainerUrl must be http or https."
        )
    from azure.storage.blob import ContainerClient  # only a task with a container pays the import

    try:
        return ContainerClient.from_container_url(
            container_url,
            retry_total=2,
            connection_timeout=TIMEOUT_SECONDS,
            read_timeout=TIMEOUT_SECONDS,
        )
    except ValueError as e:
        raise Failed(
            "ResourceContainerListMiscError",
            f"The storageContainerUrl {_shown(container_url)} cannot be used: {e}.",
        ) from None


def _storage_failure(error: Exception, *, what: str, codes: dict[str, str]) -> Failed:
    """Batch's failure for an azure-storage-blob error; `codes` maps "missing", "denied",
    "timeout" and "other" to the failure codes of the operation."""
    from azure.core import exceptions

    status = getattr(error, "status_code", None)
    reason = (getattr(error, "reason", None) or type(error).__name__).rstrip(".")
    if isinstance(error, exceptions.ResourceNotFoundError) or status == 404:
        return Failed(codes["missing"], f"{what} answered HTTP 404 {reason}.")
    if isinstance(error, exceptions.ClientAuthenticationError) or status in (401, 403):
        return Failed(codes["denied"], f"{what} answered HTTP {status or 403} {reason}.")
    if isinstance(
        error, (exceptions.ServiceRequestTimeoutError, exceptions.ServiceResponseTimeoutError)
    ):
        return Failed(codes["timeout"], f"{what} timed out.")
    if status:
        return Failed(codes["other"], f"{what} answered HTTP {status} {reason}.")
    return Failed(codes["other"], f"{what} failed: {_first_line(error)}.")


def _first_line(error: Exception) -> str:
    """An error's text without the URLs (with their SAS) that azure-core puts in it."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return re.sub(r"https?://\S+", lambda m: _shown(m.group(0)), text).rstrip(".")


_LIST = {
    "missing": "ResourceContainerNotFound",
    "denied": "ResourceContainerAccessDenied",
    "timeout": "ResourceContainerListTimedOut",
    "other": "ResourceContainerListMiscError",
}
_READ = {
    "missing": "BlobNotFound",
    "denied": "BlobAccessDenied",
    "timeout": "BlobDownloadTimedOut",
    "other": "BlobDownloadMiscError",
}


def container_blobs(container, prefix: str) -> list[str]:
    """The names of the container's blobs under `prefix` (List Blobs, every page)."""
    from azure.core.exceptions import AzureError

    try:
        return [b.name for b in container.list_blobs(name_starts_with=prefix or None)]
    except AzureError as e:
        raise _storage_failure(e, what=f"Listing {_shown(container.url)}", codes=_LIST) from None


def download_blob(container, name: str, root: str, file_path: str, mode: int) -> None:
    from azure.core.exceptions import AzureError

    parts = _relative_parts(file_path)
    what = f"Downloading {_shown(container.url).rstrip('/')}/{name}"
    try:
        stream = container.download_blob(name)
    except AzureError as e:
        raise _storage_failure(e, what=what, codes=_READ) from None
    dir_fd = _open_dir(root, parts[:-1])
    try:
        fd = _create(dir_fd, parts[-1], mode)
        with os.fdopen(fd, "wb") as out:
            try:
                for chunk in stream.chunks():
                    try:
                        out.write(chunk)
                    except OSError as e:
                        raise Failed(
                            "ResourceFileWriteFailed",
                            f"The resource file {file_path} cannot be written: {e.strerror}.",
                        ) from None
            except AzureError as e:
                raise _storage_failure(e, what=what, codes=_READ) from None
            os.fchmod(fd, stat.S_IMODE(mode))
    finally:
        os.close(dir_fd)


def place(root: str, spec: dict) -> None:
    """Put one resource file (or a container's blobs) under `root`."""
    mode = _mode(spec)
    file_path = spec.get("filePath") or ""
    if spec.get("httpUrl"):
        download(spec["httpUrl"], root, file_path, mode)
    elif spec.get("storageContainerUrl"):
        base = _relative_parts(file_path)
        container = _container_client(spec["storageContainerUrl"])
        with container:
            for name in container_blobs(container, spec.get("blobPrefix") or ""):
                download_blob(container, name, root, "/".join([*base, name]), mode)
    else:
        # The agent turns an autoStorageContainerName into a storageContainerUrl when the
        # account has auto-storage (tasks/node/auto_storage.py); here it has not.
        raise Failed(
            "ResourceContainerAccessDenied",
            f"The account has no auto-storage for the container {spec.get('autoStorageContainerName')}: "
            "configure it in BATCHSITE_AUTO_STORAGE.",
        )


def main(argv: list[str]) -> int:
    # After the manifest, the agent's site-packages when this runs on another Python than
    # the agent's (tasks.nodehost.identity.interpreter): azure-storage-blob is there.
    sys.path.extend(argv[2:])
    with open(argv[1]) as f:
        entries = json.load(f)
    os.unlink(argv[1])  # it holds SAS tokens: read once
    for index, (root, spec) in enumerate(entries):
        try:
            place(root, spec)
        except Failed as failed:
            sys.stderr.write(f"{INDEX_PREFIX}{index}\n{PREFIX}{failed.message}\n")
            return _CODE[failed.code]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
