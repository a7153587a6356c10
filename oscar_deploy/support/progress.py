"""Progress on stderr, one way for every long piece of work: notes and timed steps, a live status line for runs
made of tasks (Ansible plays, Pulumi updates), and transfer bars for downloads.

stdout stays for results (what `up` made, `status` tables, JSON), so scripts can read it while people watch
the progress. Outside a terminal (CI logs) only the lines worth keeping are printed: no spinner, no bars.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from rich.console import Console


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


class Progress:
    """Tells the person at the terminal what is happening now and how long it took."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or stderr_console()

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


class RunState(Protocol):
    """What a run made of tasks reports: the line describing what it does now, and its summary at the end."""

    def status_line(self) -> str: ...

    def recap(self) -> str: ...


class TaskDisplay(Protocol):
    """Shows a run's progress as its events arrive; `LiveDisplay` for people, `QuietDisplay` for tests."""

    def update(self, run: Any, notable: str | None) -> None: ...

    def close(self, run: Any) -> None: ...


class QuietDisplay:
    def update(self, run: Any, notable: str | None) -> None:
        pass

    def close(self, run: Any) -> None:
        pass


class LiveDisplay:
    """On a terminal: a live status line and a line for each notable event (a play, a failure).

    Elsewhere (CI logs): only the notable lines and a recap, so logs stay short.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or stderr_console()
        self.status: Any = None

    def update(self, run: RunState, notable: str | None) -> None:
        if notable:
            self.console.print(f"  {notable}", markup=False)
        if not self.console.is_terminal:
            return
        from rich.text import Text

        line = Text(run.status_line(), overflow="ellipsis", no_wrap=True)
        if self.status is None:
            self.status = self.console.status(line)
            self.status.start()
        else:
            self.status.update(line)

    def close(self, run: RunState) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
        self.console.print(f"  {run.recap()}", markup=False)


class TransferDisplay:
    """A transfer bar per file on stderr while it downloads; one line per file once it is done."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn
        from rich.progress import Progress as Bars

        self.console = console or stderr_console()
        self.bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self.task: Any = None

    def __enter__(self) -> TransferDisplay:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def start(self, name: str, total: int | None) -> None:
        self.task = self.bars.add_task(name, total=total)

    def advance(self, size: int) -> None:
        if self.task is not None:
            self.bars.advance(self.task, size)

    def finish(self, name: str, outcome: str) -> None:
        if self.task is not None:
            self.bars.remove_task(self.task)
            self.task = None
        self.console.print(f"{name}: {outcome}", markup=False)
