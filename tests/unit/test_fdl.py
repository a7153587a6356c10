"""The typed FDL model and its templates, on FDL files written for these tests and on the shipped examples."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from oscar_deploy.services.fdl import MASK, FdlError, mask_secrets, parse_fdl, to_yaml
from oscar_deploy.services.templating import load_fdl, load_values
from oscar_deploy.support.layers import layer_dir
from tests.unit.fake_oscar import service_schema_validator

SCRIPT = '#!/bin/sh\ncat "$INPUT_FILE_PATH"\n'

# Every field group upstream documents, with the spellings upstream's own documents use where they are valid.
FULL_FDL = """\
functions:
  oscar:
  - edge-cluster:
      name: plants
      image: ghcr.io/example/plants:1.0
      script: scripts/plants.sh
      alpine: false
      file_stage_in: true
      image_pull_secrets: [registry-credentials]
      image_prefetch: true
      memory: 2Gi
      cpu: 1
      total_memory: 8Gi
      total_cpu: "4"
      ephemeral_storage_request: 1Gi
      enable_gpu: true
      enable_sgx: false
      log_level: debug
      synchronous:
        min_scale: 1
        max_scale: 4
      expose:
        min_scale: 1
        max_scale: 3
        api_port: 5000
        cpu_threshold: 70
        nodePort: [30500]
        set_auth: true
        auth_type: forward
        rewrite_target: true
        default_command: true
        health_path: /healthz
        probe_mode: direct
      environment:
        Variables:
          THRESHOLD: 0.5
          VERBOSE: true
          MODE: fast
        secrets:
          API_KEY: s3cr3t-value
      annotations: {team: plants}
      labels: {tier: gold}
      vo: vo.example.eu
      visibility: restricted
      allowed_users: [user-1@example.eu]
      isolation_level: user
      interlink_node_name: vega-vk
      delegation: load-based
      rescheduler_threshold: 30
      replicas:
      - type: oscar
        cluster_id: remote
        service_name: plants
        priority: 1
      - type: endpoint
        url: https://hooks.example.org/plants
        ssl_verify: true
        headers: {X-Team: plants}
      federation:
        group_id: plants-group
        topology: star
        delegation: random
        rescheduler_threshold: 60
        members:
        - type: oscar
          cluster_id: remote
          service_name: plants
      input:
      - storage_provider: minio
        path: plants/in
      - storage_provider: webdav.dcache
        path: incoming/plants
      output:
      - storage_provider: minio.default
        path: plants/out
        suffix: [.json]
        prefix: [result-]
      - storage_provider: s3.results
        path: plants-results/out
      - storage_provider: onedata.space
        path: results
      - storage_provider: rucio.lhc
        path: scope/results
      - storage_provider: minio.archive
        path: archive-bucket/plants
      mount:
        storage_provider: webdav.dcache
        path: shared/models
      volume:
        size: 5Gi
        mount_path: /data
        lifecycle_policy: retain
  - remote:
      name: plants-llm
      image: ghcr.io/example/llm:2.0
      script: scripts/plants.sh
      kserve:
        type: llm_inference
        storage_uri: hf://example/model
        llm_inference: {runtime_image: ghcr.io/example/vllm:1}
        min_scale: 0
        max_scale: 1
        cpu: 2
        memory: 8Gi
        args: [--max-model-len, "4096"]
        env: {HF_HOME: /tmp}
        enable_gpu: false
        set_auth: true
storage_providers:
  minio:
    archive:
      endpoint: https://minio.example.org
      verify: true
      access_key: archiver
      secret_key: archive-key
      region: us-east-1
  s3:
    results: {access_key: AKIAEXAMPLE, secret_key: aws-secret, region: eu-west-1}
  onedata:
    space: {oneprovider_host: op.example.org, token: onedata-token, space: plants}
  webdav:
    dcache: {hostname: dcache.example.org, login: alice, password: webdav-password}
  rucio:
    lhc: {host: rucio.example.org, auth_host: rucio-auth.example.org, account: alice, rse: SITE_DISK,
          refresh_token: rucio-refresh-value, oidc_audience: rucio, token_endpoint: "https://iam.example.org/token"}
clusters:
  remote:
    endpoint: https://oscar.remote.example.org/
    auth_user: oscar
    auth_password: remote-password
    ssl_verify: true
"""

MINIMAL_SERVICE = """\
functions:
  oscar:
  - oscar:
      name: minimal
      image: alpine:3.22.1
      script: run.sh
