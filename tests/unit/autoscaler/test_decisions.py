"""The autoscaler's files: the bounded decisions log, the state file's round trip and damage, and the run lock."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
from pathlib import Path

import pytest

from oscar_deploy.autoscaler import decisions
from oscar_deploy.autoscaler.decisions import (
    DecisionsLog,
    RuntimeMemory,
    load_memory,
    run_lock,
    running_pid,
    save_memory,
    utc_stamp,
)
from oscar_deploy.autoscaler.model import PolicyState
from oscar_deploy.autoscaler.snapshot import NodeHistory, PowerRecord
from oscar_deploy.support.errors import UserInputError

T0 = 1_780_000_000.0


def test_utc_stamps_are_whole_seconds_in_utc() -> None:
    assert utc_stamp(T0) == "2026-05-28T20:26:40Z"
    assert utc_stamp(T0 + 0.999) == "2026-05-28T20:26:40Z"
    assert utc_stamp(0) == "1970-01-01T00:00:00Z"


def test_an_entry_is_one_line_led_by_its_time_in_a_private_file_and_folder(tmp_path: Path) -> None:
    path = tmp_path / "autoscaler" / "decisions.jsonl"
    log = DecisionsLog(path)
    log.write({"event": "start", "period": 30}, T0)
    log.write({"event": "stop", "reason": "SIGTERM"}, T0 + 61)
    assert path.read_text().splitlines() == [
        '{"time": "2026-05-28T20:26:40Z", "event": "start", "period": 30}',
        '{"time": "2026-05-28T20:27:41Z", "event": "stop", "reason": "SIGTERM"}',
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_log_makes_every_missing_folder_above_it(tmp_path: Path) -> None:
    path = tmp_path / "state" / "lab" / "autoscaler" / "decisions.jsonl"
    DecisionsLog(path).write({"event": "start"}, T0)
    assert DecisionsLog(path).entries() == [{"time": "2026-05-28T20:26:40Z", "event": "start"}]
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_new_log_is_private_from_its_first_byte_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made 0600 by open itself, not only by the chmod after it: no moment when others may read it."""
    created: list[int] = []
    fchmod = os.fchmod

    def seen_then_chmod(descriptor: int, mode: int) -> None:
        created.append(stat.S_IMODE(os.fstat(descriptor).st_mode))
        fchmod(descriptor, mode)

    monkeypatch.setattr(os, "fchmod", seen_then_chmod)
    umask = os.umask(0)
    try:
        DecisionsLog(tmp_path / "decisions.jsonl").write({"event": "start"}, T0)
    finally:
        os.umask(umask)
    assert created == [0o600]


