"""The CLI frame through typer's runner: init, validate, spec schema, versions, exit codes, errors, laziness."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from oscar_deploy import __version__
from oscar_deploy.spec.catalogue import load_catalogue


def test_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"oscar-deploy {__version__}"


def test_init_writes_a_valid_commented_spec_and_its_schema(cli, monkeypatch) -> None:
    monkeypatch.delenv("OS_CLOUD", raising=False)
    result = cli("init", "--target", "openstack", "--name", "lab")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "wrote cluster.yaml (target openstack, cluster lab) and its schema cluster.schema.json; edit it, then run "
        "`oscar-deploy validate`\n"
    )
    spec_text = (cli.cwd / "cluster.yaml").read_text()
    assert yaml.safe_load(spec_text)["openstack"]["cloud"] == "openstack"
    assert json.loads((cli.cwd / "cluster.schema.json").read_text())["title"] == "oscar-deploy cluster spec"
    validated = cli("validate")
    assert validated.exit_code == 0
    assert validated.stdout.strip() == (
        "cluster.yaml: valid (cluster lab, target openstack, 1 server(s), workers 1 initial, 0..3)"
    )


def test_init_takes_the_clouds_settings_from_the_shell_as_up_cloud_does(cli, monkeypatch) -> None:
    monkeypatch.setenv("OS_CLOUD", "mycloud")
    monkeypatch.setenv("AWS_PROFILE", "research")
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    assert cli("init", "-t", "openstack", "-f", "os.yaml").exit_code == 0
    assert yaml.safe_load((cli.cwd / "os.yaml").read_text())["openstack"]["cloud"] == "mycloud"
    result = cli("init", "-t", "aws", "-f", "aws.yaml", "--force")
    assert result.exit_code == 0, result.output
    aws = yaml.safe_load((cli.cwd / "aws.yaml").read_text())["aws"]
    assert (aws["profile"], aws["region"]) == ("research", "us-east-2")
    assert result.stdout.endswith("edit it, then run `oscar-deploy validate -f aws.yaml`\n")


def test_init_refuses_to_overwrite(cli) -> None:
    assert cli("init").exit_code == 0
    (cli.cwd / "cluster.yaml").write_text("name: mine\n")
    result = cli("init")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: cluster.yaml: already exists; edit it, pass --force to overwrite, or choose -f FILE\n"
    )
    assert (cli.cwd / "cluster.yaml").read_text() == "name: mine\n"
    assert cli("init", "--force").exit_code == 0
    assert "name: oscar" in (cli.cwd / "cluster.yaml").read_text()


def test_init_rejects_bad_input(cli) -> None:
    bad_target = cli("init", "--target", "gcp")
    assert (bad_target.exit_code, bad_target.stderr) == (
        2,
        "error: --target gcp: unknown target; use one of local, openstack, aws, static\n",
    )
    bad_name = cli("init", "--name", "My Lab")
    assert bad_name.exit_code == 2
    assert bad_name.stderr == (
        "error: --name 'My Lab': use 1-32 lowercase letters, digits and '-', starting with a letter and not "
        "ending with '-'\n"
    )
    assert not (cli.cwd / "cluster.yaml").exists()


def test_validate_reports_each_problem_on_one_line_without_traceback(cli) -> None:
    (cli.cwd / "c.yaml").write_text("workers:\n  min: 3\n  max: 2\n  maxx: 1\n")
    result = cli("validate", "-f", "c.yaml")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: c.yaml:3: workers.max: must be >= workers.min (2 < 3)",
        "error: c.yaml:4: workers.maxx: unknown key; did you mean 'max'?",
    ]
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(cli) -> None:
    (cli.cwd / "c.yaml").write_text("name: 1Bad\n")
    try:
        cli("--debug", "validate", "-f", "c.yaml")
    except Exception as exc:  # the runner re-raises what the app raised
        assert type(exc).__name__ == "SpecError"
    else:
        raise AssertionError("--debug should let the exception through")


def test_usage_error_exit_code_is_two(cli) -> None:
    result = cli("validate", "--no-such-flag")
    assert result.exit_code == 2


def test_spec_schema_prints_json_schema(cli) -> None:
    result = cli("spec", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "workers" in schema["properties"]


def test_versions_table_and_json(cli) -> None:
    catalogue = load_catalogue()
    as_json = cli("versions", "--json")
    assert as_json.exit_code == 0
    data = json.loads(as_json.stdout)
    assert data["k3s"]["version"] == catalogue.version("k3s")
    assert data["oscar"]["image"] == catalogue["oscar"].image_reference
    table = cli("versions")
    assert table.exit_code == 0
    assert catalogue.version("k3s") in table.stdout and "knative_serving" in table.stdout


def test_versions_applies_and_checks_spec_overrides(cli) -> None:
    (cli.cwd / "c.yaml").write_text("versions:\n  k3s: v1.34.1+k3s1\n")
    data = json.loads(cli("versions", "-f", "c.yaml", "--json").stdout)
    assert data["k3s"] == {**data["k3s"], "version": "v1.34.1+k3s1", "overridden": True}
    (cli.cwd / "bad.yaml").write_text("versions:\n  k3s: v1.29.0+k3s1\n")
    result = cli("versions", "-f", "bad.yaml")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: bad.yaml:2: versions.k3s: Kubernetes 1.29 (v1.29.0+k3s1) is older")


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    """`--help` must not pay for pydantic, Ansible, Pulumi, SDKs: they load inside the commands."""
    heavy = [
        "pydantic",
        "yaml",
        "jinja2",
        "ansible",
        "ansible_runner",
        "pulumi",
        "boto3",
        "openstack",
        "kubernetes",
        "httpx",
        "cryptography",
    ]
    code = (
        "import sys, contextlib, io\n"
        "sys.argv = ['oscar-deploy', '--help']\n"
        "from oscar_deploy.cli.app import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main()\n    except SystemExit:\n        pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_lazy_command_loads_and_its_summary_is_its_help() -> None:
    """The root's help lists COMMANDS without importing them; each summary must be what the command says."""
    from oscar_deploy.cli.app import COMMANDS, click_command

    for entry in COMMANDS:
        command = click_command(entry)
        first_line = (command.help or "").strip().splitlines()[0]
        assert first_line == entry.summary, entry.name