"""


def _write(folder: Path, text: str, name: str = "service.yaml") -> Path:
    (folder / "scripts").mkdir(exist_ok=True)
    (folder / "scripts" / "plants.sh").write_text(SCRIPT)
    (folder / "run.sh").write_text(SCRIPT)
    path = folder / name
    path.write_text(text)
    return path


def _errors(folder: Path, text: str) -> list[str]:
    path = _write(folder, text)
    with pytest.raises(FdlError) as caught:
        load_fdl(path)
    return caught.value.lines


def test_every_field_group_validates_and_reaches_the_request_body(tmp_path: Path) -> None:
    (tmp_path / "fdl").mkdir()
    path = _write(tmp_path / "fdl", FULL_FDL)
    document = load_fdl(path)
    assert [item.name for item in document.services] == ["plants", "plants-llm"]
    assert document.cluster_keys() == ["edge-cluster", "remote"]
    body = document.services[0].body

    assert body["script"] == SCRIPT  # resolved relative to the FDL file, not the working folder
    assert body["cluster_id"] == "edge-cluster"
    assert body["cpu"] == "1" and body["total_cpu"] == "4" and body["memory"] == "2Gi"
    assert body["log_level"] == "DEBUG" and body["isolation_level"] == "USER"
    assert body["expose"]["api_port"] == [5000] and body["expose"]["nodePort"] == [30500]
    assert body["expose"]["auth_type"] == "forward" and body["expose"]["probe_mode"] == "direct"
    assert body["environment"] == {
        "variables": {"THRESHOLD": "0.5", "VERBOSE": "true", "MODE": "fast"},
        "secrets": {"API_KEY": "s3cr3t-value"},
    }
    assert body["synchronous"] == {"min_scale": 1, "max_scale": 4}
    assert body["volume"] == {"size": "5Gi", "mount_path": "/data", "lifecycle_policy": "retain"}
    assert body["mount"] == {"storage_provider": "webdav.dcache", "path": "shared/models"}
    assert body["output"][0] == {
        "storage_provider": "minio.default",
        "path": "plants/out",
        "suffix": [".json"],
        "prefix": ["result-"],
    }
    assert [replica["type"] for replica in body["replicas"]] == ["oscar", "endpoint"]
    assert body["federation"]["members"][0]["cluster_id"] == "remote"
    assert set(body["storage_providers"]) == {"minio", "s3", "onedata", "webdav", "rucio"}
    assert body["clusters"]["remote"]["endpoint"] == "https://oscar.remote.example.org"
    for key in (
        "image_pull_secrets",
        "annotations",
        "labels",
        "vo",
        "allowed_users",
        "visibility",
        "interlink_node_name",
        "delegation",
        "rescheduler_threshold",
        "ephemeral_storage_request",
        "enable_gpu",
        "enable_sgx",
        "image_prefetch",
        "file_stage_in",
        "alpine",
        "total_memory",
    ):
        assert key in body, key

    kserve = document.services[1].body["kserve"]
    assert kserve["type"] == "llm_inference" and kserve["cpu"] == "2" and kserve["env"] == {"HF_HOME": "/tmp"}

    # Every body is what the published API schema (v4-updated, unknown keys refused) accepts.
    validator = service_schema_validator()
    for definition in document.services:
        assert list(validator.iter_errors(definition.body)) == [], definition.name


def test_rendered_fdl_is_self_contained_and_parses_to_the_same_bodies(tmp_path: Path) -> None:
    document = load_fdl(_write(tmp_path, FULL_FDL))
    rendered = to_yaml(document.normalised())
    assert "Variables" not in rendered and "script: |" in rendered
    again = parse_fdl(rendered, "rendered.yaml", tmp_path / "elsewhere")
    assert [item.body for item in again.services] == [item.body for item in document.services]


def test_secrets_are_masked_for_printing(tmp_path: Path) -> None:
    document = load_fdl(_write(tmp_path, FULL_FDL))
    text = json.dumps(mask_secrets(document.services[0].body))
    for secret in (
        "s3cr3t-value",
        "aws-secret",
        "webdav-password",
        "onedata-token",
        "archive-key",
        "rucio-refresh-value",
        "remote-password",
    ):
        assert secret not in text
    assert MASK in text and "AKIAEXAMPLE" in text  # access keys are names, not secrets


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "      expose:\n        port: 5000\n",
            "service.yaml:8: functions.oscar.0.oscar.expose.port: unknown key; did you mean 'api_port'?",
        ),
        (
            "      expose:\n        api_port: 5000\n        node_port: 30001\n",
            "expose.node_port: unknown key; did you mean 'nodePort'?",
        ),
        ("      memroy: 1Gi\n", "service.yaml:7: functions.oscar.0.oscar.memroy: unknown key; did you mean 'memory'?"),
        ("      memory: lots\n", "memory: 'lots' is not a Kubernetes quantity"),
        ("      log_level: loud\n", "log_level: 'LOUD' is not allowed"),
        ("      visibility: restricted\n", "allowed_users: required with visibility: restricted"),
        ("      isolation_level: team\n", "isolation_level: 'TEAM' is not allowed"),
        ("      token: abc\n", "token: is set by the OSCAR server; remove it"),
        ("      storage_providers: {}\n", "storage_providers: belongs at the top level of the FDL file"),
        (
            "      environment:\n        variables: {A: b}\n        Variables: {C: d}\n",
            "environment.Variables: given twice",
        ),
        ("      environment:\n        vars: {A: b}\n", "environment.vars: unknown key; did you mean 'variables'?"),
        (
            "      input:\n      - storage_provider: s3.results\n        path: bucket-a/in\n",
            "input.0.storage_provider: 's3.results': OSCAR only takes input from minio or webdav",
        ),
        (
            "      input:\n      - storage_provider: minio\n        path: bucket-a/in\n        suffix: [.jpg]\n",
            "input.0: suffix and prefix only filter output files",
        ),
        (
            "      output:\n      - storage_provider: minio.other\n        path: bucket-a/out\n",
            "service.yaml:8: functions.oscar.0.oscar.output.0.storage_provider: 'minio.other' is not defined under "
            "storage_providers.minio (defined: none); add it there",
        ),
        (
            "      output:\n      - storage_provider: ftp.site\n        path: bucket-a/out\n",
            "storage_provider: 'ftp.site': provider type must be one of minio, s3, onedata, webdav, rucio",
        ),
        (
            "      output:\n      - storage_provider: minio\n        path: Bad_Bucket/out\n",
            "output.0.path: 'Bad_Bucket' is not a valid bucket name",
        ),
        ("      output:\n      - storage_provider: minio\n        path: /\n", "output.0.path: must not be empty"),
        (
            "      mount:\n        storage_provider: webdav.nowhere\n        path: x\n",
            "mount.storage_provider: 'webdav.nowhere' is not defined under storage_providers.webdav",
        ),
        ("      volume:\n        mount_path: /data\n", "volume.size: required for a new volume"),
        (
            "      volume:\n        size: 1Gi\n        mount_path: data\n",
            "volume.mount_path: 'data' must be an absolute",
        ),
        (
            "      expose:\n        api_port: 8080\n        nodePort: 80\n",
            "expose.nodePort.0: Input should be greater than or equal to 30000",
        ),
        ("      expose:\n        api_port: []\n", "expose.api_port: needs at least one port"),
        (
            "      expose:\n        api_port: 80\n        auth_type: basic\n",
            "expose.auth_type: only used with set_auth: true",
        ),
        (
            "      synchronous:\n        min_scale: 3\n        max_scale: 2\n",
            "synchronous.max_scale: must be >= min_scale",
        ),
        (
            "      replicas:\n      - type: oscar\n        cluster_id: nowhere\n        service_name: x\n",
            "replicas.0.cluster_id: 'nowhere' is not defined under the top-level clusters",
        ),
        ("      replicas:\n      - type: endpoint\n", "replicas.0.url: an http(s) URL is required"),
        ("      kserve:\n        storage_uri: s3://m\n", "kserve.inference: required for KServe type inference"),
        ("      federation:\n        topology: ring\n", "federation.topology: 'ring' is not allowed"),
    ],
)
def test_each_mistake_is_one_line_naming_file_line_and_key(tmp_path: Path, snippet: str, expected: str) -> None:
    lines = _errors(tmp_path, MINIMAL_SERVICE + snippet)
    assert any(expected in line for line in lines), lines
    assert all(line.startswith(f"{tmp_path / 'service.yaml'}") for line in lines)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("function:\n  oscar: []\n", "function: unknown key; did you mean 'functions'?"),
        ("functions:\n  oscar: []\n", "functions.oscar: lists no service"),
        (
            "functions:\n  oscar:\n  - a: {name: x, image: y, script: run.sh}\n"
            "    b: {name: z, image: y, script: run.sh}\n",
            "functions.oscar.0: each entry is one `<cluster id>: <service>` mapping (found 2 keys)",
        ),
        (MINIMAL_SERVICE.replace("name: minimal", "name: " + "a" * 40), "has 40 characters; OSCAR allows at most 39"),
        (MINIMAL_SERVICE.replace("name: minimal", "name: Minimal_Service"), "must be DNS-safe"),
        (
            MINIMAL_SERVICE.replace("      image: alpine:3.22.1\n", ""),
            "functions.oscar.0.oscar.image: required key is missing",
        ),
        (
            MINIMAL_SERVICE.replace("run.sh", "missing/run.sh"),
            "missing/run.sh not found; paths are relative to the FDL file",
        ),
        (
            MINIMAL_SERVICE + "  - other:\n      name: minimal\n      image: x\n      script: run.sh\n",
            "functions.oscar.1.other.name: 'minimal' is defined twice (also at functions.oscar.0.oscar)",
        ),
        (
            MINIMAL_SERVICE + "      image: alpine:3.20\n",
            "service.yaml:7: functions.oscar.0.oscar.image: given twice (first at line 5); keep one",
        ),
        (
            MINIMAL_SERVICE + "storage_providers:\n  minio:\n    default: {access_key: a}\n",
            "storage_providers.minio.default: is the cluster's own MinIO",
        ),
        (
            MINIMAL_SERVICE + "clusters:\n  far: {endpoint: oscar.example.org}\n",
            "clusters.far.endpoint: 'oscar.example.org'",
        ),
        ("functions: [unclosed\n", "service.yaml:2: not valid YAML"),
        ("- just a list\n", "an FDL file is a mapping starting with `functions:`"),
    ],
)
def test_file_level_mistakes(tmp_path: Path, text: str, expected: str) -> None:
    lines = _errors(tmp_path, text)
    assert any(expected in line for line in lines), lines


def test_all_problems_of_a_file_are_reported_at_once(tmp_path: Path) -> None:
    text = (
        MINIMAL_SERVICE
        + "      memroy: 1Gi\n      expose:\n        port: 1\n  - other:\n      name: b\n      script: gone.sh\n"
    )
    lines = _errors(tmp_path, text)
    assert len(lines) == 5, lines  # memroy, expose.api_port missing, expose.port, b's image, b's script file


# --- templates -----------------------------------------------------------------------------------------------

TEMPLATE = """\
functions:
  oscar:
  - oscar:
      name: {{ name }}
      image: {{ image.repository }}:{{ image.tag }}
      script: run.sh
{%- if gpu %}
      enable_gpu: true
{%- endif %}
      synchronous:
        max_scale: {{ replicas }}
