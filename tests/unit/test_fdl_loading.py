"""Loading an FDL file at its limits, each with the whole line it reports: placeholders left in (`<vo>`, `[topic]`,
an empty value), scripts read next to the file, what is masked when a definition is shown, and the request body
(the second half of oscar_deploy/services/fdl.py; tests/unit/test_fdl_rules.py holds the model's rules)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from oscar_deploy.services.fdl import MASK, mask_secrets, to_yaml
from oscar_deploy.services.templating import load_fdl
from tests.unit.test_fdl import MINIMAL_SERVICE, SCRIPT, _errors, _write
from tests.unit.test_fdl_rules import SERVICE, _problems

ONE_ITEM = "(YAML reads it as a one-item list): replace it with"


# --- placeholders ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        (
            "      alpine: [flag]\n",
            f"alpine: placeholder [flag] {ONE_ITEM} the image is Alpine-based (musl build of the supervisor)",
        ),
        (
            "      synchronous: {max_scale: [n]}\n",
            f"synchronous.max_scale: placeholder [n] {ONE_ITEM} most replicas (0: unlimited)",
        ),
        ("      synchronous: [settings]\n", f"synchronous: placeholder [settings] {ONE_ITEM} the real value"),
        ("      labels: [labels]\n", f"labels: placeholder [labels] {ONE_ITEM} kubernetes labels of the jobs"),
        (
            "      visibility: [public]\n",
            f"visibility: placeholder [public] {ONE_ITEM} who may invoke the service: private (the default), "
            "restricted or public",
        ),
        (
            "      expose: {api_port: }\n",
            "expose.api_port: placeholder: the value is empty; replace it with port(s) "
            "inside the container where the API listens; a single number is accepted",
        ),
    ],
    ids=["bool", "int", "model", "dict", "literal", "list"],
)
def test_a_placeholder_is_named_as_such_whatever_the_key_takes(tmp_path: Path, snippet: str, problem: str) -> None:
    assert _problems(tmp_path, MINIMAL_SERVICE + snippet) == [f"7: {SERVICE}.{problem}"]


def test_a_placeholder_for_a_string_is_named_as_such(tmp_path: Path) -> None:
    text = MINIMAL_SERVICE.replace("image: alpine:3.22.1", "image: [image]")
    assert _problems(tmp_path, text) == [f"5: {SERVICE}.image: placeholder [image] {ONE_ITEM} container image"]


# --- the loaded document -----------------------------------------------------------------------------------------


def test_masking_hides_an_environment_credential_inside_text_from_three_characters() -> None:
    """A credential of one or two characters is masked only where it is the whole value: `1` or `on` inside other
    text would blank half a script. An unset one (env("TOKEN", "")) hides nothing."""
    data = {"a": "xaby", "b": "ab", "c": "xabcy", "d": ["ab", "abc!"], "e": "", "u": "https://u:pw@h/x"}
    assert mask_secrets(data, hidden=("ab", "abc", "")) == {
        "a": "xaby",
        "b": MASK,
        "c": f"x{MASK}y",
        "d": [MASK, f"{MASK}!"],
        "e": "",
        "u": "https://****@h/x",
    }


def test_masking_takes_the_longest_credential_first() -> None:
    assert mask_secrets("key=abcdef", hidden=("abc", "abcdef")) == f"key={MASK}"


def test_a_credential_key_is_masked_only_where_it_holds_text() -> None:
    data = {"password": ["p"], "token": "t", "secrets": "plain", "environment": {"secrets": {"A": "a", "B": 2}}}
    assert mask_secrets(data) == {
        "password": ["p"],
        "token": MASK,
        "secrets": "plain",
        "environment": {"secrets": {"A": MASK, "B": MASK}},
    }


def test_a_script_is_shown_as_a_literal_block_where_it_reads_back_the_same() -> None:
    """Tabs, carriage returns and a trailing space do not survive a literal block: those are quoted."""
    data = {"s": "a\nb\n", "t": "a\tb\nc", "r": "a\r\nb", "e": "a \nb ", "k": "one"}
    text = to_yaml(data)
    assert text == 's: |\n  a\n  b\nt: "a\\tb\\nc"\nr: "a\\r\\nb"\ne: "a \\nb "\nk: one\n'
    assert yaml.safe_load(text) == data


def test_a_loaded_document_cannot_be_changed_behind_its_request_bodies(tmp_path: Path) -> None:
    document = load_fdl(_write(tmp_path, MINIMAL_SERVICE))
    with pytest.raises(dataclasses.FrozenInstanceError):
        document.services = []  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        document.services[0].body = {}  # type: ignore[misc]


def test_an_environment_credential_in_a_plain_variable_is_named_by_service_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWORD", "pw-value")
    monkeypatch.setenv("DB_HOST", "db.example.org")
    snippet = (
        "      environment:\n        variables:\n          PW: '{{ env(\"DB_PASSWORD\") }}'\n"
        "          URL: 'postgres://app:{{ env(\"DB_PASSWORD\") }}@db'\n"
        "          HOST: '{{ env(\"DB_HOST\") }}'\n        secrets: {OK: '{{ env(\"DB_PASSWORD\") }}'}\n"
    )
    document = load_fdl(_write(tmp_path, MINIMAL_SERVICE + snippet))
    assert set(document.credential_values) == {"pw-value"}  # DB_HOST is not named like a credential
    assert document.plain_credentials() == [
        "service minimal: environment.variables.PW",
        "service minimal: environment.variables.URL",
    ]


def test_empty_top_level_sections_are_not_sent(tmp_path: Path) -> None:
    body = load_fdl(_write(tmp_path, MINIMAL_SERVICE + "storage_providers: {}\nclusters: {}\n")).services[0].body
    assert ("storage_providers" in body, "clusters" in body, body["cluster_id"]) == (False, False, "oscar")


def test_a_services_own_cluster_id_wins_over_its_entry_key(tmp_path: Path) -> None:
    text = MINIMAL_SERVICE + "      cluster_id: elsewhere\n"
    assert load_fdl(_write(tmp_path, text)).services[0].body["cluster_id"] == "elsewhere"


def test_the_normalised_file_has_canonical_keys_and_no_empty_ones(tmp_path: Path) -> None:
    text = MINIMAL_SERVICE + "      environment: {Variables: {A: 1}}\n      expose: {api_port: 8080, nodePort: 30001}\n"
    assert load_fdl(_write(tmp_path, text)).normalised() == {
        "functions": {
            "oscar": [
                {
                    "oscar": {
                        "name": "minimal",
                        "image": "alpine:3.22.1",
                        "script": SCRIPT,
                        "environment": {"variables": {"A": "1"}},
                        "expose": {"api_port": [8080], "nodePort": [30001]},
                    }
                }
            ]
        }
    }


def test_a_definition_is_shown_in_its_own_key_order_unicode_as_written_and_folded_after_120_columns() -> None:
    assert to_yaml({"z": "café", "a": "a" * 117 + " b"}) == f"z: café\na: {'a' * 117} b\n"
    assert to_yaml({"a": "a" * 118 + " b"}) == f"a: {'a' * 118}\n  b\n"


def test_a_placeholder_under_a_key_without_a_description_asks_for_the_real_value(tmp_path: Path) -> None:
    """Environment variables and labels have no description to name what belongs there."""
    text = MINIMAL_SERVICE + "      environment: {variables: {A: '<a>'}}\n"
    assert _problems(tmp_path, text) == [
        f"7: {SERVICE}.environment.variables.A: placeholder '<a>': replace it with the real value",
    ]


def test_a_placeholder_under_an_unknown_key_is_reported_as_the_unknown_key(tmp_path: Path) -> None:
    """Filling in the value would only lead to the next error: the key itself is wrong. The same for one nested
    deeper, while a placeholder under a known key beside it is still named."""
    text = MINIMAL_SERVICE + "      colour: <blue>\n      shade: {tone: '[dark]'}\n      cpu: <cpu>\n"
    problems = _problems(tmp_path, text)
    assert [problem.split("; allowed keys:")[0] for problem in problems] == [
        f"7: {SERVICE}.colour: unknown key",
        f"8: {SERVICE}.shade: unknown key",
        f"9: {SERVICE}.cpu: placeholder '<cpu>': replace it with CPU limit (default 0.2)",
    ]


@pytest.mark.parametrize(
    ("snippet", "wanted"),
    [
        ("      mount: [storage]\n", "a storage path mounted in the container"),
        ("      cpu: [cpu]\n", "CPU limit (default 0.2)"),
        ("      expose: {api_port: 8080, health_path: [path]}\n", "readiness and liveness path (default /)"),
    ],
)
def test_what_a_placeholder_asks_for_reads_as_part_of_the_sentence(tmp_path: Path, snippet: str, wanted: str) -> None:
    """The field's description, its first letter in lower case unless it starts an acronym."""
    (problem,) = _problems(tmp_path, MINIMAL_SERVICE + snippet)
    assert problem.endswith(f": replace it with {wanted}")


