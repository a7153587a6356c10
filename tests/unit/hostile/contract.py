"""The promise every command keeps for bad input, as assertions: exit code 2, one line on stderr that starts with
`error: ` and names the file, key or flag, nothing on stdout, no traceback, no secret, nothing changed outside the
scratch folder; for the cases about size and time, also bounded memory and time (run as a child process under
RLIMIT_AS and a timeout, its peak memory measured by the kernel).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.checkout import checkout_environment

# Secrets put into the environment of every case: none may ever show in what a command prints.
PASSWORD = "pw!*x #tail-S3CRET-9f2"
MINIO_SECRET = "minio-S3CRET-77aa"
SECRETS = (PASSWORD, MINIO_SECRET, "S3CRET")

# Limits for the child process: its address space (a backstop that turns a runaway into a failure instead of a
# swapping machine), the peak resident memory asserted, and the time.
ADDRESS_SPACE_LIMIT = 1024 * 1024 * 1024
MAX_RSS_BYTES = 256 * 1024 * 1024
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    max_rss_bytes: int = 0
    seconds: float = 0.0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def assert_refused(outcome: Any, *names: str, secrets: Sequence[str] = SECRETS) -> str:
    """The contract for bad input; returns the error line (without `error: `) for further checks."""
    output = outcome.stdout + outcome.stderr
    assert outcome.exit_code == 2, output
    assert "Traceback" not in output, output
    assert outcome.stdout == "", output
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, outcome.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for name in names:
        assert name in line, (name, line)
    for secret in secrets:
        assert secret not in output, line
    assert len(line) < 600, line  # a long value is shown cut short
    return line.removeprefix("error: ")


# Starts the command from a small, freshly executed Python and reports the command's peak RSS. Linux keeps a
# process's memory high-water mark across exec, and a child forked from pytest starts with pytest's whole
# (shared) memory resident: measured directly, every case would carry the size of the test process.
LAUNCHER = """
import os, resource, sys
limit, report = int(sys.argv[1]), int(sys.argv[2])
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.execv(sys.argv[3], sys.argv[3:])
_, status, usage = os.wait4(pid, 0)
os.write(report, str(usage.ru_maxrss * 1024).encode())
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


def run_bounded(args: Sequence[str], cwd: Path, env: Mapping[str, str], stdin: bytes = b"") -> Outcome:
    """`oscar-deploy ARGS` in a child process under RLIMIT_AS and a timeout, with its own peak RSS."""
    started = time.monotonic()
    report_read, report_write = os.pipe()
    command = [sys.executable, "-m", "oscar_deploy", *args]
    process = subprocess.Popen(
        [sys.executable, "-S", "-c", LAUNCHER, str(ADDRESS_SPACE_LIMIT), str(report_write), *command],
        cwd=cwd,
        env=checkout_environment(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(report_write,),
        start_new_session=True,
    )
    os.close(report_write)
    captured: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda name=name, stream=stream: captured.update({name: stream.read()}))
        for name, stream in (("stdout", process.stdout), ("stderr", process.stderr))
    ]
    for reader in readers:
        reader.start()
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        process.stdin.write(stdin)
    process.stdin.close()
    while True:
        pid, status, _usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > TIMEOUT_SECONDS:
            os.killpg(process.pid, 9)
            os.wait4(process.pid, 0)
            os.close(report_read)
            process.returncode = -9
            raise AssertionError(f"oscar-deploy {' '.join(args)}: still running after {TIMEOUT_SECONDS} s")
        time.sleep(0.02)
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    with os.fdopen(report_read, "rb") as report:
        peak = int(report.read() or b"0")
    return Outcome(
        process.returncode,
        captured.get("stdout", b"").decode(errors="replace"),
        captured.get("stderr", b"").decode(errors="replace"),
        peak,
        time.monotonic() - started,
    )


def assert_bounded(outcome: Outcome) -> None:
    assert outcome.max_rss_bytes < MAX_RSS_BYTES, f"peak memory {outcome.max_rss_bytes // 2**20} MiB"
    assert outcome.seconds < TIMEOUT_SECONDS


def snapshot(*roots: Path) -> dict[str, tuple[int, str]]:
    """Mode and content digest of every entry under `roots` (special files by kind only)."""
    found: dict[str, tuple[int, str]] = {}
    for root in roots:
        for path in [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]:
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode) else ""
            found[str(path)] = (info.st_mode, digest)
    return found
