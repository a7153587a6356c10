"""Progress on stderr: one line per step, and a spinner around long work when stderr is a terminal.

stdout stays for results (what `up` made, `status` tables, JSON), so scripts can read it while people watch
the progress.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console


class Progress:
    """Tells the person at the terminal what is happening now and how long it took."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        self.console.print(message, markup=False)

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        """Show `message` while the block runs, then the same line with the seconds it took."""
        started = time.monotonic()
        if self.console.is_terminal:
            with self.console.status(message):
                yield
        else:
            self.note(f"{message} ...")
            sys.stderr.flush()
            yield
        self.note(f"{message}: done in {time.monotonic() - started:.0f}s")
