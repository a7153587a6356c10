"""Declarative phases: `up` runs a phase only when it never completed or one of its inputs changed, and `plan`
says the same without acting. Ansible is replaced by a recorder here (the nodes tier runs the playbooks)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from oscar_deploy.nodes.bundle import MANIFEST_FORMAT
from oscar_deploy.pipeline import cluster as pipeline
from oscar_deploy.pipeline.phases import Phase, PhaseContext, PhaseResult, changed_inputs, decide, run_phases
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.state.journal import PhaseRecord, inputs_digest
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.progress import Progress
from tests.checkout import REPOSITORY
from tests.unit.pipeline_env import SPEC, MemoryProvider, PlaybookRun, make_context


def _up(
    state_home: Path, provider: MemoryProvider, spec_text: str = SPEC, bundle: Path | None = None
) -> dict[str, str]:
    """One `up`: the reason each phase gave, by phase."""
    context = make_context(state_home, provider, spec_text, bundle)
    outcomes = pipeline.converge(context, spec_text, until="kubernetes")
    return {outcome.phase: outcome.decision.reason if outcome.result is None else "ran" for outcome in outcomes}


def test_first_up_runs_every_phase_and_a_second_skips_all_but_provision(
    state_home: Path, playbooks: list[PlaybookRun]
) -> None:
    provider = MemoryProvider()
    assert _up(state_home, provider) == {"provision": "ran", "prepare": "ran", "kubernetes": "ran"}
    assert [run.playbook for run in playbooks] == ["prepare.yml", "kubernetes.yml"]
    playbooks.clear()
    reasons = _up(state_home, provider)
    assert reasons["provision"] == "ran", "provision looks at the nodes every time"
    assert reasons["prepare"].startswith("up to date (completed ")
    assert reasons["kubernetes"].startswith("up to date (completed ")
    assert playbooks == [], "a converged cluster runs no playbook"


def test_check_drift_runs_the_node_phases_of_a_converged_cluster_with_every_role(
    state_home: Path, playbooks: list[PlaybookRun]
) -> None:
    provider = MemoryProvider()
    _up(state_home, provider)
    assert all("k3s_check_drift" not in run.variables for run in playbooks)
    playbooks.clear()
    context = make_context(state_home, provider)
    context.check_drift = True
    outcomes = pipeline.converge(context, SPEC, until="kubernetes")
    reasons = {outcome.phase: outcome.decision.reason for outcome in outcomes}
    assert reasons["prepare"] == reasons["kubernetes"] == "drift check (--check-drift): every role on every node"
    assert [run.playbook for run in playbooks] == ["prepare.yml", "kubernetes.yml"]
    assert all(run.variables["k3s_check_drift"] is True for run in playbooks)
    summaries = {outcome.phase: outcome.result.summary[0] for outcome in outcomes if outcome.result}
    assert summaries["prepare"] == "1 node(s) checked for drift: repaired server-0"
    playbooks.clear()
    assert _up(state_home, provider)["prepare"].startswith("up to date"), "a later plain up is converged again"
    assert playbooks == []


def test_check_drift_on_changed_inputs_names_the_change() -> None:
    phase = Phase("prepare", lambda context: {}, lambda context, record: PhaseResult(False), drift_check="all")
    record = PhaseRecord("2026-11-30T10:00:00+00:00", "x", {"b": "old"})
    assert decide(phase, {"b": "new"}, record, check_drift=True).reason == "changed: b (old -> new)"
    assert decide(phase, {}, None, check_drift=True).reason == "never completed"
    unchanged = PhaseRecord("2026-11-30T10:00:00+00:00", inputs_digest({"b": "old"}), {"b": "old"})
    assert decide(phase, {"b": "old"}, unchanged).reason == "up to date (completed 2026-11-30T10:00:00+00:00)"
    assert decide(phase, {"b": "old"}, unchanged, check_drift=True).reason == "drift check (--check-drift): all"
    without_check = replace(phase, drift_check="")
    assert not decide(without_check, {"b": "old"}, unchanged, check_drift=True).run


def test_a_drift_check_names_the_nodes_it_repaired_not_those_whose_records_it_refreshed() -> None:
    from oscar_deploy.nodes.ansible import HostStats, PlaybookResult
    from oscar_deploy.pipeline.node_phases import RECORD_TASK, _result

    def checked(changed_tasks: dict[str, list[str]]) -> tuple[bool, list[str]]:
        stats = {host: HostStats(ok=4, changed=len(changed_tasks.get(host, []))) for host in ("agent-0", "server-0")}
        result = PlaybookResult("prepare.yml", "successful", 0, stats, [], Path("log"), changed_tasks)
        outcome = _result(result, "done", "same", drift_checked=True)
        return outcome.changed, outcome.summary

    assert checked({}) == (False, ["2 node(s) checked for drift: nothing had drifted"])
    refreshed = {"agent-0": [RECORD_TASK], "server-0": [RECORD_TASK]}
    assert checked(refreshed) == (True, ["2 node(s) checked for drift: nothing had drifted"])
    repaired = {"agent-0": ["Write the k3s agent configuration", RECORD_TASK], "server-0": [RECORD_TASK]}
    assert checked(repaired) == (True, ["2 node(s) checked for drift: repaired agent-0"])
    # A repair by a task whose result is hidden (no_log) is only in the stats' count.
    stats = {"agent-0": HostStats(ok=4, changed=2), "server-0": HostStats(ok=4, changed=1)}
    hidden = PlaybookResult("prepare.yml", "successful", 0, stats, [], Path("log"), refreshed)
    assert _result(hidden, "done", "same", drift_checked=True).summary == [
        "2 node(s) checked for drift: repaired agent-0"
    ]


def test_the_record_task_the_drift_summary_leaves_out_is_the_playbooks_own() -> None:
    from oscar_deploy.pipeline.node_phases import RECORD_TASK

    tasks = yaml.safe_load((REPOSITORY / "playbooks" / "roles" / "k3s" / "tasks" / "record.yml").read_text())
    assert [task["name"] for task in tasks] == [RECORD_TASK]


def test_spec_is_recorded_as_applied_only_after_every_phase(
    state_home: Path, playbooks: list[PlaybookRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = MemoryProvider()

    def broken(context: PhaseContext, record: PhaseRecord | None) -> PhaseResult:
        raise RuntimeError("node unreachable")

    original = pipeline.PHASES
    monkeypatch.setattr(pipeline, "PHASES", (*original[:2], replace(original[2], run=broken)))
    with pytest.raises(RuntimeError):
        _up(state_home, provider)
    state = ClusterState("demo")
    assert not state.spec_file.exists()
    assert state.journal.completed("prepare") and not state.journal.completed("kubernetes")
    monkeypatch.setattr(pipeline, "PHASES", original)
    playbooks.clear()
    assert _up(state_home, provider)["kubernetes"] == "ran"
    assert [run.playbook for run in playbooks] == ["kubernetes.yml"], "resumes at the phase that failed"
    assert state.spec_file.read_text() == SPEC


def test_k3s_version_bump_upgrades_known_nodes_once_then_is_a_no_op(
    state_home: Path, playbooks: list[PlaybookRun]
) -> None:
    provider = MemoryProvider()
    _up(state_home, provider)
    playbooks.clear()
    bumped = SPEC + "versions: {k3s: v1.33.4+k3s1}\n"
    context = make_context(state_home, provider, bumped)
    decisions = pipeline.plan(context, until="kubernetes")
    assert decisions[1].run is False, "the OS does not depend on the k3s version"
    assert decisions[2].reason == "changed: k3s_version (v1.33.3+k3s1 -> v1.33.4+k3s1)"
    _up(state_home, provider, bumped)
    assert [(run.playbook, run.limit, run.k3s_version) for run in playbooks] == [
        ("upgrade.yml", "server-0,agent-0", "v1.33.4+k3s1"),
        ("kubernetes.yml", None, "v1.33.4+k3s1"),
    ]
    playbooks.clear()
    _up(state_home, provider, bumped)
    assert playbooks == []


def test_a_new_bundle_reruns_the_k3s_phase_only(state_home: Path, playbooks: list[PlaybookRun], tmp_path: Path) -> None:
    provider = MemoryProvider()
    _up(state_home, provider)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text('{"format": 1}')
    decisions = pipeline.plan(make_context(state_home, provider, bundle=bundle), until="kubernetes")
    assert [(d.phase, d.run) for d in decisions] == [("provision", False), ("prepare", False), ("kubernetes", True)]
    assert decisions[2].reason.startswith("changed: bundle (none -> ")


def test_more_workers_create_a_node_and_rerun_what_depends_on_the_node_list(
    state_home: Path, playbooks: list[PlaybookRun]
) -> None:
    provider = MemoryProvider()
    _up(state_home, provider)
    ClusterState("demo").desired.set_workers(2)
    decisions = pipeline.plan(make_context(state_home, provider), until="kubernetes")
    assert (decisions[0].run, decisions[0].reason) == (True, "create agent-1")
    assert decisions[1].reason == "changed: nodes"
    playbooks.clear()
    _up(state_home, provider)
    assert sorted(provider.machines) == ["agent-0", "agent-1", "server-0"]
    assert [run.playbook for run in playbooks] == ["prepare.yml", "kubernetes.yml"]


def test_a_node_recreated_under_its_name_is_prepared_again(state_home: Path, playbooks: list[PlaybookRun]) -> None:
    provider = MemoryProvider()
    _up(state_home, provider)
    del provider.machines["agent-0"]  # removed behind our back; provision recreates it with a new instance
    playbooks.clear()
    _up(state_home, provider)
    assert [run.playbook for run in playbooks] == ["prepare.yml", "kubernetes.yml"]


def test_a_deleted_kubeconfig_is_fetched_again_by_the_k3s_phase_alone(
    state_home: Path, playbooks: list[PlaybookRun]
) -> None:
    """The way out of a kubeconfig the cluster no longer accepts (k3s renewed its client certificate): delete
    it, and the next `up` runs kubernetes.yml, which fetches it when missing."""
    provider = MemoryProvider()
    _up(state_home, provider)
    kubeconfig = ClusterState("demo").kubeconfig_file
    assert kubeconfig.is_file(), "kubernetes.yml fetched it"
    kubeconfig.unlink()
    decisions = pipeline.plan(make_context(state_home, provider), until="kubernetes")
    assert [(d.phase, d.run) for d in decisions] == [("provision", False), ("prepare", False), ("kubernetes", True)]
    assert decisions[2].reason == "changed: kubeconfig (present -> missing)"
    playbooks.clear()
    _up(state_home, provider)
    assert [run.playbook for run in playbooks] == ["kubernetes.yml"]
    assert kubeconfig.is_file()
    assert _up(state_home, provider)["kubernetes"].startswith("up to date (completed ")


def test_fewer_workers_drain_and_remove_the_extra_nodes(state_home: Path, playbooks: list[PlaybookRun]) -> None:
    provider = MemoryProvider()
    ClusterState("demo").ensure().desired.set_workers(2)
    _up(state_home, provider)
    ClusterState("demo").desired.set_workers(1)
    assert pipeline.plan(make_context(state_home, provider))[0].reason == "drain and remove agent-1"
    playbooks.clear()
    _up(state_home, provider)
    assert sorted(provider.machines) == ["agent-0", "server-0"]
    assert (playbooks[0].playbook, playbooks[0].limit) == ("remove-node.yml", None)


def test_plan_changes_nothing(state_home: Path, playbooks: list[PlaybookRun]) -> None:
    provider = MemoryProvider()
    _up(state_home, provider)
    ClusterState("demo").desired.set_workers(3)
    before = {path: path.read_bytes() for path in state_home.rglob("*") if path.is_file()}
    machines = dict(provider.machines)
    playbooks.clear()
    bumped = SPEC + "versions: {k3s: v1.33.4+k3s1}\n"
    decisions = pipeline.plan(make_context(state_home, provider, bumped), until="kubernetes")
    assert [d.run for d in decisions] == [True, True, True]
    assert {path: path.read_bytes() for path in state_home.rglob("*") if path.is_file()} == before
    assert provider.machines == machines and "apply" not in provider.calls[1:]
    assert playbooks == []


def test_plan_prints_each_phase_s_decision_and_up_notes_why_provision_always_runs(
    state_home: Path,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    """A phase says only its decision and why; what each phase does is the README's table of phases."""
    provider = MemoryProvider()
    monkeypatch.setattr(pipeline, "cluster_provider", lambda *args: provider)
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    planned = cli("plan")
    assert (planned.exit_code, planned.stderr) == (0, "")
    assert planned.stdout.splitlines() == [
        "provision: runs: create server-0, agent-0",
        "prepare: runs: never completed",
        "kubernetes: runs: never completed",
        "platform: runs: never completed",
        "verify: runs: never completed",
    ]
    made = cli("up", "--until", "kubernetes")
    assert made.exit_code == 0, made.output
    assert made.stderr.splitlines() == [
        "phase provision: checks the nodes every time and repairs what is missing",
        "phase prepare: never completed",
        "phase kubernetes: never completed",
    ]
    journal = ClusterState("demo").journal
    completed = {phase: journal.get(phase).completed_at for phase in ("prepare", "kubernetes")}  # type: ignore[union-attr]
    assert cli("plan").stdout.splitlines() == [
        "provision: skipped: all 2 node(s) present, nothing to do",
        f"prepare: skipped: up to date (completed {completed['prepare']})",
        f"kubernetes: skipped: up to date (completed {completed['kubernetes']})",
        "platform: runs: never completed",
        "verify: runs: never completed",
    ]