"""


def test_values_files_then_set_flags_with_dotted_names_and_types(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("name: from-file\nimage: {repository: ghcr.io/example/app, tag: '1.0'}\nreplicas: 2\ngpu: true\n")
    override = tmp_path / "override.yaml"
    override.write_text("image: {tag: '2.0'}\n")
    path = _write(tmp_path, TEMPLATE)
    body = load_fdl(path, [values, override], ["name=from-flag", "replicas=5", "gpu=false"]).services[0].body
    assert body["name"] == "from-flag"
    assert body["image"] == "ghcr.io/example/app:2.0"  # nested values merge instead of replacing
    assert body["synchronous"] == {"max_scale": 5}
    assert "enable_gpu" not in body  # "false" from --set is a boolean, not a truthy string
    assert load_values([], ["a.b.c=1.5", "s=0x10", "t=true"]) == {"a": {"b": {"c": 1.5}}, "s": "0x10", "t": True}


def test_a_missing_value_is_an_error_naming_it_and_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, TEMPLATE)
    with pytest.raises(FdlError) as caught:
        load_fdl(path, [], ["name=x", "image.repository=r", "gpu=false"])
    assert caught.value.lines == [
        f"{path}:5: 'dict object' has no attribute 'tag'; give it with --set NAME=VALUE or in a values file "
        "(-f values.yaml)"
    ]
    with pytest.raises(FdlError, match=r":11: 'replicas' is undefined"):
        load_fdl(path, [], ["name=x", "image.repository=r", "image.tag=1", "gpu=false"])


def test_env_function_reads_the_environment_or_names_the_missing_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(
        tmp_path, MINIMAL_SERVICE + "      environment:\n        secrets: {TOKEN: '{{ env(\"APP_TOKEN\") }}'}\n"
    )
    monkeypatch.delenv("APP_TOKEN", raising=False)
    with pytest.raises(FdlError, match=r":8: environment variable 'APP_TOKEN' is not set; export it"):
        load_fdl(path)
    monkeypatch.setenv("APP_TOKEN", "t0k3n")
    assert load_fdl(path).services[0].body["environment"]["secrets"] == {"TOKEN": "t0k3n"}


@pytest.mark.parametrize(
    ("values_text", "assignment", "expected"),
    [
        (None, "novalue", "--set novalue: write NAME=VALUE"),
        (None, "9bad=1", "--set 9bad=1: write NAME=VALUE"),
        ("- a list\n", None, "a values file must be a YAML mapping"),
        ("a: [1\n", None, "values.yaml:2: not valid YAML"),
    ],
)
def test_bad_values_are_reported(
    tmp_path: Path, values_text: str | None, assignment: str | None, expected: str
) -> None:
    files = []
    if values_text is not None:
        (tmp_path / "values.yaml").write_text(values_text)
        files.append(tmp_path / "values.yaml")
    with pytest.raises(FdlError, match=expected.replace("[", r"\[")):
        load_values(files, [assignment] if assignment else [])


def test_template_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL_SERVICE + "{% if x %}\n")
    with pytest.raises(FdlError, match=r"service.yaml:7: template syntax error"):
        load_fdl(path)


# --- the shipped examples ------------------------------------------------------------------------------------

EXAMPLE_VALUES = {
    "cowsay.yaml": [],
    "grayify.yaml": ["bucket=photos"],
    "grayify-s3.yaml": ["s3_bucket=my-results"],
    "grayify-webdav.yaml": ["webdav_host=dcache.example.org", "webdav_login=alice", "webdav_path=home/alice/out"],
}


def test_every_shipped_example_is_valid_and_matches_the_api_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    monkeypatch.setenv("WEBDAV_PASSWORD", "example-password")
    folder = layer_dir("templates") / "services"
    assert sorted(path.name for path in folder.glob("*.yaml")) == sorted(EXAMPLE_VALUES)
    validator = service_schema_validator()
    outputs = {}
    for name, assignments in EXAMPLE_VALUES.items():
        document = load_fdl(folder / name, [], assignments)
        (definition,) = document.services
        assert definition.body["script"].startswith("#!/bin/sh\n")
        assert list(validator.iter_errors(definition.body)) == [], name
        outputs[name] = [item["storage_provider"] for item in definition.body.get("output", [])]
    assert outputs == {
        "cowsay.yaml": [],
        "grayify.yaml": ["minio.default"],
        "grayify-s3.yaml": ["s3.results"],
        "grayify-webdav.yaml": ["webdav.results"],
    }
    assert load_fdl(folder / "cowsay.yaml").services[0].body["synchronous"] == {"min_scale": 0, "max_scale": 5}


def test_shipped_examples_name_their_required_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    folder = layer_dir("templates") / "services"
    with pytest.raises(FdlError, match="'s3_bucket' is undefined"):
        load_fdl(folder / "grayify-s3.yaml")
    with pytest.raises(FdlError, match="environment variable 'AWS_ACCESS_KEY_ID' is not set"):
        load_fdl(folder / "grayify-s3.yaml", [], ["s3_bucket=b-results"])


# --- the commands that need no cluster ------------------------------------------------------------------------


def test_validate_and_render_commands(cli, tmp_path: Path) -> None:
    path = _write(cli.cwd, FULL_FDL, "plants.yaml")
    result = cli("service", "validate", str(path))
    assert result.exit_code == 0, result.output
    assert "plants.yaml: valid, 2 service(s)" in result.output
    assert "plants (ghcr.io/example/plants:1.0) for cluster edge-cluster" in result.output

    rendered = cli("service", "render", str(path), "--json")
    assert rendered.exit_code == 0
    bodies = json.loads(rendered.output)
    assert bodies[0]["environment"]["secrets"] == {"API_KEY": MASK}
    shown = cli("service", "render", str(path), "--json", "--show-secrets")
    assert json.loads(shown.output)[0]["environment"]["secrets"] == {"API_KEY": "s3cr3t-value"}
    yaml_text = cli("service", "render", str(path)).output
    assert "s3cr3t-value" not in yaml_text and "api_port:\n        - 5000" in yaml_text

    broken = _write(cli.cwd, textwrap.dedent(MINIMAL_SERVICE) + "      expose:\n        port: 5000\n", "broken.yaml")
    failed = cli("service", "validate", str(broken))
    assert failed.exit_code == 2
    assert "error: " in failed.output and "expose.port: unknown key; did you mean 'api_port'?" in failed.output
    assert "Traceback" not in failed.output