def test_a_placeholder_at_the_top_of_the_file_or_under_any_secrets_key(tmp_path: Path) -> None:
    assert _problems(tmp_path, MINIMAL_SERVICE + "storage_providers: [providers]\n") == [
        f"7: storage_providers: placeholder [providers] {ONE_ITEM} the real value"
    ]
    assert _problems(tmp_path, MINIMAL_SERVICE + "      environment: {secrets: {A: '<pw>'}}\n") == [
        f"7: {SERVICE}.environment.secrets.A: placeholder: replace it with the real value",  # the value not shown
    ]


def test_every_placeholder_is_reported_once_with_the_other_problems(tmp_path: Path) -> None:
    text = MINIMAL_SERVICE.replace("name: minimal", "name: Bad_Name") + (
        "      memory: [memory]\n      synchronous: {max_scale: '<n>'}\n      allowed_users: ['<a>', ok, '<b>']\n"
    )
    assert _problems(tmp_path, text) == [
        f"4: {SERVICE}.name: 'Bad_Name' must be DNS-safe: lowercase letters, digits and '-', not at either end",
        f"7: {SERVICE}.memory: placeholder [memory] {ONE_ITEM} memory limit (default 256Mi)",
        f"8: {SERVICE}.synchronous.max_scale: placeholder '<n>': replace it with most replicas (0: unlimited)",
        f"9: {SERVICE}.allowed_users.0: placeholder '<a>': replace it with the real value",
        f"9: {SERVICE}.allowed_users.2: placeholder '<b>': replace it with the real value",
    ]


