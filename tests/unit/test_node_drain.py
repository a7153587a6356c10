"""Role `node_drain` without nodes: its two rules (which pods are jobs the drain waits for, which volumes live on
the node) rendered against the autoscaler's Python rule and hand-made API objects, and its entry points run for
real on this machine with `k3s_bin_dir` pointing at a scripted `k3s kubectl` (below) that serves the API's
answers from files the test writes."""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from oscar_deploy.autoscaler.kubeobjects import belongs_to_node, interruptible, is_finished
from oscar_deploy.nodes.ansible import run_playbook
from oscar_deploy.nodes.volumes import LostClaim, lost_claims, lost_jobs
from oscar_deploy.support.layers import layer_dir
from tests.unit.test_roles import recap, run_role_tasks

TEMPLATES = layer_dir("playbooks") / "roles" / "node_drain" / "templates"
SAFE = "cluster-autoscaler.kubernetes.io/safe-to-evict"
MIRROR = "kubernetes.io/config.mirror"

# TEST DOUBLE: stands in for `k3s kubectl get pods|persistentvolumes -o json` (https://docs.k3s.io/cli/kubectl)
# and for the answers of cordon and drain; it is not kubectl. `get pods` answers `pods-N.json` at its N-th call
# (the last such file once N passes it: what the API serves while jobs finish); `get node` answers nothing once
# the file `node-gone` exists (`--ignore-not-found` of a deleted node), which `delete node` makes (and then
# answers nothing, as `--ignore-not-found` does for a node already deleted); every call is logged.
KUBECTL = """#!{python}
import json, os, sys
folder = {folder!r}
args = sys.argv[2:]
with open(os.path.join(folder, "calls.log"), "a") as log:
    log.write(" ".join(args) + "\\n")
if args[:2] == ["get", "node"]:
    if not os.path.exists(os.path.join(folder, "node-gone")):
        print(args[2] + "   Ready   <none>   1m   v1.33.3+k3s1")
elif args[:2] == ["get", "pods"]:
    calls = sum(line.startswith("get pods") for line in open(os.path.join(folder, "calls.log")))
    files = sorted(int(name[5:-5]) for name in os.listdir(folder) if name.startswith("pods-"))
    print(open(os.path.join(folder, "pods-%d.json" % max(n for n in files if n <= calls))).read())
elif args[:2] == ["get", "persistentvolumes"]:
    print(open(os.path.join(folder, "pvs.json")).read())
elif args[:2] == ["delete", "node"]:
    gone = os.path.join(folder, "node-gone")
    if not os.path.exists(gone):
        open(gone, "w").close()
        print('node "%s" deleted' % args[2])
elif args[0] in ("cordon", "drain"):
    print("node/%s %sed" % (args[1], args[0]))
else:
    sys.exit("scripted kubectl: %s is not scripted" % " ".join(args))
"""

HOST = {
    "machine": "x86_64",
    "nodename": "s1",
    "os_id": "debian",
    "os_like": "debian",
    "os_version": "12",
    "os_major_version": "12",
    "os_family": "Debian",
    "service_mgr": "systemd",
    "container": "",
    "python": sys.executable,
}


def render(template: str, **variables: Any) -> list[str]:
    """The words a role template renders to (Ansible renders role templates unescaped: they are not HTML)."""
    loader = jinja2.FileSystemLoader(TEMPLATES)
    environment = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701
    return environment.get_template(template).render(**variables).split()


def pod(name: str, owners: tuple[str, ...] = ("Job",), phase: str | None = "Running", **annotations: str) -> Any:
    metadata: dict[str, Any] = {"name": name, "namespace": "oscar-svc"}
    if owners:
        metadata["ownerReferences"] = [{"kind": kind, "name": f"{name}-owner"} for kind in owners]
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": {"nodeName": "agent-1"}, "status": {"phase": phase} if phase else {}}


def pv(
    name: str, nodes: list[str] | None, phase: str = "Bound", claim: str | None = "oscar/oscar-pvc", path: str = ""
) -> Any:
    spec: dict[str, Any] = {"local": {"path": path}} if path else {}
    if claim:
        namespace, claim_name = claim.split("/")
        spec["claimRef"] = {"namespace": namespace, "name": claim_name}
    if nodes is not None:
        expression = {"key": "kubernetes.io/hostname", "operator": "In", "values": nodes}
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [expression]}]}}
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": phase}}