def test_decide_names_every_changed_input() -> None:
    phase = Phase("kubernetes", lambda context: {}, lambda context, record: PhaseResult(False))
    record = PhaseRecord("2026-11-30T10:00:00+00:00", "x", {"a": 1, "b": "old", "nodes": ["n1"]})
    decision = decide(phase, {"a": 1, "b": "new", "nodes": ["n1", "n2"], "c": None}, record)
    assert decision.reason == "changed: b (old -> new), nodes"
    assert changed_inputs({"v": "a" * 50}, {"v": "b"}) == ["v (aaaaaaaaaaaa...aaaaaaaaaaaa -> b)"]
    assert decide(phase, {}, None).reason == "never completed"


def test_a_failing_phase_keeps_the_earlier_ones_and_the_next_run_resumes(state_home: Path) -> None:
    ran: list[str] = []

    def phase(name: str, fail: bool = False) -> Phase:
        def run(context: PhaseContext, record: PhaseRecord | None) -> PhaseResult:
            if fail:
                raise RuntimeError("unreachable")
            ran.append(name)
            return PhaseResult(changed=True)

        return Phase(name, lambda context: {"x": 1}, run)

    context = make_context(state_home, MemoryProvider())
    context.state.ensure()
    with pytest.raises(RuntimeError):
        run_phases(context, [phase("a"), phase("b", fail=True), phase("c")])
    assert ran == ["a"]
    run_phases(context, [phase("a"), phase("b"), phase("c")])
    assert ran == ["a", "b", "c"]