@pytest.mark.parametrize(
    ("key", "meant"), [("port", "api_port"), ("node_port", "nodePort"), ("nodeport", "nodePort"), ("ports", None)]
)
def test_the_misspellings_upstreams_own_documents_use_are_named_so(tmp_path: Path, key: str, meant: str | None) -> None:
    """`expose.port` and `node_port` appear in upstream's documents and tools; the server drops them silently."""
    snippet = f"      expose: {{api_port: 8080, {key}: 30001}}\n"
    suffix = " (upstream would drop it silently)" if meant else ""
    assert _problems(tmp_path, MINIMAL_SERVICE + snippet) == [
        f"7: {SERVICE}.expose.{key}: unknown key; did you mean '{meant or 'api_port'}'?{suffix}"
    ]


# --- scripts and the file --------------------------------------------------------------------------------------------


def test_each_service_has_its_script_file_read_whatever_the_services_before_it_do(tmp_path: Path) -> None:
    """A script written in the FDL (a block with a line that looks like a placeholder) is a script, not a path."""
    text = MINIMAL_SERVICE.replace("script: run.sh", "script: |\n        [ready]\n") + (
        "  - oscar:\n      name: second\n      image: alpine\n      script: run.sh\n"
    )
    assert [service.body["script"] for service in load_fdl(_write(tmp_path, text)).services] == ["[ready]\n", SCRIPT]


def test_every_script_outside_the_fdls_folder_is_reported(tmp_path: Path) -> None:
    text = MINIMAL_SERVICE.replace("script: run.sh", "script: ../a.sh") + (
        "  - oscar:\n      name: second\n      image: alpine\n      script: /etc/b.sh\n"
    )
    outside = "is outside the FDL's folder; keep scripts next to the FDL file"
    assert _problems(tmp_path, text) == [
        f"6: {SERVICE}.script: script file '../a.sh' {outside}",
        f"10: functions.oscar.1.oscar.script: script file '/etc/b.sh' {outside}",
    ]


def test_a_file_that_is_not_a_mapping_is_one_line(tmp_path: Path) -> None:
    assert _errors(tmp_path, "- a\n") == [
        f"{tmp_path / 'service.yaml'}: an FDL file is a mapping starting with `functions:`; see templates/services/"
    ]