def test_the_roles_job_pods_are_the_autoscalers_uninterruptible_pods() -> None:
    """One definition of a job pod: every combination of owners, safe-to-evict annotation, mirror annotation and
    phase is waited for by the role exactly when the autoscaler would refuse to power its node off for it."""
    owners = [(), ("Job",), ("ReplicaSet",), ("StatefulSet",), ("ReplicationController",), ("DaemonSet",), ("Node",)]
    annotations: list[dict[str, str]] = [{}, {SAFE: "true"}, {SAFE: "false"}, {SAFE: "maybe"}, {MIRROR: "x"}]
    phases = ["Running", "Pending", "Succeeded", "Failed", None]
    pods = [
        pod(f"p{index}", owner, phase, **extra)
        for index, (owner, extra, phase) in enumerate(itertools.product(owners, annotations, phases))
    ]
    expected = [
        f"oscar-svc/{p['metadata']['name']}"
        for p in pods
        if not belongs_to_node(p) and not is_finished(p) and not interruptible(p)
    ]
    assert render("job_pods.j2", node_drain_pod_items=pods) == expected
    # Not vacuous: a running Job pod counts, a Deployment's does not.
    assert render("job_pods.j2", node_drain_pod_items=[pod("job"), pod("web", ("ReplicaSet",))]) == ["oscar-svc/job"]


def test_local_volumes_are_the_bound_ones_whose_affinity_names_the_node() -> None:
    volumes = [
        pv("pvc-here", ["agent-1"]),
        pv("pvc-shared", ["agent-0", "agent-1"], claim="minio/data"),
        pv("pvc-other", ["agent-0"]),
        pv("pvc-released", ["agent-1"], phase="Released"),
        pv("pvc-available", ["agent-1"], phase="Available", claim=None),
        pv("nfs", None),
    ]
    assert render("local_volumes.j2", node_drain_pv_items=volumes, node_drain_node="agent-1") == [
        "pvc-here=oscar/oscar-pvc",
        "pvc-shared=minio/data",
    ]
    assert render("local_volumes.j2", node_drain_pv_items=volumes, node_drain_node="agent-9") == []


def scripted(tmp_path: Path, pods: list[list[Any]], volumes: list[Any] | None = None) -> dict[str, Any]:
    """A `k3s` in tmp_path/bin whose `get pods` serves pods[0] at the first call, pods[1] at the second..."""
    folder = tmp_path / "api"
    (tmp_path / "bin").mkdir(exist_ok=True)
    folder.mkdir(exist_ok=True)
    script = tmp_path / "bin" / "k3s"
    script.write_text(KUBECTL.format(python=sys.executable, folder=str(folder)))
    script.chmod(0o755)
    for number, items in enumerate(pods, start=1):
        (folder / f"pods-{number}.json").write_text(json.dumps({"kind": "List", "items": items}))
    (folder / "pvs.json").write_text(json.dumps({"kind": "List", "items": volumes or []}))
    return {
        "k3s_host": HOST,
        "k3s_bin_dir": str(tmp_path / "bin"),
        "k3s_node_name": "agent-1",
        "node_drain_kubectl_host": "s1",
    }


def calls(tmp_path: Path) -> list[str]:
    return [" ".join(line.split()[:2]) for line in (tmp_path / "api" / "calls.log").read_text().splitlines()]


def test_the_drain_waits_for_the_jobs_then_fails_naming_them(tmp_path: Path) -> None:
    job, web = pod("job-7f3a"), pod("web-1", ("ReplicaSet",))
    variables = {**scripted(tmp_path, [[job, web]]), "node_drain_job_timeout": 2}
    started = time.monotonic()
    rc, output = run_role_tasks(tmp_path, "node_drain", "main", variables)
    assert rc != 0, output
    assert time.monotonic() - started >= 2
    waiting = (
        "waiting up to 2 s (node_drain_job_timeout) for 1 job pod(s) to finish before the drain: oscar-svc/job-7f3a"
    )
    assert waiting in output
    failed = (
        "agent-1: 1 job pod(s) still running after 2 s, OSCAR jobs a drain would kill; let them finish and run "
        "again, or raise node_drain_job_timeout: oscar-svc/job-7f3a"
    )
    assert failed in output, output
    assert "oscar/web-1" not in output
    assert calls(tmp_path)[:3] == ["get node", "cordon agent-1", "get pods"]
    assert "drain agent-1" not in calls(tmp_path)


def test_the_drain_goes_on_once_the_jobs_finished(tmp_path: Path) -> None:
    running, finished = pod("job-7f3a"), pod("job-7f3a", phase="Succeeded")
    variables = {**scripted(tmp_path, [[running], [running], [finished]]), "node_drain_job_timeout": 30}
    rc, output = run_role_tasks(tmp_path, "node_drain", "main", variables)
    assert rc == 0, output
    assert calls(tmp_path) == ["get node", "cordon agent-1", "get pods", "get pods", "get pods", "drain agent-1"]