def test_a_log_others_may_read_is_made_private_at_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    path.write_text('{"time": "2026-05-28T20:26:39Z", "event": "start"}\n')
    path.chmod(0o644)
    DecisionsLog(path).write({"event": "stop"}, T0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [entry["event"] for entry in DecisionsLog(path).entries()] == ["start", "stop"]


def test_the_log_rotates_only_when_the_next_line_would_pass_the_limit(tmp_path: Path) -> None:
    line = len(json.dumps({"time": utc_stamp(T0), "index": 0}) + "\n")
    path = tmp_path / "decisions.jsonl"
    log = DecisionsLog(path, max_bytes=2 * line)
    log.write({"index": 0}, T0)
    log.write({"index": 1}, T0)
    assert path.stat().st_size == 2 * line, "exactly at the limit: kept in one file"
    assert not path.with_name("decisions.jsonl.1").exists()
    log.write({"index": 2}, T0)
    assert [entry["index"] for entry in log.entries()] == [0, 1, 2]
    assert path.stat().st_size == line
    for index in (3, 4):
        log.write({"index": index}, T0)
    assert [entry["index"] for entry in log.entries()] == [2, 3, 4], "the older part is replaced, not kept"


def test_the_decisions_log_stays_bounded(tmp_path: Path) -> None:
    log = DecisionsLog(tmp_path / "decisions.jsonl", max_bytes=2000)
    for index in range(100):
        log.write({"event": "round", "index": index, "notes": ["x" * 50]}, T0 + index)
    current = tmp_path / "decisions.jsonl"
    previous = tmp_path / "decisions.jsonl.1"
    assert current.stat().st_size <= 2000 and previous.stat().st_size <= 2000
    indexes = [entry["index"] for entry in log.entries()]
    assert indexes == list(range(indexes[0], 100)), "the newest entries, in order, without a gap"
    assert 20 < len(indexes) < 40


def test_damaged_lines_and_lines_that_are_not_objects_with_a_time_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    assert DecisionsLog(path).entries() == []
    path.with_name("decisions.jsonl.1").write_bytes(
        b'{"time": "t1"}\nnot json\n[2]\n"three"\n{"event": "round"}\n{"time": 4}\n'
    )
    path.write_bytes(b'{"time": "t5", "note": "\xff"}\n\n{"time": "t6"}\n')
    assert DecisionsLog(path).entries() == [{"time": "t1"}, {"time": "t5", "note": "\ufffd"}, {"time": "t6"}]


def test_a_log_part_of_exactly_the_default_limit_is_read_whole_and_one_byte_more_loses_its_first_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "decisions.jsonl"
    first, last = b'{"time": "t0"}\n', b'{"time": "t1"}\n'
    padding = b'{"padding": "' + b"x" * (1_000_000 - len(first) - len(last) - len(b'{"padding": ""}\n')) + b'"}\n'
    path.write_bytes(first + padding + last)
    assert path.stat().st_size == 1_000_000
    assert DecisionsLog(path).entries() == [{"time": "t0"}, {"time": "t1"}], "exactly at the limit: whole"
    path.write_bytes(b'{"time": "t0" }\n' + padding + last)
    assert DecisionsLog(path).entries() == [{"time": "t1"}], "one byte over: the first line is cut, so dropped"


def test_a_log_part_that_cannot_be_read_is_an_error_naming_the_decisions_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "decisions.jsonl"
    path.write_text('{"time": "t0"}\n')
    real_open = os.open

    def denied(file: Path, flags: int, *args: int) -> int:
        if Path(file) == path:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(file, flags, *args)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(UserInputError) as refused:
        DecisionsLog(path).entries()
    assert str(refused.value) == f"{path}: cannot read the decisions log (Permission denied)"


def test_the_saved_memory_reads_back_as_it_was(tmp_path: Path) -> None:
    policy = PolicyState(
        needed_history=((T0 - 20, {"workers-amd64": 2}), (T0, {"workers-amd64": 1, "workers-arm64": 0})),
        pressure_at=T0 - 5,
        unneeded_since={"agent-1": T0 - 40},
        running={"oscar-svc/job-a": (1500, 1024)},
        released=((T0 - 10, 500, 256),),
        first_seen=T0 - 3600,
        vacated_at={"workers-amd64": {2: T0 - 20, 3: T0 - 300}},
        demand_gaps={"workers-amd64": (400.0, 615.5), "workers-arm64": ()},
    )
    history = NodeHistory(
        pods={"agent-0": frozenset({"oscar-svc/job-a", "oscar-svc/web"}), "agent-1": frozenset()},
        changed_at={"agent-0": T0 - 30, "agent-1": T0 - 600},
        idle_since={"agent-1": T0 - 600},
        not_ready_since={"agent-2": T0 - 15},
        ready_at={"agent-0": T0, "agent-1": T0},
    )
    record = PowerRecord(
        powered_on={"agent-0": T0 - 3600},
        powered_off={"agent-1": T0 - 600},
        failed_until={"agent-2": T0 + 60},
        cordoned={"agent-1"},
        uncordon_pending={"agent-0"},
        boot_seconds=[41.5],
    )
    memory = RuntimeMemory(record, policy, history, T0)
    path = tmp_path / "state.json"
    save_memory(path, memory)
    assert load_memory(path) == memory
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["saved_at"] == T0


def test_the_state_file_is_json_indented_by_two_spaces_ending_in_a_newline(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_memory(path, RuntimeMemory(PowerRecord(cordoned={"agent-1"}), saved_at=T0))
    text = path.read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
    assert text.startswith('{\n  "powered_on": {},\n')


def test_a_damaged_state_file_is_nothing_remembered(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(
        '{"powered_on": {"agent-0": "soon"}, "policy": {"needed_history": [[1, {"w": -1}], "x", [2, {}, 3]], '
        '"running": {"p": [1]}, "released": [[1, 2], ["soon", 1, 2]], "first_seen": true, '
        '"vacated_at": {"w": {"2": 5, "123456": 7, "": 1, "x": 1, "-1": 1, "\u00b2": 1, "1234567": 1, "3": true}, '
        '"v": [1], "u": {}}, '
        '"demand_gaps": {"w": [400, -1, "long", false, 0], "v": 300}}, "history": [], "saved_at": "now"}'
    )
    memory = load_memory(state)
    assert memory == RuntimeMemory(
        policy=PolicyState(
            needed_history=((1.0, {}),),
            vacated_at={"w": {2: 5.0, 123456: 7.0}, "u": {}},
            demand_gaps={"w": (400.0, 0.0)},
        )
    )


def test_numbers_a_float_cannot_hold_are_left_out_of_the_state(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    huge = "1" + "0" * 400
    state.write_text(
        f'{{"powered_on": {{"a": NaN, "b": Infinity, "c": {huge}, "d": 5}}, "boot_seconds": [-Infinity, 1e308], '
        f'"policy": {{"first_seen": NaN, "job_durations": [Infinity, 12]}}, "saved_at": {huge}}}'
    )
    assert load_memory(state) == RuntimeMemory(
        record=PowerRecord(powered_on={"d": 5.0}, boot_seconds=[1e308]), policy=PolicyState(job_durations=(12.0,))
    )


@pytest.mark.parametrize("content", [b"\xff", b"not json", b"[]", b'"state"', b""])
def test_a_state_file_that_is_not_a_json_object_is_nothing_remembered(tmp_path: Path, content: bytes) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(content)
    assert load_memory(state) == RuntimeMemory()


def test_each_part_of_the_state_file_is_read_on_its_own(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(
        '{"cordoned": ["agent-1"], "policy": [], "history": {"idle_since": {"agent-1": 5}}, "saved_at": 7}'
    )
    assert load_memory(state) == RuntimeMemory(
        record=PowerRecord(cordoned={"agent-1"}),
        history=NodeHistory(idle_since={"agent-1": 5.0}),
        saved_at=7.0,
    )
    state.write_text('{"policy": {"first_seen": 3}, "history": "x", "saved_at": true}')
    assert load_memory(state) == RuntimeMemory(policy=PolicyState(first_seen=3.0))
    assert load_memory(tmp_path / "missing.json") == RuntimeMemory()
    (tmp_path / "folder.json").mkdir()
    assert load_memory(tmp_path / "folder.json") == RuntimeMemory()


def test_a_state_file_over_the_size_limit_or_of_another_kind_is_nothing_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state.json"
    content = b'{"saved_at": 7, "padding": "' + b"x" * 100 + b'"}'
    state.write_bytes(content)
    monkeypatch.setattr(decisions, "MAX_STATE_BYTES", len(content))
    assert load_memory(state) == RuntimeMemory(saved_at=7.0), "exactly at the limit: read"
    monkeypatch.setattr(decisions, "MAX_STATE_BYTES", len(content) - 1)
    assert load_memory(state) == RuntimeMemory()
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    assert load_memory(fifo) == RuntimeMemory(), "not read: opening a FIFO would wait for a writer"


def test_a_state_file_of_exactly_16_mib_is_read_and_one_byte_more_is_nothing_remembered(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    head, tail = b'{"saved_at": 7, "padding": "', b'"}'
    state.write_bytes(head + b"x" * (16 * 1024 * 1024 - len(head) - len(tail)) + tail)
    assert state.stat().st_size == 16 * 1024 * 1024
    assert load_memory(state) == RuntimeMemory(saved_at=7.0), "exactly at the limit: read"
    state.write_bytes(head + b"x" * (16 * 1024 * 1024 - len(head) - len(tail) + 1) + tail)
    assert load_memory(state) == RuntimeMemory()


def test_json_nested_too_deeply_is_a_damaged_state_file_or_log_line(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("[" * 100_000)
    assert load_memory(state) == RuntimeMemory()
    log = tmp_path / "decisions.jsonl"
    log.write_text('{"time": "t0"}\n{"time": "t1", "x": ' + "[" * 100_000 + '\n{"time": "t2"}\n')
    assert DecisionsLog(log).entries() == [{"time": "t0"}, {"time": "t2"}]


def test_a_log_part_longer_than_the_limit_gives_its_newest_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    lines = [json.dumps({"time": f"t{index}", "note": "x" * 20}) + "\n" for index in range(10)]
    path.write_text("".join(lines))
    line = len(lines[0])
    assert [e["time"] for e in DecisionsLog(path, max_bytes=3 * line).entries()] == ["t7", "t8", "t9"]
    assert [e["time"] for e in DecisionsLog(path, max_bytes=3 * line - 1).entries()] == ["t8", "t9"]
    assert [e["time"] for e in DecisionsLog(path, max_bytes=3 * line + 1).entries()] == ["t7", "t8", "t9"]
    assert len(DecisionsLog(path, max_bytes=10 * line).entries()) == 10
    path.with_name("decisions.jsonl.1").write_text("".join(lines[:2]))
    assert [e["time"] for e in DecisionsLog(path, max_bytes=2 * line).entries()] == ["t0", "t1", "t8", "t9"]


def test_the_run_lock_holds_the_pid_and_refuses_a_second_holder(tmp_path: Path) -> None:
    folder = tmp_path / "autoscaler"
    assert running_pid(folder) is None
    folder.mkdir(mode=0o700)
    (folder / "run.lock").write_text("123456789012")  # a longer pid left by an earlier run
    with run_lock(folder, "demo"):
        assert (folder / "run.lock").read_text() == str(os.getpid())
        assert running_pid(folder) == os.getpid()
        with pytest.raises(UserInputError) as refused, run_lock(folder, "demo"):
            pass
        assert str(refused.value) == (
            f"cluster demo: an autoscaler already runs for it (pid {os.getpid()}); stop that one first"
        )
    assert running_pid(folder) is None, "the lock file stays, but nobody holds it"
    with run_lock(folder, "demo"):
        pass


def test_the_run_lock_makes_a_private_folder_and_file(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "autoscaler"
    with run_lock(folder, "demo"):
        pass
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "run.lock").stat().st_mode) == 0o600


@pytest.mark.parametrize(("content", "pid", "holder"), [("", 0, "another process"), ("pid?", 0, "pid?")])
def test_a_lock_held_without_a_readable_pid(tmp_path: Path, content: str, pid: int, holder: str) -> None:
    path = tmp_path / "run.lock"
    path.write_text(content)
    with path.open() as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert running_pid(tmp_path) == pid
        with pytest.raises(UserInputError) as refused, run_lock(tmp_path, "demo"):
            pass
    assert str(refused.value) == f"cluster demo: an autoscaler already runs for it (pid {holder}); stop that one first"
