"""Guarded file I/O: every file a user names is read and written through here.

Reading: only regular files (a FIFO would hang, a device such as /dev/zero would never end, a folder is a typo),
at most a size cap (a document is a few KiB; 50 MB of YAML would take minutes and hundreds of MB), UTF-8 text
with a message naming the file and line when it is not, JSON nested too deeply for the parser as damaged JSON
(`parse_json`; YAML's depth limit is in spec/yamlcheck.py). Referenced files (FDL scripts, template includes) must
resolve inside the folder of the file that names them. A file holding credentials is read only when no other
user may read or change it (`read_private_file`).

Writing: atomic (a crash never leaves a half-written file), with the mode from the first byte on, only onto a
regular file or a new one (never over a device, a FIFO or a folder), checked before any side effect, and never
silently over a file of another kind (a kubeconfig merged into a cluster spec, say): that is refused, or asked
about on a terminal.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from oscar_deploy.support.errors import UserInputError, shown

# Specs, FDLs, values files, kubeconfigs, inventories, scripts, CA bundles: a few KiB each. 1 MiB is also the most
# Kubernetes stores in one object, so an FDL script (kept in a ConfigMap by OSCAR) can never be larger.
MAX_DOCUMENT_BYTES = 1024 * 1024


def atomic_write(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` through a temporary file in the same folder and an atomic rename.

    The file has `mode` from its first byte on, so a secret is never readable by others, not even briefly.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp_name).replace(path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def shown_path(path: Path | str) -> str:
    """A path as a message shows it: as typed, unless it holds control characters or is very long."""
    text = str(path)
    if len(text) > 200 or any(ord(char) < 32 or ord(char) == 127 for char in text):
        return shown(text, 200)
    return text


def kind_of(mode: int) -> str:
    """What a file that is not a regular file is, for a message."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"