def test_check_mode_reports_the_jobs_without_waiting_or_changing(tmp_path: Path) -> None:
    variables = {**scripted(tmp_path, [[pod("job-7f3a")]]), "node_drain_job_timeout": 600}
    rc, output = run_role_tasks(tmp_path, "node_drain", "main", variables, "--check")
    assert rc == 0, output
    assert "in check mode, not waiting for 1 job pod(s) to finish before the drain: oscar-svc/job-7f3a" in output
    assert recap(output)["changed"] == 0
    assert calls(tmp_path) == ["get node", "get pods"]


def test_a_node_without_jobs_is_drained_at_once(tmp_path: Path) -> None:
    variables = scripted(tmp_path, [[pod("web-1", ("ReplicaSet",)), pod("done", phase="Failed")]])
    rc, output = run_role_tasks(tmp_path, "node_drain", "main", variables)
    assert rc == 0, output
    assert calls(tmp_path) == ["get node", "cordon agent-1", "get pods", "drain agent-1"]
    assert "job pod(s)" not in output


@pytest.mark.parametrize("allow", [False, True])
def test_local_volumes_refuse_the_removal_unless_allowed(tmp_path: Path, allow: bool) -> None:
    volumes = [pv("pvc-0b1d", ["agent-1"], claim="minio/minio-data"), pv("pvc-9c2e", ["agent-0"])]
    variables = {**scripted(tmp_path, [[]], volumes), "node_drain_allow_local_volume_loss": allow}
    rc, output = run_role_tasks(tmp_path, "node_drain", "local_volumes", variables)
    if allow:
        assert rc == 0, output
        assert "the data of PV pvc-0b1d (claim minio/minio-data) goes with the node" in output
    else:
        assert rc != 0, output
        refused = (
            "agent-1 holds 1 bound local volume(s) its removal would destroy; nothing was changed. Move their data "
            "to another node first, or give it up with -e node_drain_allow_local_volume_loss=true (oscar-deploy "
            "scale --allow-local-volume-loss): PV pvc-0b1d (claim minio/minio-data)"
        )
        assert refused in output, output
    assert "pvc-9c2e" not in output
    assert calls(tmp_path) == ["get persistentvolumes", "get node"]


def removed_before(tmp_path: Path, kept: bool, reachable: bool = True, node_gone: bool = True) -> dict[str, Any]:
    """The API and the host after a removal that ended before the machine was deleted: the node object gone (with
    `node_gone`), the folder of volume pvc-0b1d deleted by the reset, that of a user's volume at a path the reset
    leaves (`kept`) still there, or both gone."""
    volumes = [
        pv("pvc-0b1d", ["agent-1"], claim="minio/minio-data", path=str(tmp_path / "storage" / "pvc-0b1d")),
        pv("raw-images", ["agent-1"], claim="science/raw-images", path=str(tmp_path / "srv" / "raw-images")),
    ]
    variables = {**scripted(tmp_path, [[]], volumes), "node_drain_host_reachable": reachable}
    if kept:
        (tmp_path / "srv" / "raw-images").mkdir(parents=True)
    if node_gone:
        (tmp_path / "api" / "node-gone").touch()
    return variables


def test_volumes_an_earlier_removal_destroyed_are_no_reason_to_refuse(tmp_path: Path) -> None:
    """scale run again after remove-node.yml ended but the machine's deletion failed: the node left the API, the
    reset deleted the volume folders; the removal goes on without the flag and reports them."""
    rc, output = run_role_tasks(tmp_path, "node_drain", "local_volumes", removed_before(tmp_path, kept=False))
    assert rc == 0, output
    assert (
        "agent-1 left the cluster in an earlier removal, and the folders of PV pvc-0b1d (claim minio/minio-data), "
        "PV raw-images (claim science/raw-images) went with it"
    ) in output.replace("\n", " ")
    assert "would destroy" not in output and "goes with the node" not in output


def test_a_volume_folder_still_on_the_removed_node_is_refused(tmp_path: Path) -> None:
    """A folder the reset leaves (a user's local volume outside k3s' data folder) still holds data that the
    machine's deletion destroys: refused, naming that volume only."""
    rc, output = run_role_tasks(tmp_path, "node_drain", "local_volumes", removed_before(tmp_path, kept=True))
    assert rc != 0, output
    assert (
        "agent-1 holds 1 bound local volume(s) its removal would destroy; nothing was changed. Move their data to "
        "another node first, or give it up with -e node_drain_allow_local_volume_loss=true (oscar-deploy scale "
        "--allow-local-volume-loss): PV raw-images (claim science/raw-images)"
    ) in output


