"""Verified downloads: stream a URL to a file through a temporary name, check its sha256, retry what is worth it.

Used by the air-gap bundle (k3s release files) and by the Pulumi CLI install. A partial or mismatching
download is deleted before the error is raised and never used; the destination only ever appears complete.
When no attempt could even connect (no network, a closed port, a name that does not resolve),
`DownloadUnreachable` says so, so callers can tell "offline" apart from a broken or tampered release.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from oscar_deploy import __version__
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import read_user_text, shown_path
from oscar_deploy.support.urls import mask_url

if TYPE_CHECKING:
    import httpx

CHUNK_SIZE = 1 << 20
ATTEMPTS = 3


class DownloadUnreachable(OperationError):
    """Every attempt failed before a connection was made: the machine is offline or the host is unreachable."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_checksums(text: str, source: str) -> dict[str, str]:
    """Lines of `sha256sum` output (`<hex>  <name>` or `<hex> *<name>`) -> {name: hex}."""
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64 or any(c not in "0123456789abcdefABCDEF" for c in parts[0]):
            raise OperationError(f"{source}:{number}: not a sha256sum line; the checksum file is damaged, run again")
        sums[parts[1].strip().lstrip("*")] = parts[0].lower()
    return sums


def netrc_auth() -> httpx.Auth | None:
    """The credentials of ~/.netrc for the hosts it names (a mirror that asks for a login), as `curl --netrc`
    uses them; None without the file. httpx reads the file only when asked to, and URLs never carry them."""
    import netrc

    import httpx

    path = Path.home() / ".netrc"
    if not path.exists() and not path.is_symlink():
        return None
    name = shown_path(path)
    read_user_text(path, "netrc file", name=name)  # a regular UTF-8 file of bounded size, before netrc parses it
    try:
        # Without a file name, netrc also refuses a ~/.netrc that others can read or that another user owns.
        return httpx.NetRCAuth(None)
    except netrc.NetrcParseError as exc:
        if exc.lineno:  # netrc's own message may quote the token it choked on: a password split by a space
            raise UserInputError(
                f"{name}: not netrc syntax near line {exc.lineno}; fix it, or move the file away"
            ) from None
        raise UserInputError(f"{name}: {exc.msg}; make it yours with mode 0600, or move it away") from None


# --- progress ---------------------------------------------------------------------------------------------


class DownloadReporter(Protocol):
    """Receives the progress of each download (`support.progress.TransferDisplay` in the CLI, nothing in tests)."""

    def start(self, name: str, total: int | None) -> None: ...

    def advance(self, size: int) -> None: ...

    def finish(self, name: str, outcome: str) -> None: ...


class SilentReporter:
    def start(self, name: str, total: int | None) -> None:
        pass

    def advance(self, size: int) -> None:
        pass

    def finish(self, name: str, outcome: str) -> None:
        pass


# --- downloading ------------------------------------------------------------------------------------------


class Downloader:
    """Streams URLs to files through a temporary name; retries connection problems, never keeps a partial file."""

    def __init__(
        self,
        reporter: DownloadReporter | None = None,
        attempts: int = ATTEMPTS,
        backoff: float = 2.0,
        timeout: float = 30.0,
    ) -> None:
        import httpx

        self.reporter = reporter or SilentReporter()
        self.attempts = attempts
        self.backoff = backoff
        self.client = httpx.Client(
            auth=netrc_auth(),
            follow_redirects=True,
            timeout=httpx.Timeout(timeout, connect=15.0),
            headers={"User-Agent": f"oscar-deploy/{__version__}", "Accept-Encoding": "identity"},
        )

    def close(self) -> None:
        self.client.close()

    def fetch(self, url: str, dest: Path, expected_sha256: str | None = None, label: str | None = None) -> str:
        """Download `url` to `dest` and return its sha256; with `expected_sha256`, a mismatch is an error.

        Connection errors and truncated transfers are retried; after the last attempt the error names the
        file, and is a `DownloadUnreachable` when no attempt got a connection. `dest` only ever appears
        complete (and verified, when a checksum is given).
        """
        import httpx

        name = label or dest.name
        last_problem = ""
        reached = False
        for attempt in range(1, self.attempts + 1):
            try:
                with self._streamed_to_temp(url, dest, name) as (temp, actual):
                    if expected_sha256 is not None and actual != expected_sha256:
                        self.reporter.finish(name, "checksum mismatch, download deleted")
                        raise OperationError(
                            mask_url(
                                f"{name}: sha256 mismatch for {url} (expected {expected_sha256}, got {actual}); "
                                "the download was deleted and nothing uses it; run again, or check the mirror"
                            )
                        )
                    temp.replace(dest)
                self.reporter.finish(name, "downloaded and verified" if expected_sha256 else "downloaded")
                return actual
            except _Truncated as exc:
                reached = True
                last_problem = str(exc)
            except httpx.HTTPStatusError as exc:
                status = exc.response.status_code
                if status < 500:
                    raise OperationError(
                        mask_url(f"{name}: {url} answered HTTP {status}; check the version and the download URL")
                    ) from None
                reached = True
                last_problem = f"HTTP {status}"
            except httpx.TransportError as exc:
                reached = reached or not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                last_problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.reporter.finish(name, f"attempt {attempt} failed ({last_problem})")
            if attempt < self.attempts:
                time.sleep(self.backoff * attempt)
        message = mask_url(
            f"{name}: download from {url} failed {self.attempts} times ({last_problem}); "
            "the partial file was deleted; check the network or the download URL and run again"
        )
        if not reached:
            raise DownloadUnreachable(message, url)
        raise OperationError(message)

    @contextmanager
    def _streamed_to_temp(self, url: str, dest: Path, name: str) -> Iterator[tuple[Path, str]]:
        """Yield (temporary file, its sha256) holding the complete body; the temporary file goes away on error."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        temp = Path(temp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as handle, self.client.stream("GET", url) as response:
                response.raise_for_status()
                length = response.headers.get("Content-Length")
                expected_size = int(length) if length and length.isdigit() else None
                self.reporter.start(name, expected_size)
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    handle.write(chunk)
                    digest.update(chunk)
                    self.reporter.advance(len(chunk))
                received = response.num_bytes_downloaded
                if expected_size is not None and received != expected_size:
                    raise _Truncated(f"truncated: {received} of {expected_size} bytes")
                handle.flush()
                os.fsync(handle.fileno())
            temp.chmod(0o644)
            yield temp, digest.hexdigest()
        finally:
            temp.unlink(missing_ok=True)


class _Truncated(Exception):
    """The server closed the transfer before Content-Length bytes arrived."""
