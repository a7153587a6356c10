"""TEST DOUBLE: stands in for a command-line tool the CLI runs as a plain child (podman, skopeo, debootstrap, a
power command) at a moment when it has started a helper process and has not answered yet. It is none of them.

podman starts helpers (storage, network, conmon), debootstrap and chroot run shell scripts that start
programs, a shell pipeline is several processes; they share the tool's process group, as processes started
with fork(2) do (https://man7.org/linux/man-pages/man2/setpgid.2.html). The helper this script starts ignores
SIGINT, as a shell's background job does (POSIX `sh`, Asynchronous Lists), so only SIGKILL of the group ends it.

Run as `python stalling_tool.py ARGS...` (tests put a wrapper named after the tool on PATH). It starts the
helper, then writes `pids` in $STALLING_TOOL_DIR (two lines: its own pid, the helper's) and waits. On SIGINT
it appends `SIGINT` to `signals` there and exits 130, as a tool stopping in order would; the helper stays.
With $STALLING_TOOL_ANSWER set it prints that text instead, exits 0 at once, and starts nothing.
Nothing here ships in the wheel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HELPER = "import time; time.sleep(600)"


def main() -> int:
    answer = os.environ.get("STALLING_TOOL_ANSWER")
    if answer is not None:
        sys.stdout.write(answer)
        return 0
    folder = Path(os.environ["STALLING_TOOL_DIR"])

    def on_sigint(_signum: int, _frame: object) -> None:
        with (folder / "signals").open("a") as handle:
            handle.write("SIGINT\n")
        os._exit(130)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited through exec: the helper ignores SIGINT from its start
    helper = subprocess.Popen([sys.executable, "-c", HELPER], stdin=subprocess.DEVNULL)
    signal.signal(signal.SIGINT, on_sigint)
    written = folder / "pids.part"
    written.write_text(f"{os.getpid()}\n{helper.pid}\n")
    written.rename(folder / "pids")
    time.sleep(600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