@pytest.mark.parametrize(
    ("reachable", "node_gone"), [(False, True), (True, False)], ids=["host-unreachable", "node-still-in-the-api"]
)
def test_missing_folders_count_only_on_a_reachable_host_whose_node_left(
    tmp_path: Path, reachable: bool, node_gone: bool
) -> None:
    """The folders are not looked for on a machine that is off (its disk still holds them), and a node still in
    the API has its claims to lose: both volumes are refused."""
    variables = removed_before(tmp_path, kept=False, reachable=reachable, node_gone=node_gone)
    rc, output = run_role_tasks(tmp_path, "node_drain", "local_volumes", variables)
    assert rc != 0, output
    assert ("agent-1 holds 2 bound local volume(s) its removal would destroy; nothing was changed.") in output, output


RECORDED_VOLUMES = Path(__file__).parents[1] / "data" / "kube" / "persistentvolumes.json"


def run_through_runner(tmp_path: Path, tasks_from: str, variables: dict[str, Any], check: bool = False) -> Any:
    """One entry point of the role run as the CLI runs playbooks (run_playbook: ansible-runner and its events),
    on this machine, so that what the role hands back reaches a PlaybookResult."""
    inventory = {
        "server": {"hosts": {"s1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}},
        "agent": {"hosts": {}},
    }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    include = {"ansible.builtin.include_role": {"name": "node_drain", "tasks_from": tasks_from}}
    play = [{"name": "Run", "hosts": "server", "gather_facts": False, "tasks": [{"name": "Run", **include}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    if not (tmp_path / "roles").exists():
        (tmp_path / "roles").symlink_to(layer_dir("playbooks") / "roles")
    return run_playbook(
        "play.yml",
        tmp_path / "inventory.yml",
        tmp_path / ("check.log" if check else "run.log"),
        variables,
        playbook_dir=tmp_path,
        check=check,
        raise_on_failure=False,
    )


def test_the_claims_given_up_reach_the_caller_with_their_volumes(tmp_path: Path) -> None:
    """With the loss allowed, the role hands back (set_stats, through ansible-runner's stats event) each claim
    whose volume is on the node, from the volumes k3s' local-path provisioner writes (tests/data/kube); check mode
    gives nothing up and hands back nothing."""
    recorded = json.loads(RECORDED_VOLUMES.read_text())["items"]
    variables = {**scripted(tmp_path, [[]], recorded), "node_drain_allow_local_volume_loss": True}
    result = run_through_runner(tmp_path, "local_volumes", variables)
    assert result.succeeded, result.log_file.read_text()
    assert lost_claims(result) == [
        LostClaim("agent-1", "pvc-7c1d9e20-3b5a-4c8f-a2e6-0f4b8d1c9e37", "minio", "minio-data", "local-path", "Delete"),
        LostClaim(
            "agent-1", "pvc-9e4b2a71-6d0c-4e3f-b5a8-1c7d2e9f0a46", "default", "data-postgres-0", "local-path", "Delete"
        ),
        LostClaim("agent-1", "raw-images-agent-1", "science", "raw-images", "local-storage", "Retain"),
    ]
    assert result.changed_hosts() == {}

    checked = run_through_runner(tmp_path, "local_volumes", variables, check=True)
    assert checked.succeeded and checked.changed_hosts() == {}
    assert checked.custom_stats == {} and lost_claims(checked) == []
    assert "the data of PV pvc-7c1d9e20-3b5a-4c8f-a2e6-0f4b8d1c9e37 (claim minio/minio-data)" in (
        checked.log_file.read_text().replace("\n", " ")
    ), "check mode still says what the removal would give up"


def test_the_claims_an_earlier_removal_destroyed_reach_the_caller(tmp_path: Path) -> None:
    """So that `scale` run again names them, although its first run's output may be lost."""
    result = run_through_runner(tmp_path, "local_volumes", removed_before(tmp_path, kept=False))
    assert result.succeeded, result.log_file.read_text()
    assert lost_claims(result) == [
        LostClaim("agent-1", "pvc-0b1d", "minio", "minio-data", "", ""),
        LostClaim("agent-1", "raw-images", "science", "raw-images", "", ""),
    ]


def run_remove_node(tmp_path: Path, variables: dict[str, Any], check: bool = False) -> Any:
    """remove-node.yml itself, run as the CLI runs it (run_playbook), with the first server this machine (the local
    connection, no become) and agent-1 an SSH host that nothing answers for: any task that reached it would fail
    the run as unreachable."""
    inventory = {
        "server": {"hosts": {"s1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}},
        "agent": {"hosts": {"agent-1": {"ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_user": "nobody"}}},
    }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    return run_playbook(
        "remove-node.yml",
        tmp_path / "inventory.yml",
        tmp_path / ("check.log" if check else "run.log"),
        {**variables, "ansible_become": False},
        check=check,
        raise_on_failure=False,
    )


GONE = {"remove_node": "agent-1", "skip_confirmation": True, "remove_node_reset": False, "remove_node_gone": True}


def test_a_machine_gone_for_good_is_not_waited_for_nor_drained_and_its_node_object_is_deleted(tmp_path: Path) -> None:
    """A VM deleted outside oscar-deploy: its job pods stay Running in the API, but its kubelet never finishes them
    nor confirms an eviction, so remove-node.yml with remove_node_gone neither cordons, waits (the timeout would be
    an hour) nor drains; it deletes the node object (pod GC then deletes its pods) and hands back the jobs and the
    claims of the local volumes lost with the machine, without node_drain_allow_local_volume_loss. Nothing reaches
    the machine. Check mode changes nothing and hands nothing back; a second run changes nothing."""
    job, web = pod("job-7f3a"), pod("web-1", ("ReplicaSet",))
    volumes = [pv("pvc-0b1d", ["agent-1"], claim="minio/minio-data"), pv("pvc-9c2e", ["agent-0"])]
    variables = {**scripted(tmp_path, [[job, web]], volumes), **GONE, "node_drain_job_timeout": 3600}
    del variables["k3s_node_name"]  # each host's own name, as in a cluster's inventory

    checked = run_remove_node(tmp_path, variables, check=True)
    assert checked.succeeded, checked.log_file.read_text()
    assert checked.changed_hosts() == {} and checked.custom_stats == {}
    assert calls(tmp_path) == ["get persistentvolumes", "get node", "get node", "get pods"], "no delete"

    (tmp_path / "api" / "calls.log").unlink()
    result = run_remove_node(tmp_path, variables)
    assert result.succeeded, result.log_file.read_text()
    assert calls(tmp_path) == ["get persistentvolumes", "get node", "get node", "get pods", "delete node"]
    assert (tmp_path / "api" / "node-gone").exists()
    assert lost_jobs(result) == ["oscar-svc/job-7f3a"]
    assert lost_claims(result) == [LostClaim("agent-1", "pvc-0b1d", "minio", "minio-data", "", "")]
    assert result.changed_hosts() == {"agent-1": 1}, "the node object's deletion only"
    log = result.log_file.read_text().replace("\n", " ")
    assert (
        "agent-1: its machine is gone for good (node_drain_machine_gone), and the 1 job pod(s) it ran were lost "
        "with it: oscar-svc/job-7f3a"
    ) in log
    assert (
        "agent-1: its machine is gone for good (node_drain_machine_gone), and the data of PV pvc-0b1d (claim "
        "minio/minio-data) went with its disk"
    ) in log
    assert "would destroy" not in log and "waiting up to" not in log

    again = run_remove_node(tmp_path, variables)
    assert again.succeeded, again.log_file.read_text()
    assert again.changed_hosts() == {}
    assert lost_jobs(again) is None, "its node had left the API: no pod of it to name"
    assert lost_claims(again) == lost_claims(result), "the claims still name the node"


def test_remove_node_gone_with_a_reset_is_refused_before_any_change(tmp_path: Path) -> None:
    variables = {**scripted(tmp_path, [[]]), **GONE, "remove_node_reset": True}
    del variables["k3s_node_name"]
    result = run_remove_node(tmp_path, variables)
    assert not result.succeeded
    assert (
        "remove_node_gone=true: agent-1 is gone for good, nothing can be reset on it; add -e remove_node_reset=false"
    ) in result.log_file.read_text().replace("\n", " ")
    assert not (tmp_path / "api" / "calls.log").exists()


@pytest.mark.parametrize("gone", [False, True])
def test_the_jobs_of_a_machine_gone_for_good_are_handed_back_even_when_none_ran(tmp_path: Path, gone: bool) -> None:
    """An empty list says that no job ran there; a machine that is not gone hands nothing back."""
    variables = {**scripted(tmp_path, [[pod("web-1", ("ReplicaSet",))]]), "node_drain_machine_gone": gone}
    result = run_through_runner(tmp_path, "main", variables)
    assert result.succeeded, result.log_file.read_text()
    assert lost_jobs(result) == ([] if gone else None)
    assert calls(tmp_path) == (
        ["get node", "get pods"] if gone else ["get node", "cordon agent-1", "get pods", "drain agent-1"]
    )
