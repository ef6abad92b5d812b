"""A task's resourceFiles, downloaded on its node before its command runs, as Batch does.

The agent runs this file as a program (`python -I resource_files.py MANIFEST`) in the
task's session, with the task's environment, as the task's first process: the agent's loop
never waits on a download, and a terminate, a wall-clock limit or a lost agent kills it
like the task's own processes. It imports nothing but the standard library (no Django,
no database: it runs with a task's environment).

The manifest (JSON) lists `[directory, resourceFile]` pairs; each resource file is placed
as Batch places it: `httpUrl` at `filePath` (required), `storageContainerUrl` every blob of
the container (under `blobPrefix`) at its name, under `filePath` when given; `fileMode`
(octal, default 0770) applied to each file. A `filePath` may not leave its directory
(absolute, `..`), and the walk there never follows a link: a link where a directory is
expected fails the task, a link where the file goes is replaced by the file.

It exits 0 when every file is in place, or with one of EXIT_CODES after writing
`batchsite: <reason>` as its last line to stderr; the agent then completes the task with
that failure code (Batch's task failure codes; not retried, as Batch does not retry
pre-processing errors) and the reason as failureInfo.message.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree

EXIT_CODES = {
    10: "BlobNotFound",
    11: "BlobAccessDenied",
    12: "BlobDownloadTimedOut",
    13: "BlobDownloadMiscError",
    14: "ResourceFileCreateFailed",
    15: "ResourceFileWriteFailed",
}
_CODE = {code: exit_code for exit_code, code in EXIT_CODES.items()}
PREFIX = "batchsite: "
TIMEOUT_SECONDS = 60  # no byte for this long: BlobDownloadTimedOut
DEFAULT_MODE = 0o770
_CHUNK = 1 << 20


class Failed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def failure_of(exit_code: int, stderr_path: str) -> tuple[str, str]:
    """The failure code and message of a download that exited with `exit_code` (for the
    agent: the reason is the last `batchsite:` line of the task's stderr.txt)."""
    code = EXIT_CODES.get(exit_code, "BlobDownloadMiscError")
    message = "A resource file could not be downloaded."
    try:
        with open(stderr_path, "rb") as f:
            f.seek(max(os.fstat(f.fileno()).st_size - 2048, 0))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith(PREFIX):
            message = line[len(PREFIX):]
            break
    return code, message


# --- placing files, never through a link ---------------------------------------------------

def _relative_parts(file_path: str) -> list[str]:
    parts = [p for p in file_path.replace("\\", "/").split("/") if p not in ("", ".")]
    if file_path.startswith("/") or ".." in parts:
        raise Failed("ResourceFileCreateFailed",
                     f"The resource file path {file_path} must be relative and stay in its directory.")
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
                raise Failed("ResourceFileCreateFailed",
                             f"The directory {part} of a resource file cannot be used: {e.strerror}.") from None
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
            raise Failed("ResourceFileCreateFailed", f"The resource file {name} cannot be created: {e.strerror}.") from None
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
        return urllib.request.urlopen(urllib.request.Request(url, headers={"x-ms-version": "2021-08-06"}),
                                      timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as e:
        e.close()
        code = {404: "BlobNotFound", 401: "BlobAccessDenied", 403: "BlobAccessDenied"}.get(e.code,
                                                                                         "BlobDownloadMiscError")
        raise Failed(code, f"Downloading {_shown(url)} answered HTTP {e.code} {str(e.reason).rstrip('.')}.") from None
    except TimeoutError:
        raise Failed("BlobDownloadTimedOut", f"Downloading {_shown(url)} timed out.") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        if isinstance(getattr(e, "reason", None), TimeoutError):
            raise Failed("BlobDownloadTimedOut", f"Downloading {_shown(url)} timed out.") from None
        raise Failed("BlobDownloadMiscError", f"Downloading {_shown(url)} failed: {getattr(e, 'reason', e)}.") from None


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
                    raise Failed("BlobDownloadTimedOut", f"Downloading {_shown(url)} timed out.") from None
                except OSError as e:
                    raise Failed("BlobDownloadMiscError", f"Downloading {_shown(url)} failed: {e}.") from None
                if not chunk:
                    break
                try:
                    os.write(fd, chunk)
                except OSError as e:
                    raise Failed("ResourceFileWriteFailed",
                                 f"The resource file {file_path} cannot be written: {e.strerror}.") from None
            os.fchmod(fd, stat.S_IMODE(mode))
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)
        response.close()


def container_blobs(container_url: str, prefix: str) -> list[str]:
    """The names of the container's blobs under `prefix` (List Blobs, every page)."""
    parts = urllib.parse.urlsplit(container_url)
    names, marker = [], ""
    while True:
        query = [("restype", "container"), ("comp", "list"), *([("prefix", prefix)] if prefix else []),
                 *([("marker", marker)] if marker else [])]
        sep = "&" if parts.query else ""
        url = urllib.parse.urlunsplit(parts._replace(query=parts.query + sep + urllib.parse.urlencode(query)))
        with _get(url) as response:
            try:
                tree = ElementTree.fromstring(response.read())
            except (ElementTree.ParseError, OSError) as e:
                raise Failed("BlobDownloadMiscError", f"Listing {_shown(container_url)} failed: {e}.") from None
        names += [n.text for n in tree.iterfind("Blobs/Blob/Name") if n.text]
        marker = tree.findtext("NextMarker") or ""
        if not marker:
            return names


def blob_url(container_url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(container_url)
    path = parts.path.rstrip("/") + "/" + urllib.parse.quote(name)
    return urllib.parse.urlunsplit(parts._replace(path=path))


def place(root: str, spec: dict) -> None:
    """Put one resource file (or a container's blobs) under `root`."""
    mode = _mode(spec)
    file_path = spec.get("filePath") or ""
    if spec.get("httpUrl"):
        download(spec["httpUrl"], root, file_path, mode)
    elif spec.get("storageContainerUrl"):
        base = _relative_parts(file_path)
        for name in container_blobs(spec["storageContainerUrl"], spec.get("blobPrefix") or ""):
            download(blob_url(spec["storageContainerUrl"], name), root, "/".join([*base, name]), mode)
    else:
        raise Failed("BlobDownloadMiscError",
                     "autoStorageContainerName needs an auto-storage account, which batchsite has not.")


def main(argv: list[str]) -> int:
    with open(argv[1]) as f:
        entries = json.load(f)
    os.unlink(argv[1])  # it holds SAS tokens: read once
    try:
        for root, spec in entries:
            place(root, spec)
    except Failed as failed:
        sys.stderr.write(f"{PREFIX}{failed.message}\n")
        return _CODE[failed.code]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
