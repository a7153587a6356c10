"""The state folder: private permissions, generated secrets, SSH keys, atomic writes, guarded reads (a log's tail, a
file's signature), the phase journal."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from oscar_deploy.state.folder import ClusterState, generate_secret, list_clusters, state_root
from oscar_deploy.state.journal import inputs_digest
from oscar_deploy.support import files
from oscar_deploy.support.errors import OperationError, UserInputError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_root_follows_the_environment(state_home: Path) -> None:
    assert state_root() == state_home
    assert ClusterState("lab").path == state_home / "lab"


def test_default_root_is_under_the_user_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OSCAR_DEPLOY_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert state_root() == tmp_path / "xdg" / "oscar-deploy" / "clusters"


def test_folder_is_private_even_if_loosened(state_home: Path) -> None:
    state = ClusterState("lab").ensure()
    assert mode(state.path) == 0o700
    state.path.chmod(0o755)
    state.ensure()
    assert mode(state.path) == 0o700


def test_secrets_are_generated_once_strong_and_private(state_home: Path) -> None:
    state = ClusterState("lab")
    token = state.secret("k3s_token")
    assert len(token) == 32 and token.isalnum()
    assert token not in {"oscar123", "minio123", "changeme"}
    assert state.secret("k3s_token") == token
    assert state.secret("minio_secret_key") != token
    assert mode(state.secrets_file) == 0o600
    assert state.secret_names() == ["k3s_token", "minio_secret_key"]
    assert len({generate_secret() for _ in range(50)}) == 50


def test_ssh_keypair_is_created_once_in_openssh_format(state_home: Path) -> None:
    state = ClusterState("lab")
    private = state.ensure_ssh_keypair()
    first = private.read_text()
    assert first.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert mode(private) == 0o600
    assert state.ssh_public_key.read_text().startswith("ssh-ed25519 ")
    assert state.ensure_ssh_keypair().read_text() == first
    state.remove_key_material()
    assert not state.ssh_dir.exists() and not state.secrets_file.exists()


def test_journal_records_phases_with_their_inputs_and_digest(state_home: Path) -> None:
    journal = ClusterState("lab").ensure().journal
    assert not journal.completed("provision") and journal.get("provision") is None
    record = journal.record("provision", {"nodes": ["a", "b"], "workers": 2}, changed=True, details={"created": ["a"]})
    journal.record("prepare", {})
    assert journal.completed("provision")
    stored = journal.get("provision")
    assert stored == record
    assert stored.inputs == {"nodes": ["a", "b"], "workers": 2} and stored.details == {"created": ["a"]}
    assert stored.digest == inputs_digest({"workers": 2, "nodes": ["a", "b"]}), "key order does not matter"
    assert stored.digest != inputs_digest({"workers": 2, "nodes": ["b", "a"]})
    assert list(journal.records()) == ["prepare", "provision"]
    assert mode(journal.path) == 0o600


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", r"journal\.json: journal is unreadable \(Expecting .*\); delete it to re-run every phase"),
        ("[1]", r"journal\.json: journal has no `phases` mapping; delete it to re-run every phase"),
        ('{"phases": []}', r"journal\.json: journal has no `phases` mapping; delete it to re-run every phase"),
    ],
)
def test_corrupt_journal_says_what_to_do(state_home: Path, content: str, expected: str) -> None:
    state = ClusterState("lab").ensure()
    state.journal.path.write_text(content)
    with pytest.raises(OperationError, match=expected):
        state.journal.completed("provision")


def test_desired_state_keeps_the_workers_a_scale_has_not_seen_join(state_home: Path) -> None:
    desired = ClusterState("lab").ensure().desired
    assert desired.joining() == []
    desired.set_workers(3)
    desired.set_joining(["agent-2", "agent-1"])
    assert desired.joining() == ["agent-1", "agent-2"]
    desired.set_joining([])
    assert json.loads(desired.path.read_text()) == {"workers": 3}, "an empty list leaves no key behind"
    desired.set_joining([])
    assert json.loads(desired.path.read_text()) == {"workers": 3}
    desired.path.write_text('{"joining": ["agent-1", 7, null]}')
    assert desired.joining() == ["agent-1"], "what is no name is left out"
    desired.path.write_text('{"joining": "agent-1"}')
    assert desired.joining() == [], "a string is no list of names"


def test_desired_state_keeps_the_scaled_worker_count_and_the_bundle(state_home: Path) -> None:
    desired = ClusterState("lab").ensure().desired
    assert desired.workers() is None and desired.bundle() is None
    desired.set_workers(0)
    desired.set_bundle("/srv/bundle")
    assert desired.workers() == 0, "zero workers is a count, not 'unset'"
    assert desired.bundle() == "/srv/bundle"
    desired.path.write_text('{"workers": true}')
    assert desired.workers() is None, "a boolean is not a count"
    assert mode(desired.path) == 0o600


def test_atomic_write_never_leaves_a_half_written_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "kubeconfig"
    files.atomic_write(target, "old content\n")

    def crash(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write(target, "new content that never lands\n")
    assert target.read_text() == "old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["kubeconfig"], "temporary file left behind"


def test_atomic_write_sets_mode_from_the_start(tmp_path: Path) -> None:
    files.atomic_write(tmp_path / "secret", b"x", 0o600)
    files.atomic_write(tmp_path / "public", "y", 0o644)
    assert mode(tmp_path / "secret") == 0o600
    assert mode(tmp_path / "public") == 0o644


def test_the_tail_of_a_file_is_its_last_bytes_or_all_of_it_when_shorter(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b"0123456789")
    assert files.read_user_tail(path, "log", 4) == b"6789"
    assert files.read_user_tail(path, "log", 9) == b"123456789"
    assert files.read_user_tail(path, "log", 10) == b"0123456789", "exactly its size: all of it"
    assert files.read_user_tail(path, "log", 11) == b"0123456789"
    path.write_bytes(b"")
    assert files.read_user_tail(path, "log", 4) == b""


def test_the_tail_of_what_is_not_a_regular_file_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(UserInputError) as refused:
        files.read_user_tail(folder, "decisions log", 10)
    assert str(refused.value) == f"{folder}: is a folder, not a regular file; pass a regular file as the decisions log"
    with pytest.raises(UserInputError) as refused:
        files.read_user_tail(tmp_path / "missing", "decisions log", 10)
    assert str(refused.value) == f"{tmp_path / 'missing'}: no such decisions log; pass an existing file"


def test_a_tail_that_cannot_be_read_is_one_line_naming_the_file_as_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log\nfile"
    path.write_bytes(b"0123456789")

    def failing(descriptor: int, position: int, how: int) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "lseek", failing)
    with pytest.raises(UserInputError) as refused:
        files.read_user_tail(path, "decisions log", 4)
    assert str(refused.value) == f"'{tmp_path}/log\\nfile': cannot read the decisions log (Input/output error)"


def test_a_file_starts_with_a_prefix_only_when_it_holds_all_of_it(tmp_path: Path) -> None:
    path = tmp_path / "cost.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n and the image")
    assert files.file_starts_with(path, b"\x89PNG\r\n\x1a\n")
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert files.file_starts_with(path, b"\x89PNG\r\n\x1a\n"), "exactly the prefix"
    path.write_bytes(b"\x89PNG\r\n\x1a")
    assert not files.file_starts_with(path, b"\x89PNG\r\n\x1a\n"), "one byte short"
    path.write_bytes(b"my notes\n")
    assert not files.file_starts_with(path, b"\x89PNG\r\n\x1a\n")


def test_what_is_not_a_readable_regular_file_starts_with_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not files.file_starts_with(tmp_path / "missing.png", b"")
    (tmp_path / "folder.png").mkdir()
    assert not files.file_starts_with(tmp_path / "folder.png", b"")
    os.mkfifo(tmp_path / "fifo.png")
    assert not files.file_starts_with(tmp_path / "fifo.png", b""), "not opened: that would wait for a writer"
    path = tmp_path / "cost.png"
    path.write_bytes(b"\x89PNG")
    assert files.file_starts_with(path, b"\x89PNG")

    def failing(descriptor: int, size: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "read", failing)
    assert not files.file_starts_with(path, b"\x89PNG"), "unreadable"


def test_require_and_list(state_home: Path) -> None:
    with pytest.raises(UserInputError, match=r"cluster 'ghost': no state folder .*run `oscar-deploy up` first"):
        ClusterState("ghost").require()
    ClusterState("b").save_spec("name: b\n")
    ClusterState("a").save_spec("name: a\n")
    ClusterState("no-spec").ensure()
    assert list_clusters() == ["a", "b"]
    ClusterState("a").destroy()
    assert list_clusters() == ["b"]


@pytest.mark.parametrize("deep", ["[" * 100_000, b'{"a": ' * 100_000], ids=["text", "bytes"])
def test_json_nested_too_deeply_for_the_parser_is_damaged_json_like_any_other(deep: str | bytes) -> None:
    with pytest.raises(json.JSONDecodeError) as damaged:
        files.parse_json(deep)
    assert isinstance(damaged.value, ValueError)
    assert (str(damaged.value), damaged.value.msg) == ("nested too deeply to read", "nested too deeply to read")
    assert files.parse_json(b'{"a": [[[1]]]}') == {"a": [[[1]]]}
    with pytest.raises(json.JSONDecodeError) as damaged:
        files.parse_json("[1,")
    assert str(damaged.value) == "Expecting value: line 1 column 4 (char 3)", "other damage as json.loads says it"


def test_a_removal_stopped_half_way_leaves_no_half_cluster_and_the_next_one_ends_it(
    state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oscar_deploy.state import folder as folder_module

    for name in ("lab", "other"):
        state = ClusterState(name)
        state.save_spec(f"name: {name}\n")
        state.secret("k3s_token")
    real_rmtree = folder_module.shutil.rmtree

    def stopped(path: Path, ignore_errors: bool = False) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(folder_module.shutil, "rmtree", stopped)
    with pytest.raises(KeyboardInterrupt):
        ClusterState("lab").destroy()
    assert not ClusterState("lab").path.exists()
    assert list_clusters() == ["other"], "the folder being removed is no cluster"
    [left] = [entry.name for entry in state_home.iterdir() if entry.name.startswith(".")]
    assert left.startswith(".lab.removed-")

    monkeypatch.setattr(folder_module.shutil, "rmtree", real_rmtree)
    ClusterState("other").destroy()
    assert list(state_home.iterdir()) == []
