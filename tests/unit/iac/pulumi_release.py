"""Helpers that lay out a Pulumi CLI release the way upstream publishes it, for the install tests.

Upstream's GitHub release v<version> holds `pulumi-v<version>-<os>-<arch>.tar.gz` (a top folder `pulumi/` with
the binaries) and `pulumi-<version>-checksums.txt` (sha256sum lines, `./` stripped), per pulumi/pulumi's
`.github/workflows/sign.yml` and `install.sh`. The `pulumi` binary in these archives is the labelled stand-in
tests/doubles/pulumi_cli.py behind a two-line shell wrapper; the other entries are small placeholder files
standing for the language hosts shipped beside it.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
from pathlib import Path

from tests.unit.release_server import ReleaseServer, Route

STAND_IN = Path(__file__).resolve().parents[2] / "doubles" / "pulumi_cli.py"
VERSION = "3.272.0"
ARCHIVE = f"pulumi-v{VERSION}-linux-x64.tar.gz"
CHECKSUMS = f"pulumi-{VERSION}-checksums.txt"


def wrapper() -> bytes:
    return f'#!/bin/sh\nexec {sys.executable} {STAND_IN} "$@"\n'.encode()


def archive(entries: list[tuple[str, bytes, int]] | None = None, links: dict[str, str] | None = None) -> bytes:
    """A gzipped tarball; by default `pulumi/pulumi` (the stand-in) and `pulumi/pulumi-language-python`."""
    entries = entries or [
        ("pulumi/pulumi", wrapper(), 0o755),
        ("pulumi/pulumi-language-python", b"#!/bin/sh\n# stands in for the Python language host\n", 0o755),
        ("pulumi/README.md", b"placeholder\n", 0o644),
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folder = tarfile.TarInfo("pulumi")
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o755
        tar.addfile(folder)
        for name, body, mode in entries:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            info.mode = mode
            tar.addfile(info, io.BytesIO(body))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


def publish(server: ReleaseServer, body: bytes | None = None, listed: bytes | None = None) -> bytes:
    """Serve a release: the archive (`body`) and a checksums file listing `listed` (default: the archive)."""
    body = body if body is not None else archive()
    sums = [
        f"{hashlib.sha256(b'darwin').hexdigest()}  pulumi-v{VERSION}-darwin-arm64.tar.gz",
        f"{hashlib.sha256(listed if listed is not None else body).hexdigest()}  {ARCHIVE}",
        f"{hashlib.sha256(b'windows').hexdigest()}  pulumi-v{VERSION}-windows-x64.zip",
    ]
    server.routes[f"/download/v{VERSION}/{CHECKSUMS}"] = Route(("\n".join(sums) + "\n").encode())
    server.routes[f"/download/v{VERSION}/{ARCHIVE}"] = Route(body)
    return body
