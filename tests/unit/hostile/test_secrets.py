"""Class 7: secrets are data, never text: a password from the environment holding `!`, `*` or ` #` arrives
intact and never shows in an error; credentials in URLs are refused and masked; long values are cut short."""

from __future__ import annotations

import pytest
import yaml

from tests.unit.hostile.contract import PASSWORD, assert_refused
from tests.unit.hostile.fdl import service_fdl

SECRET_ENV = '      environment:\n        secrets:\n          PW: {{ env("SERVICE_PASSWORD") }}\n'


@pytest.mark.parametrize(
    "password", [PASSWORD, "*alias", "!tag value", "a: b", "x #comment", "'quoted'", '"double', "line\nbreak", "- item"]
)
def test_an_environment_password_round_trips_intact(hostile, monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    monkeypatch.setenv("SERVICE_PASSWORD", password)
    hostile.write("run.sh", "echo hi\n")
    hostile.write("svc.yaml", service_fdl(extra_service=SECRET_ENV))
    result = hostile.run("service", "render", "svc.yaml", "--json", "--show-secrets")
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(result.stdout)[0]["environment"]["secrets"]["PW"] == password


def test_a_password_never_shows_in_a_yaml_error(hostile) -> None:
    hostile.write("run.sh", "echo hi\n")
    broken = service_fdl(extra_service=SECRET_ENV) + "  - [unclosed\n"
    hostile.write("svc.yaml", broken)
    assert_refused(hostile.run("service", "validate", "svc.yaml"), "svc.yaml:")


def test_a_password_in_the_wrong_key_is_cut_short(hostile, monkeypatch: pytest.MonkeyPatch) -> None:
    """A validator shows at most 40 characters of a value; the environment's values are blanked out as well."""
    monkeypatch.setenv("SERVICE_PASSWORD", "Not-a-DNS-name-" + "S3CRET" * 20)
    hostile.write("run.sh", "echo hi\n")
    hostile.write("svc.yaml", service_fdl(name='{{ env("SERVICE_PASSWORD") }}'))
    assert_refused(hostile.run("service", "validate", "svc.yaml"), "functions.oscar.0.demo.name: ")


def test_a_password_in_a_template_error_is_blanked(hostile) -> None:
    hostile.write("run.sh", "echo hi\n")
    hostile.write(
        "svc.yaml",
        service_fdl() + '# {{ env("SERVICE_PASSWORD") | int(1/0) if false else 1 + env("SERVICE_PASSWORD") }}\n',
    )
    assert_refused(hostile.run("service", "validate", "svc.yaml"), "svc.yaml:7: template error: ")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("bundle", "build", "b", "--download-url", "http://u:S3CRET@127.0.0.1:9/k3s"),
            "--download-url 'http://****@127.0.0.1:9/k3s': carries credentials",
        ),
        (("service", "list", "--endpoint", "https://oscar:S3CRET@oscar.example.org"), "--endpoint 'https://****@"),
    ],
    ids=["bundle download url", "endpoint"],
)
def test_credentials_in_urls_are_refused_and_masked(hostile, args: tuple[str, ...], expected: str) -> None:
    assert_refused(hostile.run(*args), expected)
    assert not (hostile.work / "b").exists()


def test_an_fdl_cluster_endpoint_with_credentials(hostile) -> None:
    hostile.write("run.sh", "echo hi\n")
    extra = "clusters:\n  far: {endpoint: 'https://user:S3CRET@far.example.org', auth_user: u, auth_password: p}\n"
    hostile.write("svc.yaml", service_fdl(extra_top=extra))
    assert_refused(
        hostile.run("service", "render", "svc.yaml"),
        "clusters.far.endpoint: 'https://****@far.example.org' carries credentials",
        "put them in auth_user and auth_password",
    )


def test_a_minio_endpoint_with_credentials_is_masked_in_render(hostile) -> None:
    hostile.write("run.sh", "echo hi\n")
    extra = (
        "storage_providers:\n  minio:\n"
        "    other: {endpoint: 'https://ak:S3CRET@minio.example.org', access_key: a, secret_key: b}\n"
    )
    hostile.write("svc.yaml", service_fdl(extra_top=extra))
    result = hostile.run("service", "render", "svc.yaml")
    assert result.exit_code == 0, result.stderr
    assert "https://****@minio.example.org" in result.stdout and "S3CRET" not in result.stdout


