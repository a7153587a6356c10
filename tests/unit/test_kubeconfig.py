"""`kubeconfig`: print the path, or merge into ~/.kube/config (HOME in a temporary folder) under the cluster's name."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from oscar_deploy.state.folder import ClusterState

CLUSTER_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: default
  cluster:
    certificate-authority-data: Q0EtZGF0YQ==
    server: https://127.0.0.1:41234
users:
- name: default
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5LWRhdGE=
contexts:
- name: default
  context:
    cluster: default
    user: default
current-context: default
"""

OTHER_KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "work", "cluster": {"server": "https://192.0.2.1:6443"}}],
    "users": [{"name": "work-admin", "user": {"token": "other-token"}}],
    "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work-admin"}}],
    "current-context": "work",
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def cluster_with_kubeconfig(name: str = "lab") -> ClusterState:
    state = ClusterState(name).ensure()
    state.write_file(state.kubeconfig_file, CLUSTER_KUBECONFIG)
    return state


def test_prints_the_path_from_the_spec_or_the_cluster_name(cli, home: Path) -> None:
    state = cluster_with_kubeconfig("lab")
    (cli.cwd / "cluster.yaml").write_text("name: lab\ntarget: local\n")
    result = cli("kubeconfig")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{state.kubeconfig_file}\n"
    assert cli("kubeconfig", "--cluster", "lab").stdout == f"{state.kubeconfig_file}\n"
    assert not (home / ".kube").exists()


def test_missing_cluster_or_kubeconfig_is_a_one_line_error(cli, home: Path) -> None:
    result = cli("kubeconfig", "--cluster", "nowhere")
    assert result.exit_code == 2
    assert "cluster 'nowhere': no state folder" in result.stderr
    ClusterState("empty").ensure()
    result = cli("kubeconfig", "-c", "empty")
    assert result.exit_code == 2
    assert "cluster empty: no kubeconfig yet" in result.stderr and "run `oscar-deploy up`" in result.stderr


def test_merge_into_an_empty_home(cli, home: Path) -> None:
    cluster_with_kubeconfig("lab")
    result = cli("kubeconfig", "-c", "lab", "--merge")
    assert result.exit_code == 0, result.output
    target = home / ".kube" / "config"
    assert f"merged cluster lab into {target} as context lab; current context is lab" in result.stdout
    merged = yaml.safe_load(target.read_text())
    assert merged["current-context"] == "lab"
    assert merged["contexts"] == [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}]
    assert merged["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:41234"
    assert merged["users"][0]["user"]["client-key-data"] == "a2V5LWRhdGE="
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / ".kube").stat().st_mode) == 0o700
    assert "a2V5LWRhdGE=" not in result.output


def test_merge_keeps_other_contexts_and_is_idempotent(cli, home: Path) -> None:
    cluster_with_kubeconfig("lab")
    target = home / ".kube" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump(OTHER_KUBECONFIG))
    target.chmod(0o644)

    first = cli("kubeconfig", "-c", "lab", "--merge")
    assert first.exit_code == 0, first.output
    assert "current context is now lab (was work)" in first.stdout
    once = target.read_text()
    assert cli("kubeconfig", "-c", "lab", "--merge").exit_code == 0
    assert target.read_text() == once, "merging again changes nothing"

    merged = yaml.safe_load(once)
    assert [c["name"] for c in merged["contexts"]] == ["work", "lab"]
    assert [u["name"] for u in merged["users"]] == ["work-admin", "lab"]
    assert merged["users"][0]["user"]["token"] == "other-token"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_merge_with_custom_context_and_file_keeping_the_current_context(cli, home: Path, tmp_path: Path) -> None:
    cluster_with_kubeconfig("lab")
    target = tmp_path / "elsewhere" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump(OTHER_KUBECONFIG))
    result = cli(
        "kubeconfig", "-c", "lab", "--merge", "--context", "oscar-lab", "--into", str(target), "--keep-current-context"
    )
    assert result.exit_code == 0, result.output
    assert "as context oscar-lab; current context stays work" in result.stdout
    merged = yaml.safe_load(target.read_text())
    assert merged["current-context"] == "work"
    assert {"name": "oscar-lab", "context": {"cluster": "oscar-lab", "user": "oscar-lab"}} in merged["contexts"]
    assert not (home / ".kube").exists()


def test_merge_refuses_a_damaged_kubeconfig_without_touching_it(cli, home: Path) -> None:
    cluster_with_kubeconfig("lab")
    target = home / ".kube" / "config"
    target.parent.mkdir()
    target.write_text("clusters: [unclosed\n")
    result = cli("kubeconfig", "-c", "lab", "--merge")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {target}:2: your kubeconfig is not valid YAML")
    assert target.read_text() == "clusters: [unclosed\n"
    assert cli("kubeconfig", "-c", "lab", "--context", "x").exit_code == 2
