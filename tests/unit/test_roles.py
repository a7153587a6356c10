"""The roles and playbooks without nodes: documented variables, syntax, and the `validate` role's checks run
for real (the local connection; `validate` only reads and asserts)."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from oscar_deploy.support.layers import layer_dir
from tests.doubles.bundle import build_test_bundle

PLAYBOOKS = layer_dir("playbooks")
ROLES = sorted(path.name for path in (PLAYBOOKS / "roles").iterdir() if path.is_dir())
ANSIBLE_BIN = Path(sys.executable).parent
VERSION = "v1.33.3+k3s1"
LOCAL_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
OTHER_ARCH = "arm64" if LOCAL_ARCH != "arm64" else "amd64"


def test_the_roles_issue_4_asks_for_exist() -> None:
    assert {"validate", "prereq", "raspberrypi", "airgap", "k3s_server", "k3s_agent"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_role_variables_are_prefixed_commented_and_specified(role: str) -> None:
    folder = PLAYBOOKS / "roles" / role
    specs = yaml.safe_load((folder / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    specified = set(specs["main"].get("options", {}))
    defaults_file = folder / "defaults" / "main.yml"
    if not defaults_file.exists():
        return
    lines = defaults_file.read_text().splitlines()
    defaults = yaml.safe_load(defaults_file.read_text()) or {}
    for name in defaults:
        assert name.startswith(f"{role}_"), f"{role}: {name} lacks the role prefix"
        assert name in specified, f"{role}: {name} missing from meta/argument_specs.yml"
        index = next(number for number, line in enumerate(lines) if line.startswith(f"{name}:"))
        assert lines[index - 1].startswith("#"), f"{role}: {name} has no comment above it"


@pytest.mark.parametrize("playbook", sorted(path.name for path in PLAYBOOKS.glob("*.yml")))
def test_playbooks_pass_the_syntax_check(playbook: str) -> None:
    inventory = layer_dir("inventories") / "raspberrypi.yml"
    result = subprocess.run(
        [str(ANSIBLE_BIN / "ansible-playbook"), "--syntax-check", "-i", str(inventory), playbook],
        cwd=PLAYBOOKS,
        env={**os.environ, "ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def run_validate(tmp_path: Path, hosts: dict[str, Any], variables: dict[str, Any]) -> tuple[int, str]:
    """Run the validate role against `hosts` ({name: {group, vars}}) reached through the local connection."""
    inventory: dict[str, Any] = {"server": {"hosts": {}}, "agent": {"hosts": {}}}
    for name, host in hosts.items():
        inventory[host["group"]]["hosts"][name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "node_address": host.get("address", f"10.0.0.{len(inventory['server']['hosts']) + 10}"),
            **host.get("vars", {}),
        }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "extra.json").write_text(json.dumps(variables))
    return run_local_playbook(tmp_path, Path(__file__).parent / "playbooks" / "validate-only.yml")


def run_local_playbook(tmp_path: Path, playbook: Path, *options: str) -> tuple[int, str]:
    """ansible-playbook with the bundled roles, `tmp_path`'s inventory.yml and extra.json: (exit code, output)."""
    result = subprocess.run(
        [
            str(ANSIBLE_BIN / "ansible-playbook"),
            "-i",
            str(tmp_path / "inventory.yml"),
            "-e",
            f"@{tmp_path / 'extra.json'}",
            *options,
            str(playbook),
        ],
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(PLAYBOOKS / "roles"),
            "ANSIBLE_NOCOLOR": "1",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def controller_facts() -> dict[str, Any]:
    """This machine's OS family and service manager, as Ansible sees them (the hosts under test are this machine)."""
    result = subprocess.run(
        [
            str(ANSIBLE_BIN / "ansible"),
            "localhost",
            "-m",
            "setup",
            "-a",
            "gather_subset=!all,!min,distribution,service_mgr",
        ],
        env={**os.environ, "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_NOCOLOR": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    facts: dict[str, Any] = json.loads(result.stdout.split("=>", 1)[1])["ansible_facts"]
    return facts


@pytest.fixture
def good(tmp_path: Path, controller_facts: dict[str, Any]) -> dict[str, Any]:
    """Variables of a valid cluster, accepting this machine's OS family and service manager whatever they are."""
    token_file = tmp_path / "token"
    token_file.write_text("a" * 32)
    token_file.chmod(0o600)
    # k3s_version stays the role's default (VERSION): an extra variable would hide a host's own k3s_version.
    return {
        "k3s_token_file": str(token_file),
        "validate_supported_os_families": [controller_facts["ansible_os_family"]],
        "validate_supported_service_managers": [controller_facts["ansible_service_mgr"]],
    }


TWO_NODES = {"s1": {"group": "server", "address": "10.0.0.1"}, "a1": {"group": "agent", "address": "10.0.0.2"}}


def test_validate_passes_a_valid_cluster(tmp_path: Path, good: dict[str, Any]) -> None:
    bundle = tmp_path / "bundle"
    build_test_bundle(bundle, VERSION, [LOCAL_ARCH])
    rc, output = run_validate(tmp_path, TWO_NODES, {**good, "k3s_airgap_dir": str(bundle)})
    assert rc == 0, output
    assert re.search(r"s1\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", output), output


FAILURES = {
    "even number of servers": (
        {**TWO_NODES, "s2": {"group": "server", "address": "10.0.0.3"}},
        {},
        "2 servers in 'server'; embedded etcd needs an odd number",
    ),
    "upstream OSCAR's version string": (
        TWO_NODES,
        {"k3s_version": "1.23.5"},
        "k3s_version '1.23.5' is not a k3s release",
    ),
    "agents on another version": (
        {**TWO_NODES, "a1": {"group": "agent", "address": "10.0.0.2", "vars": {"k3s_version": "v1.32.1+k3s1"}}},
        {},
        "k3s_version differs between hosts",
    ),
    "sample token": (TWO_NODES, {"k3s_token_file": "", "token": "changeme!"}, "shorter than 16 characters"),
    "missing token file": (TWO_NODES, {"k3s_token_file": "/nonexistent/token"}, "no such file on the controller"),
    "duplicate node addresses": (
        {"s1": {"group": "server", "address": "10.0.0.1"}, "a1": {"group": "agent", "address": "10.0.0.1"}},
        {},
        "repeat; set node_name / node_address per host",
    ),
    "declared architecture": (
        {
            **TWO_NODES,
            "a1": {
                "group": "agent",
                "address": "10.0.0.2",
                "vars": {"arch": OTHER_ARCH},
            },
        },
        {},
        "the inventory says arch=",
    ),
    "unsupported operating system": (TWO_NODES, {"validate_supported_os_families": ["Plan9"]}, "is not supported"),
    # k3s-io/k3s-ansible inventory settings: honoured, else refused by name.
    "k3s-ansible installer environment": (
        TWO_NODES,
        {"extra_install_envs": {"INSTALL_K3S_SKIP_SELINUX_RPM": "true"}},
        "inventory: extra_install_envs: the roles never run upstream install.sh; put k3s settings in server_config",
    ),
    "k3s-ansible kubeconfig for the SSH user": (
        TWO_NODES,
        {"user_kubectl": True},
        "inventory: user_kubectl: a kubeconfig for the SSH user on the servers is not made",
    ),
    "k3s-ansible data folder": (
        TWO_NODES,
        {"k3s_server_location": "/data/k3s"},
        "inventory: k3s_server_location /data/k3s: another k3s data folder is not supported",
    ),
    "k3s-ansible unit environment": (
        TWO_NODES,
        {"extra_service_envs": ["HTTP_PROXY=http://proxy:3128"]},
        "inventory: extra_service_envs: environment variables for the k3s units are not supported",
    ),
    "api port out of range": (
        TWO_NODES,
        {"api_port": 70000},
        "api_port 70000: not a TCP port; use a number from 1 to 65535",
    ),
    "registries not a mapping": (
        TWO_NODES,
        {"registries_config_yaml": "- docker.io\n- quay.io\n"},
        "registries_config_yaml: not a YAML mapping (mirrors:, configs:)",
    ),
    "missing extra manifest": (
        TWO_NODES,
        {"extra_manifests": ["/nonexistent/extra.yaml"]},
        "extra_manifests: /nonexistent/extra.yaml: no such file on the controller",
    ),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_validate_stops_with_one_clear_message(tmp_path: Path, good: dict[str, Any], case: str) -> None:
    hosts, variables, message = FAILURES[case]
    rc, output = run_validate(tmp_path, hosts, {**good, **variables})
    assert rc != 0, output
    assert message in output, output
    assert "changed=1" not in output


def test_validate_accepts_the_k3s_ansible_sample_settings_it_honours(tmp_path: Path, good: dict[str, Any]) -> None:
    """k3s-io/k3s-ansible's inventory-sample.yml settings that are honoured, or that ask for what the roles do
    anyway, pass the checks."""
    manifest = tmp_path / "extra.yaml"
    manifest.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: extra\n")
    settings = {
        "api_port": 7443,
        "cluster_context": "lab",
        "manage_firewall": False,
        "extra_manifests": [str(manifest)],
        "registries_config_yaml": "mirrors:\n  docker.io:\n    endpoint: [https://mirror.example]\n",
        "k3s_server_location": "/var/lib/rancher/k3s",
        "systemd_dir": "/etc/systemd/system",
        "user_kubectl": False,
        "k3s_wait_ready": True,
    }
    rc, output = run_validate(tmp_path, TWO_NODES, {**good, **settings})
    assert rc == 0, output


def test_validate_refuses_a_bundle_without_the_nodes_architecture(tmp_path: Path, good: dict[str, Any]) -> None:
    bundle = tmp_path / "bundle"
    build_test_bundle(bundle, VERSION, [OTHER_ARCH])
    rc, output = run_validate(tmp_path, TWO_NODES, {**good, "k3s_airgap_dir": str(bundle)})
    assert rc != 0, output
    assert f"the bundle holds k3s {VERSION} for {OTHER_ARCH}, the nodes need {VERSION} for {LOCAL_ARCH}" in output, (
        output
    )


def test_role_default_version_is_the_catalogue_pin() -> None:
    """The pin lives in the catalogue; the k3s role's default (for plain ansible-playbook runs) must equal it, and
    no other file of the roles names a k3s version."""
    from oscar_deploy.spec.catalogue import load_catalogue

    defaults = yaml.safe_load((PLAYBOOKS / "roles" / "k3s" / "defaults" / "main.yml").read_text())
    assert defaults["k3s_version"] == load_catalogue().version("k3s")
    release = re.compile(r"v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+")

    def names_a_release(path: Path) -> bool:
        # Comments and messages may show an example; a value may not.
        lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
        return any(release.search(line.replace("e.g. v1.33.3+k3s1", "")) for line in lines)

    files = [path for path in sorted(PLAYBOOKS.rglob("*")) if path.is_file() and path.suffix in (".yml", ".j2")]
    assert [str(path.relative_to(PLAYBOOKS)) for path in files if names_a_release(path)] == [
        "roles/k3s/defaults/main.yml"
    ]


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_defaults_are_the_role_defaults(role: str) -> None:
    """A default stated in meta/argument_specs.yml (what ansible-doc shows) is the one defaults/main.yml sets."""
    folder = PLAYBOOKS / "roles" / role
    specs = yaml.safe_load((folder / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    defaults_file = folder / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) or {} if defaults_file.exists() else {}
    for entry in specs.values():
        for name, option in (entry.get("options") or {}).items():
            assert option.get("description") and option.get("type"), f"{role}: {name} lacks a description or type"
            if "default" in option and name in defaults:
                assert option["default"] == defaults[name], f"{role}: {name}"
    # A default that is no template is stated too; the version pin is named in one file only (test above).
    for name, value in defaults.items():
        if "{{" not in json.dumps(value) and name != "k3s_version":
            assert "default" in specs["main"]["options"][name], f"{role}: {name}: default {value!r} not in the spec"


def run_role_tasks(
    tmp_path: Path, role: str, tasks_from: str, variables: dict[str, Any], *options: str
) -> tuple[int, str]:
    """Run one entry point of a role on this machine (the local connection, no become), with `variables` as
    extra variables. Only entry points that touch nothing outside the paths the variables name are run so."""
    inventory = {
        "server": {
            "hosts": {
                "s1": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                    "node_address": "10.0.0.1",
                }
            }
        },
        "agent": {"hosts": {}},
    }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "extra.json").write_text(json.dumps(variables))
    play = [
        {
            "name": f"Run {role} {tasks_from}",
            "hosts": "server",
            "gather_facts": False,
            "become": False,
            "tasks": [
                {
                    "name": f"Run {role} {tasks_from}",
                    "ansible.builtin.include_role": {"name": role, "tasks_from": tasks_from, "public": True},
                },
                {
                    "name": "Show the role's settings",
                    "ansible.builtin.debug": {"msg": "{{ role_test_show | default('') }}"},
                },
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    return run_local_playbook(tmp_path, tmp_path / "play.yml", *options)


def recap(output: str, host: str = "s1") -> dict[str, int]:
    found = re.search(rf"^{host}\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M)
    assert found, output
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, found.groups()), strict=True))


def test_registry_credentials_stay_out_of_the_output(tmp_path: Path) -> None:
    """registries.yaml holds registry credentials (configs: auth, https://docs.k3s.io/installation/private-registry):
    they reach the node's 0600 file and never the output, not even the diff of `--check --diff` (what
    `oscar-deploy` runs for a check, into its run log) or a verbose run; a second run changes nothing."""
    password = "Sup3r-S3cret-registry-passw0rd"
    registries = {"configs": {"registry.lab:5000": {"auth": {"username": "lab", "password": password}}}}
    path = tmp_path / "etc" / "registries.yaml"
    variables = {"airgap_registries_file": str(path), "airgap_registries": registries}

    rc, output = run_role_tasks(tmp_path, "airgap", "registries", variables, "--check", "--diff")
    assert rc == 0, output
    assert recap(output)["changed"] > 0 and not path.parent.exists()
    assert password not in output

    rc, output = run_role_tasks(tmp_path, "airgap", "registries", variables, "--diff", "-v")
    assert rc == 0, output
    assert password not in output
    assert yaml.safe_load(path.read_text()) == registries
    assert path.stat().st_mode & 0o777 == 0o600

    rc, output = run_role_tasks(tmp_path, "airgap", "registries", variables, "--diff")
    assert rc == 0, output
    assert recap(output)["changed"] == 0

    # Emptied: the file this role wrote is read (verbose: its content would be shown) and removed.
    rc, output = run_role_tasks(tmp_path, "airgap", "registries", {**variables, "airgap_registries": {}}, "-v")
    assert rc == 0, output
    assert password not in output
    assert not path.exists()


@pytest.mark.parametrize(("release", "legacy"), [("10", True), ("11", False), ("12", False)])
def test_raspberrypi_switches_to_legacy_iptables_on_buster_only(tmp_path: Path, release: str, legacy: bool) -> None:
    """The playbooks gather no facts: the Buster default comes from what the k3s role's probe read (k3s_host)."""
    host = {
        "machine": "aarch64",
        "nodename": "pi",
        "os_id": "raspbian",
        "os_like": "debian",
        "os_version": release,
        "os_major_version": release,
        "os_family": "Debian",
        "service_mgr": "systemd",
        "container": "",
        "python": sys.executable,
    }
    variables = {"k3s_host": host, "role_test_show": "legacy={{ raspberrypi_iptables_legacy | bool }}"}
    rc, output = run_role_tasks(tmp_path, "raspberrypi", "defaults", variables)
    assert rc == 0, output
    assert f'"msg": "legacy={legacy}"' in output, output


def test_the_firewall_record_keeps_the_rules_of_earlier_runs(tmp_path: Path) -> None:
    """reset.yml deletes the rules prereq recorded: a run with another api_port must not make it forget the port
    an earlier run opened. (A tool that is neither ufw nor firewalld: only the record is written, nothing opened.)"""
    state = tmp_path / "state"
    record = state / "prereq-firewall.json"
    variables = {"k3s_state_dir": str(state), "prereq_firewall_tool": "test-firewall"}

    rc, output = run_role_tasks(tmp_path, "prereq", "firewall", variables)
    assert rc == 0, output
    first = json.loads(record.read_text())
    assert first["tool"] == "test-firewall" and "6443/tcp" in first["ports"]
    assert record.read_text().endswith("}\n")

    rc, output = run_role_tasks(tmp_path, "prereq", "firewall", {**variables, "api_port": 7443})
    assert rc == 0, output
    second = json.loads(record.read_text())
    assert {"6443/tcp", "7443/tcp", "10250/tcp", "8472/udp", "2379-2380/tcp"} == set(second["ports"])
    assert second["cidrs"] == first["cidrs"]

    rc, output = run_role_tasks(tmp_path, "prereq", "firewall", {**variables, "api_port": 7443})
    assert rc == 0, output
    assert recap(output)["changed"] == 0


def names_set_in(folder: Path) -> set[str]:
    """What a role defines itself: its defaults and vars, and what its tasks register, set_fact, loop over, bind
    in `vars:` or hand back with set_stats."""
    names: set[str] = set()
    for settings in ("defaults/main.yml", "vars/main.yml"):
        if (folder / settings).exists():
            names |= set(yaml.safe_load((folder / settings).read_text()) or {})

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("vars", "ansible.builtin.set_fact"):
                if isinstance(node.get(key), dict):
                    names.update(node[key])
            for key in ("register", "loop_var"):
                if isinstance(node.get(key), str):
                    names.add(node[key])
            if isinstance(node.get("ansible.builtin.set_stats"), dict):
                names.update(node["ansible.builtin.set_stats"].get("data") or {})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for file in sorted((folder / "tasks").glob("*.yml")) + sorted((folder / "handlers").glob("*.yml")):
        walk(yaml.safe_load(file.read_text()))
    return names


@pytest.mark.parametrize("role", ROLES)
def test_role_inputs_are_declared(role: str) -> None:
    """Every variable of the role's own prefix (or the shared k3s_ prefix) that its tasks, handlers, templates
    and vars read is declared in an entry point of its argument spec, or defined by it or by the k3s role."""
    folder = PLAYBOOKS / "roles" / role
    # k3s-io/k3s-ansible settings that role validate refuses by name: theirs, not inputs of these roles.
    refused = {"k3s_server_location", "k3s_server_wait_etcd_voters"}
    known = names_set_in(folder) | names_set_in(PLAYBOOKS / "roles" / "k3s") | set(ROLES) | refused
    for spec_role in {role, "k3s"}:
        specs = yaml.safe_load((PLAYBOOKS / "roles" / spec_role / "meta" / "argument_specs.yml").read_text())
        for entry in specs["argument_specs"].values():
            known |= set(entry.get("options") or {})
    pattern = re.compile(rf"\b(?:{role}|k3s)_[a-z0-9_]+\b")
    read: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".yml", ".j2") and path.parent.name in ("tasks", "handlers", "templates", "vars"):
            for line in path.read_text().splitlines():
                if not line.lstrip().startswith("#"):
                    for name in pattern.findall(line):
                        read.setdefault(name, str(path.relative_to(folder)))
    assert {name: where for name, where in read.items() if name not in known} == {}


def test_check_and_record_converge_on_this_machine(tmp_path: Path, good: dict[str, Any]) -> None:
    """check.yml then record.yml for real on this machine (read-only probe, the records in a scratch folder):
    the entry points' argument specs (plan, record) hold for the playbooks' own variables, --check writes no
    record, a run records the role, and the next run finds it converged and changes nothing."""
    inventory = {
        "server": {
            "hosts": {
                "s1": {
                    "ansible_connection": "local",
                    "ansible_become": False,
                    "ansible_python_interpreter": sys.executable,
                    "node_address": "10.0.0.1",
                }
            }
        },
        "agent": {"hosts": {}},
    }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    state = tmp_path / "state"
    (tmp_path / "extra.json").write_text(json.dumps({**good, "k3s_state_dir": str(state)}))
    play = [
        {"name": "Check", "ansible.builtin.import_playbook": str(PLAYBOOKS / "check.yml")},
        {
            "name": "Record",
            "ansible.builtin.import_playbook": str(PLAYBOOKS / "record.yml"),
            "vars": {"k3s_record_roles": ["prereq"]},
        },
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))

    def run(*options: str) -> str:
        result = subprocess.run(
            [
                str(ANSIBLE_BIN / "ansible-playbook"),
                "-i",
                str(tmp_path / "inventory.yml"),
                "-e",
                f"@{tmp_path / 'extra.json'}",
                *options,
                str(tmp_path / "play.yml"),
            ],
            env={**os.environ, "ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    checked = run("--check")
    assert "arg spec 'plan'" in checked and recap(checked)["changed"] == 0
    assert not state.exists()
    first = run()
    assert "arg spec 'record'" in first and recap(first)["changed"] == 1
    assert (state / "converged" / "prereq").read_text().startswith("inputs ")
    second = run()
    assert "TASK [k3s : Record what the roles converged the node to]" not in second
    assert recap(second)["changed"] == 0


def _file_tasks(tasks: Any) -> list[dict[str, Any]]:
    """Every task (in blocks too) that writes a file with the template or copy module."""
    found: list[dict[str, Any]] = []
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        for key in ("block", "rescue", "always"):
            found += _file_tasks(task.get(key))
        if any(isinstance(task.get(module), dict) for module in ("ansible.builtin.template", "ansible.builtin.copy")):
            found.append(task)
    return found


def test_a_private_file_is_written_without_showing_its_content() -> None:
    """A file the roles make private (0600) holds a secret or may hold one; `--check --diff` (oscar-deploy's
    check, into its run log) must not print it: each such task is no_log or diff: false."""
    private: dict[str, bool] = {}
    for path in sorted((PLAYBOOKS / "roles").glob("*/tasks/*.yml")):
        for task in _file_tasks(yaml.safe_load(path.read_text())):
            arguments = task.get("ansible.builtin.template") or task.get("ansible.builtin.copy")
            if str(arguments.get("mode")) == "0600":
                hidden = task.get("no_log") is True or task.get("diff") is False
                private[f"{path.parent.parent.name}: {task['name']}"] = hidden
    assert private == {
        "airgap: Write k3s' registry mirror settings": True,
        "k3s_agent: Write the cluster token": True,
        "k3s_agent: Write the k3s agent configuration": True,
        "k3s_server: Write the kubeconfig on the controller": True,
        "k3s_server: Write the cluster token": True,
        "k3s_server: Write the k3s server configuration": True,
        "k3s_server: Copy the extra manifests to the auto-deploy folder": True,
    }


@pytest.mark.parametrize(
    ("role", "variable"),
    [("airgap", "airgap_registries_file"), ("prereq", "prereq_modules_file"), ("prereq", "prereq_sysctl_file")],
)
def test_reset_removes_the_files_the_roles_write_wherever_they_were_told_to(role: str, variable: str) -> None:
    """A file a role writes may be moved by its variable; `reset` follows the variable, with the role's own
    default where it is unset (the reset role runs without the other roles' defaults)."""
    written = yaml.safe_load((PLAYBOOKS / "roles" / role / "defaults" / "main.yml").read_text())[variable]
    paths = yaml.safe_load((PLAYBOOKS / "roles" / "reset" / "defaults" / "main.yml").read_text())["reset_paths"]
    followed = [path for path in paths if path.startswith(f"{{{{ {variable} | default(")]
    assert len(followed) == 1, paths
    assert followed[0] == f"{{{{ {variable} | default('{written}') }}}}"