def test_which_cluster_names_the_options_of_the_command(cli) -> None:
    for command in (["status"], ["credentials"], ["kubeconfig"], ["autoscaler", "status"]):
        result = cli(*command)
        assert (result.exit_code, result.stderr) == (
            2,
            "error: which cluster? pass --cluster NAME (clusters: none yet), or -f SPEC with the cluster's spec file\n",
        ), command
    listed = cli("service", "list")
    assert listed.stderr == (
        "error: which cluster? pass --cluster NAME (clusters: none yet), or --endpoint URL for one oscar-deploy did "
        "not create\n"
    )


def test_a_static_spec_without_its_inventory_says_which_key_to_set(cli) -> None:
    (cli.cwd / "cluster.yaml").write_text("name: boards\ntarget: static\n")
    result = cli("plan")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {cli.cwd / 'inventory.yml'}: no such inventory; set static.inventory in the cluster spec to your "
        "inventory\n"
    )


def test_help_paragraphs_are_wrapped_by_the_terminal_and_completion_is_the_roots(cli, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    render = cli("render", "--help").stdout
    assert "with --with-secrets, secrets.yaml (mode 0600) holding the cluster's generated credentials" in render, (
        "a docstring paragraph is one line, wrapped only at the terminal's width"
    )
    assert "--install-completion" not in cli("init", "--help").stdout
    assert "--install-completion" not in cli("service", "apply", "--help").stdout
    assert "--install-completion" in cli("--help").stdout


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """`oscar-deploy versions | head -0`: no error line about a broken pipe, exit code 1 (as rich's own)."""
    for args in (["versions"], ["up", "--help"]):
        process = subprocess.Popen(
            [sys.executable, "-m", "oscar_deploy", *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader is gone before the first line is written
        stderr = process.stderr.read()
        assert (process.wait(timeout=60), stderr) == (1, b""), args
