"""Domain errors. The CLI turns each into one line on stderr and its exit code; tracebacks only with --debug."""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
# Ended by a signal, as a shell reports it: 128 + SIGINT (Ctrl-C), 128 + SIGTERM (`kill`, a service manager).
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM to the CLI. A KeyboardInterrupt, so it takes Ctrl-C's path: what runs is stopped in order and
    waited for, the lock is released, and the next run resumes; only the last line and the exit code differ."""


class OscarDeployError(Exception):
    """Base class: the message is one line saying what is wrong, where, and what to do."""

    exit_code = EXIT_FAILED


class UserInputError(OscarDeployError):
    """Bad input from the user: a spec key, a flag, an inventory host. Exit code 2."""

    exit_code = EXIT_BAD_INPUT


class OperationError(OscarDeployError):
    """An operation that was asked for correctly but failed (a node, a download, a playbook). Exit code 1."""

    exit_code = EXIT_FAILED


class SharedFailure(OperationError):
    """A failure that says nothing about the item asked for (credentials rejected, a server not reached or not
    trusted, a bucket that does not exist): every later request of the same kind would fail alike, so a command
    acting on several items stops at it."""


class InvalidDocumentError(UserInputError):
    """A YAML document that does not validate: one line per problem, each naming the file, line and key."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = [printable(line) for line in lines]  # a key holding a line break stays on its line
        super().__init__("\n".join(self.lines))


class SpecError(InvalidDocumentError):
    """A cluster spec that does not validate."""


def shown(value: object, limit: int = 40) -> str:
    """A value as an error message shows it: quoted, control characters escaped, long ones cut (a 1 MB value, or
    a secret pasted in the wrong place, is never echoed whole)."""
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def printable(line: str) -> str:
    """`line` with every character that is not printable escaped (\\n, \\x1e, \\u2028...): a message stays one
    line on a terminal and for `splitlines()`, whatever a file's keys or a flag's value hold."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in line)