def _os_problem(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


# --- reading ---------------------------------------------------------------------------------------------------


def check_regular_file(path: Path, what: str, missing: str | None = None, name: str | None = None) -> Path:
    """`path` once it is known to be a regular file (symbolic links followed); a one-line error otherwise.

    `what` names the file in messages ("spec file", "--input file"); `missing` is the advice when it does not
    exist (default: "pass an existing file"); `name` is how messages call it (default: the path).
    """
    name = name or shown_path(path)
    if not str(path):
        raise UserInputError(f"{what}: the path is empty; pass a file")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UserInputError(f"{name}: no such {what}; {missing or 'pass an existing file'}") from None
    except NotADirectoryError:
        raise UserInputError(f"{name}: no such {what} (a part of the path is a file, not a folder)") from None
    except OSError as exc:
        raise UserInputError(f"{name}: cannot read the {what} ({_os_problem(exc)})") from None
    if not stat.S_ISREG(mode):
        raise UserInputError(f"{name}: is {kind_of(mode)}, not a regular file; pass a regular file as the {what}")
    return path


def _open_regular(path: Path, what: str, missing: str | None, name: str) -> int:
    """A read-only descriptor of the regular file `path`, checked again once open; the caller closes it."""
    check_regular_file(path, what, missing, name)
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, opening it does not hang.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UserInputError(f"{name}: cannot read the {what} ({_os_problem(exc)})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UserInputError(f"{name}: is {kind_of(mode)}, not a regular file; pass a regular file as the {what}")
    return fd


def read_user_bytes(
    path: Path,
    what: str,
    limit: int | None = MAX_DOCUMENT_BYTES,
    missing: str | None = None,
    name: str | None = None,
) -> bytes:
    """The content of the regular file `path`, at most `limit` bytes (None: no limit, for data uploads)."""
    name = name or shown_path(path)
    fd = _open_regular(path, what, missing, name)
    try:
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read() if limit is None else handle.read(limit + 1)
    except OSError as exc:
        raise UserInputError(f"{name}: cannot read the {what} ({_os_problem(exc)})") from None
    finally:
        os.close(fd)
    if limit is not None and len(data) > limit:
        raise UserInputError(f"{name}: the {what} is larger than {_size(limit)}; pass a smaller file")
    return data


def read_user_tail(path: Path, what: str, limit: int) -> bytes:
    """The last `limit` bytes of the regular file `path` (all of it when shorter): a log's newest part."""
    name = shown_path(path)
    fd = _open_regular(path, what, None, name)
    try:
        os.lseek(fd, max(0, os.fstat(fd).st_size - limit), os.SEEK_SET)
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(limit)
    except OSError as exc:
        raise UserInputError(f"{name}: cannot read the {what} ({_os_problem(exc)})") from None
    finally:
        os.close(fd)


def file_starts_with(path: Path, prefix: bytes) -> bool:
    """Whether the regular file `path` begins with `prefix`; False for anything else or unreadable."""
    try:
        fd = _open_regular(path, "file", None, shown_path(path))
    except UserInputError:
        return False
    try:
        return os.read(fd, len(prefix)) == prefix
    except OSError:
        return False
    finally:
        os.close(fd)


def open_user_text(path: Path, what: str, missing: str | None = None) -> TextIO:
    """The regular file `path` opened as UTF-8 text to read line by line (a file too large to read whole: the
    caller bounds what it reads and turns UnicodeDecodeError into a one-line error with the line)."""
    fd = _open_regular(path, what, missing, shown_path(path))
    return os.fdopen(fd, "r", encoding="utf-8-sig", newline="")


def open_user_binary(path: Path, what: str, missing: str | None = None) -> io.BufferedReader:
    """The regular file `path` opened to stream its bytes (an upload of any size), checked again once open, so a
    file swapped for a FIFO after a first check never blocks the read."""
    return os.fdopen(_open_regular(path, what, missing, shown_path(path)), "rb")


def decode_text(data: bytes, name: str, what: str) -> str:
    """UTF-8 text (a byte-order mark is dropped); a one-line error with the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserInputError(
            f"{name}:{line}: the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8"
        ) from None


def read_user_text(
    path: Path, what: str, limit: int = MAX_DOCUMENT_BYTES, missing: str | None = None, name: str | None = None
) -> str:
    """The UTF-8 text of the regular file `path`, at most `limit` bytes; one-line errors naming the file."""
    name = name or shown_path(path)
    return decode_text(read_user_bytes(path, what, limit, missing, name), name, what)


class NestedTooDeep(json.JSONDecodeError):
    """JSON nested deeper than the parser's recursion allows (`[` 100,000 times): damaged like any other."""

    def __str__(self) -> str:
        return self.msg


def parse_json(text: str | bytes) -> Any:
    """`json.loads`, with a document nested too deeply for it raised as the `JSONDecodeError` (a ValueError)
    that callers handle for any other damaged JSON, instead of a RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise NestedTooDeep("nested too deeply to read", "", 0) from None


def inside_folder(folder: Path, reference: str) -> Path | None:
    """The file `reference` names relative to `folder`, or None when it lies outside that folder.

    Absolute paths, `..` and symbolic links are all resolved first, so none of them leads out.
    """
    if not reference or "\0" in reference or Path(reference).is_absolute():
        return None
    base = folder.resolve()
    resolved = (base / reference).resolve()
    return resolved if resolved.is_relative_to(base) else None


# --- writing ---------------------------------------------------------------------------------------------------


def make_private_dirs(folder: Path) -> None:
    """Create `folder` and every missing parent with mode 0700 (mkdir's `parents` would make them 0755)."""
    missing: list[Path] = []
    current = folder
    while not current.exists() and current != current.parent:
        if current.is_symlink():
            break  # a dangling link: mkdir reports it below
        missing.append(current)
        current = current.parent
    if current.exists() and not current.is_dir():
        raise UserInputError(
            f"{shown_path(folder)}: {shown_path(current)} is not a folder; move it away or pick another"
        )
    for part in reversed(missing):
        try:
            part.mkdir(mode=0o700)
        except FileExistsError:
            if not part.is_dir():
                raise UserInputError(f"{shown_path(folder)}: {shown_path(part)} is not a folder") from None
        except OSError as exc:
            raise UserInputError(f"{shown_path(part)}: cannot create the folder ({_os_problem(exc)})") from None


def check_write_target(
    path: Path,
    what: str,
    *,
    create_parents: bool = False,
    of_kind: Callable[[str], bool] | None = None,
    confirm: Callable[[str], bool] | None = None,
    replace_existing: bool = True,
) -> Path:
    """The file to write for `path` (the target of a symbolic link), once writing there can succeed.

    Refuses a target that is a device, FIFO, socket or folder, a folder that is missing (unless
    `create_parents`) or not writable, and, with `of_kind`, an existing file whose text `of_kind` does not
    recognise as a `what`: `confirm(question)` may allow that (a prompt on a terminal); otherwise it is refused.
    Without `replace_existing` (data of any kind: a download, a service's result), any existing file is treated
    so: replaced only after `confirm`, else refused with advice to pass --force.
    Call it before any side effect, so a command never fails to save what it did.
    """
    name = shown_path(path)
    if not str(path) or str(path) == ".":
        raise UserInputError(f"{what}: the path is empty; pass a file")
    try:
        target = path.resolve() if path.is_symlink() else path
        mode: int | None = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        raise UserInputError(f"{name}: a part of the path is a file, not a folder; pick another path") from None
    except OSError as exc:
        raise UserInputError(f"{name}: cannot write the {what} ({_os_problem(exc)})") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise UserInputError(f"{name}: is {kind_of(mode)}; the {what} is only written to a regular file")
    folder = target.parent
    if not folder.is_dir():
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not create_parents or not existing.is_dir():
            raise UserInputError(f"{name}: folder {shown_path(folder)} does not exist; create it or pick another path")
        folder = existing
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserInputError(f"{name}: folder {shown_path(folder)} is not writable; pick another path")
    if mode is not None and not replace_existing:
        if confirm is None or not confirm(f"{name} exists; replace it?"):
            raise UserInputError(
                f"{name}: exists, so the {what} is not replaced; pass --force to replace it, or name another {what}"
            )
    elif mode is not None and of_kind is not None and not _is_kind(target, of_kind):
        question = f"{name} is not {_a(what)}; replace it?"
        if confirm is None or not confirm(question):
            raise UserInputError(
                f"{name}: exists and is not {_a(what)}, so it is not replaced; move it away or pick another path"
            )
    return target


def check_data_target(path: Path, what: str, force: bool, confirm: Callable[[str], bool] | None) -> bool:
    """`check_write_target` for data of any kind (a download, a service's result), before it is fetched: a file
    there is replaced only with `force` or a yes from `confirm`. Returns the `replace_existing` for the later
    `write_user_file`: a file that appears only meanwhile is refused then."""
    check_write_target(path, what, replace_existing=force, confirm=confirm)
    return force or os.path.exists(path)  # noqa: PTH110 - the path was checked: the name is not too long


def _a(what: str) -> str:
    return f"{'an' if what[:1] in 'aeiou' else 'a'} {what}"


def _is_kind(path: Path, of_kind: Callable[[str], bool]) -> bool:
    try:
        text = read_user_text(path, "file")
    except UserInputError:
        return False
    return of_kind(text)


def write_user_file(
    path: Path,
    data: str | bytes,
    what: str,
    mode: int = 0o600,
    *,
    create_parents: bool = False,
    of_kind: Callable[[str], bool] | None = None,
    confirm: Callable[[str], bool] | None = None,
    replace_existing: bool = True,
) -> Path:
    """Write a file the user named, atomically with `mode`, after `check_write_target`; returns the file written."""
    target = check_write_target(
        path, what, create_parents=create_parents, of_kind=of_kind, confirm=confirm, replace_existing=replace_existing
    )
    if create_parents:
        make_private_dirs(target.parent)
    try:
        atomic_write(target, data, mode)
    except OSError as exc:
        raise UserInputError(f"{shown_path(path)}: cannot write the {what} ({_os_problem(exc)})") from None
    return target


def read_private_file(path: Path, what: str) -> str:
    """The text of a file holding credentials, refused when other users may read or change it (group or
    others have any permission): such a file may already have leaked, and must not be trusted either."""
    check_regular_file(path, f"file of {what}", missing=f"{what} are expected there")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise UserInputError(
            f"{path}: mode {mode:04o} lets other users read or change {what}; run `chmod 600 {path}` "
            "(and replace the credentials if others may have copied them)"
        )
    return read_user_text(path, f"file of {what}")