def test_a_bundle_given_once_is_remembered_and_a_vanished_one_is_named(state_home: Path, tmp_path: Path) -> None:
    spec = parse_spec(SPEC)
    state = ClusterState("demo")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    with pytest.raises(UserInputError) as no_bundle:
        pipeline.cluster_context(spec, state, Progress(), bundle, provider=MemoryProvider())  # type: ignore[arg-type]
    assert str(no_bundle.value) == (
        f"{bundle}: not an air-gap bundle (no manifest.json); build one with `oscar-deploy bundle build`"
    )
    manifest = {"format": MANIFEST_FORMAT, "k3s_version": "v1.33.3+k3s1", "arches": ["amd64"], "files": {}}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    first = pipeline.cluster_context(spec, state, Progress(), bundle, provider=MemoryProvider())  # type: ignore[arg-type]
    state.ensure().desired.set_bundle(str(bundle))  # what converge records when `up --bundle` starts
    later = pipeline.cluster_context(spec, state, Progress(), provider=MemoryProvider())  # type: ignore[arg-type]
    assert later.bundle == bundle
    looking = pipeline.cluster_context(spec, state, Progress(), node_phases=False, provider=MemoryProvider())  # type: ignore[arg-type]
    assert looking.bundle is None, "status, ssh and down never need the bundle"
    shutil.rmtree(bundle)
    with pytest.raises(UserInputError, match=r"bundle .*/bundle: remembered from an earlier `up --bundle` but gone; "):
        pipeline.cluster_context(spec, state, Progress(), provider=MemoryProvider())  # type: ignore[arg-type]
    assert first.bundle == bundle