def test_a_one_megabyte_name_is_shown_cut_short(hostile) -> None:
    assert_refused(hostile.run("init", "--name", "A" * 1_000_000), "--name 'AAAA")


def test_a_value_given_to_set_is_never_echoed(hostile) -> None:
    hostile.write("run.sh", "echo hi\n")
    hostile.write("svc.yaml", service_fdl())
    line = assert_refused(hostile.run("service", "validate", "svc.yaml", "--set", "bad key=S3CRET"))
    assert line.startswith("--set bad key=...: write NAME=VALUE"), line


@pytest.mark.parametrize("name", ["OSCAR_PASSWORD", "OSCAR_TOKEN", "OSCAR_MINIO_SECRET_KEY"])
def test_a_template_cannot_read_the_commands_own_login(hostile, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, PASSWORD)
    hostile.write("run.sh", "echo hi\n")
    hostile.write("svc.yaml", service_fdl(extra_service=SECRET_ENV.replace("SERVICE_PASSWORD", name)))
    line = assert_refused(hostile.run("service", "render", "svc.yaml", "--show-secrets"), "svc.yaml:9: ")
    assert line == (
        f"svc.yaml:9: not allowed in a template: env('{name}') is oscar-deploy's own login to the cluster, not the "
        "template's; give the value in a values file (-f values.yaml) if the service really needs it"
    )


def test_env_credentials_are_masked_wherever_they_land_and_a_plain_variable_is_warned_about(hostile) -> None:
    hostile.write("run.sh", "echo hi\n")
    plain = (
        "      environment:\n        variables:\n          TOKEN: {{ env('SERVICE_PASSWORD') }}\n"
        "          MODE: {{ env('mode_key', 'IN') }}\n          LEVEL: {{ env('LEVEL', 'debug') }}\n"
        "          URL: https://api.example.org/?key={{ env('SERVICE_PASSWORD') }}\n"
        "          EMPTY: {{ env('UNSET_TOKEN', '') }}\n"
        "        secrets:\n          PW: {{ env('SERVICE_PASSWORD') }}\n"
        '      log_level: \'{{ env("LOG_LEVEL", "WARNING") }}\'\n'
    )
    hostile.write("svc.yaml", service_fdl(extra_service=plain))
    rendered = hostile.run("service", "render", "svc.yaml", "--json")
    assert rendered.exit_code == 0, rendered.stderr
    environment = yaml.safe_load(rendered.stdout)[0]["environment"]
    assert environment == {
        "variables": {
            "TOKEN": "********",
            "MODE": "********",
            "LEVEL": "debug",
            "URL": "https://api.example.org/?key=********",
            "EMPTY": "",
        },
        "secrets": {"PW": "********"},
    }
    assert PASSWORD not in rendered.stdout
    assert rendered.stderr == (
        "warning: svc.yaml: service svc: environment.variables.TOKEN holds a credential read with env(), which the "
        "service's pods show to anyone who can read them; put it under environment.secrets\n"
        "warning: svc.yaml: service svc: environment.variables.MODE holds a credential read with env(), which the "
        "service's pods show to anyone who can read them; put it under environment.secrets\n"
        "warning: svc.yaml: service svc: environment.variables.URL holds a credential read with env(), which the "
        "service's pods show to anyone who can read them; put it under environment.secrets\n"
    )
    assert yaml.safe_load(rendered.stdout)[0]["log_level"] == "WARNING", (
        "a short credential ('IN') is masked only whole"
    )
    shown = hostile.run("service", "render", "svc.yaml", "--json", "--show-secrets")
    assert yaml.safe_load(shown.stdout)[0]["environment"]["variables"]["TOKEN"] == PASSWORD
    validated = hostile.run("service", "validate", "svc.yaml")
    assert (
        validated.exit_code == 0
        and "environment.variables.TOKEN holds a credential read with env()" in validated.stderr
    )
