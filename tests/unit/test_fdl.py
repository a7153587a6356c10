"""The typed FDL model and its templates, on FDL files written for these tests and on the shipped examples."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from oscar_deploy.services.fdl import MASK, FdlError, mask_secrets, parse_fdl, split_provider, to_yaml
from oscar_deploy.services.templating import load_fdl, load_values
from oscar_deploy.support.layers import layer_dir
from tests.unit.fake_oscar import service_schema_validator

SCRIPT = '#!/bin/sh\ncat "$INPUT_FILE_PATH"\n'

# Every field group of OSCAR v4.1.2's Service type (pkg/types/service.go), in the spellings upstream's documents use.
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
          refresh_token: refresh-value
      annotations: {team: plants}
      labels: {tier: gold}
      vo: vo.example.eu
      visibility: restricted
      allowed_users: [user-1@example.eu]
      isolation_level: user
      interlink_node_name: vega-vk
      federation:
        group_id: plants-group
        topology: star
        delegation: random
        members:
        - type: oscar
          cluster_id: remote
          service_name: plants
          priority: 1
        - type: endpoint
          url: https://hooks.example.org/plants
          ssl_verify: true
          headers: {X-Team: plants}
      input:
      - storage_provider: minio
        path: plants/in
      - storage_provider: webdav.dcache
        path: incoming/plants
      - storage_provider: rucio.lhc
        path: scope:dataset
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
        options: [--read-only]
      volume:
        size: 5Gi
        mount_path: /data
        lifecycle_policy: retain
  - remote:
      name: plants-model
      image: ghcr.io/example/model:2.0
      script: scripts/plants.sh
      kserve:
        model_format: llm
        storage_uri: hf://example/model
        api_version: v1
        llm: {model_name: plants-7b, runtime_image: ghcr.io/example/vllm:1}
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


def _body(folder: Path, text: str) -> dict[str, Any]:
    return load_fdl(_write(folder, text)).services[0].body


def test_every_field_group_validates_and_reaches_the_request_body(tmp_path: Path) -> None:
    (tmp_path / "fdl").mkdir()
    path = _write(tmp_path / "fdl", FULL_FDL)
    document = load_fdl(path)
    assert [item.name for item in document.services] == ["plants", "plants-model"]
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
        "secrets": {"API_KEY": "s3cr3t-value", "refresh_token": "refresh-value"},
    }
    assert body["synchronous"] == {"min_scale": 1, "max_scale": 4}
    assert body["volume"] == {"size": "5Gi", "mount_path": "/data", "lifecycle_policy": "retain", "name": "plants"}
    assert body["mount"] == {"storage_provider": "webdav.dcache", "path": "shared/models", "options": ["--read-only"]}
    assert body["output"][0] == {
        "storage_provider": "minio.default",
        "path": "plants/out",
        "suffix": [".json"],
        "prefix": ["result-"],
    }
    assert [member["type"] for member in body["federation"]["members"]] == ["oscar", "endpoint"]
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
    assert kserve["model_format"] == "llm" and kserve["cpu"] == "2" and kserve["env"] == {"HF_HOME": "/tmp"}
    assert kserve["llm"] == {"model_name": "plants-7b", "runtime_image": "ghcr.io/example/vllm:1"}

    # Every body is what OSCAR v4.1.2's types decode, and no key of it would be dropped by the server.
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
        "refresh-value",
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
            "input.0.storage_provider: 's3.results': OSCAR only takes input from minio, webdav, rucio",
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
            "output.0.path: bucket 'Bad_Bucket' (from path 'Bad_Bucket/out') is not a valid bucket name",
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
        ("      expose:\n        api_port: []\n", "expose.api_port: needs at least one port"),
        (
            "      expose:\n        api_port: 80\n        auth_type: basic\n",
            "expose.auth_type: only used with set_auth: true",
        ),
        (
            "      synchronous:\n        min_scale: 3\n        max_scale: 2\n",
            "synchronous.max_scale: must be >= min_scale",
        ),
        ("      kserve:\n        storage_uri: s3://m\n", "kserve.model_format: required key is missing"),
    ],
)
def test_each_mistake_is_one_line_naming_file_line_and_key(tmp_path: Path, snippet: str, expected: str) -> None:
    lines = _errors(tmp_path, MINIMAL_SERVICE + snippet)
    assert any(expected in line for line in lines), lines
    assert all(line.startswith(f"{tmp_path / 'service.yaml'}") for line in lines)


# --- each point where OSCAR v4.1.2's source differs from its documents ---------------------------------------
# Line numbers are at the tag, as the shared reference note (oscar-manager-contract.md) gives them; the function
# names were read in upstream's copies named in tests/data/oscar-v4.1.2-service.schema.yaml.


def test_kserve_api_version_sits_directly_under_kserve(tmp_path: Path) -> None:
    """pkg/types/service.go:358-360 (Kserve.APIVersion) and docs/fdl.md:66-74: upstream's own example."""
    body = _body(
        tmp_path,
        MINIMAL_SERVICE + "      kserve:\n        model_format: sklearn\n        storage_uri: gs://models/iris\n"
        "        api_version: v2\n",
    )
    assert body["kserve"] == {
        "model_format": "sklearn",
        "storage_uri": "gs://models/iris",
        "api_version": "v2",
        "cpu": "0.2",  # service.go Kserve.UnmarshalJSON defaults
        "memory": "256Mi",
        "set_auth": True,
    }
    nested = "      kserve:\n        storage_uri: gs://m\n        inference: {model_format: sklearn, api_version: v2}\n"
    assert _errors(tmp_path, MINIMAL_SERVICE + nested) == [
        f"{tmp_path / 'service.yaml'}:9: functions.oscar.0.oscar.kserve.inference: OSCAR v4.1.2 has no "
        "kserve.inference (the server drops it); write model_format and api_version directly under kserve"
    ]
    typed = "      kserve:\n        type: llm_inference\n        storage_uri: hf://m\n        model_format: llm\n"
    assert "kserve.type: OSCAR v4.1.2 has no kserve.type" in _errors(tmp_path, MINIMAL_SERVICE + typed)[0]
    llm = "      kserve:\n        llm_inference: {}\n        storage_uri: hf://m\n        model_format: llm\n"
    assert "did you mean 'llm' (with model_format: llm)?" in _errors(tmp_path, MINIMAL_SERVICE + llm)[0]


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        (
            "      replicas:\n      - {type: oscar, cluster_id: remote, service_name: x}\n",
            "replicas: OSCAR v4 reads replicas only as federation members (the server drops this key); "
            "did you mean 'federation.members'?",
        ),
        (
            "      delegation: random\n",
            "delegation: OSCAR v4 reads the delegation policy only under federation (the server drops this key); "
            "did you mean 'federation.delegation'?",
        ),
        (
            "      rescheduler_threshold: 30\n",
            "rescheduler_threshold: OSCAR v4 has no per-service rescheduler threshold (the server drops this key; "
            "the manager's RESCHEDULER_* settings apply to every service); remove it",
        ),
    ],
)
def test_service_level_federation_keys_of_v3_are_refused(tmp_path: Path, snippet: str, message: str) -> None:
    """pkg/types/service.go at v4.1.2: Federation *Federation replaces Replicas, Delegation and
    ReSchedulerThreshold (commit ce1960bf); pkg/types/federation.go has group_id, topology, delegation, members."""
    assert _errors(tmp_path, MINIMAL_SERVICE + snippet) == [
        f"{tmp_path / 'service.yaml'}:7: functions.oscar.0.oscar.{message}"
    ]


def test_every_problem_of_a_service_is_reported_with_a_removed_key(tmp_path: Path) -> None:
    lines = _errors(tmp_path, MINIMAL_SERVICE + "      delegation: static\n      memroy: 1Gi\n")
    assert [line.split(": ", 2)[1] for line in lines] == [
        "functions.oscar.0.oscar.delegation",
        "functions.oscar.0.oscar.memroy",
    ]


def test_a_path_without_a_slash_is_a_folder_of_the_services_bucket(tmp_path: Path) -> None:
    """create.go:574-606 normalizeStoragePaths: trimmed of ' /'; a MinIO or S3 path without '/' becomes
    <service>/<path>; upper case is allowed (it is a folder, and the bucket is the service name)."""
    text = (
        MINIMAL_SERVICE
        + "      input:\n      - {storage_provider: minio, path: /Images/}\n"
        + "      output:\n      - {storage_provider: minio.default, path: Results}\n"
        + "      - {storage_provider: webdav.box, path: outbox}\n"
        + "storage_providers:\n  webdav:\n    box: {hostname: box.example.org}\n"
    )
    body = _body(tmp_path, text)
    assert [item["path"] for item in body["input"] + body["output"]] == ["minimal/Images", "minimal/Results", "outbox"]
    short = (
        MINIMAL_SERVICE.replace("name: minimal", "name: ab")
        + "      output:\n      - {storage_provider: minio, path: x}\n"
    )
    assert "bucket 'ab' (from path 'ab/x') is not a valid bucket name" in _errors(tmp_path, short)[0]


def test_certificate_checks_are_off_unless_asked_for(tmp_path: Path) -> None:
    """ssl_verify and verify are plain Go booleans (pkg/types: Replica.SSLVerify, Cluster.SSLVerify,
    MinIOProvider.Verify; used as given in pkg/utils/delegate.go:302,462,528): left out they mean false, no
    certificate check. The docs say so, and nothing is sent for a key left out."""
    from oscar_deploy.services.fdl import ClusterSettings, MinIOProvider, Replica

    for model, key in ((ClusterSettings, "ssl_verify"), (Replica, "ssl_verify"), (MinIOProvider, "verify")):
        description = model.model_fields[key].description or ""
        assert "default false" in description and "does not check it" in description, model
    text = MINIMAL_SERVICE + "clusters:\n  far: {endpoint: https://far.example.org}\n"
    assert _body(tmp_path, text)["clusters"] == {"far": {"endpoint": "https://far.example.org"}}


def test_rucio_input_is_accepted_and_other_minio_input_refused(tmp_path: Path) -> None:
    """create.go:630: inputs may be minio, webdav or rucio; create.go:644-648: a MinIO input other than the
    server's own fails the create ("is not the configured in OSCAR", 500)."""
    rucio = (
        MINIMAL_SERVICE
        + "      input:\n      - {storage_provider: rucio.lake, path: 'scope:data'}\n"
        + "storage_providers:\n  rucio:\n    lake: {host: rucio.example.org}\n"
    )
    assert _body(tmp_path, rucio)["input"] == [{"storage_provider": "rucio.lake", "path": "scope:data"}]
    other = (
        MINIMAL_SERVICE
        + "      input:\n      - {storage_provider: minio.lab, path: lab/in}\n"
        + "storage_providers:\n  minio:\n    lab: {endpoint: https://minio.lab.example.org}\n"
    )
    assert _errors(tmp_path, other) == [
        f"{tmp_path / 'service.yaml'}:8: functions.oscar.0.oscar.input.0.storage_provider: 'minio.lab': OSCAR takes "
        "MinIO input only from its own MinIO (any other fails the create with 'is not the configured in OSCAR'); "
        "use minio.default, or this provider as an output"
    ]


def test_a_provider_reference_splits_like_create_go() -> None:
    """create.go getProviderInfo: trimmed, split at the first '.', the type lower-cased, the id kept as written; no
    '.' means the default id, and a trailing '.' an empty id (which no storage provider has)."""
    assert split_provider(" MinIO ") == ("minio", "default")
    assert split_provider("S3.Results.eu") == ("s3", "Results.eu")
    assert split_provider("minio.") == ("minio", "")


def test_a_provider_reference_with_an_empty_id_is_refused(tmp_path: Path) -> None:
    """`minio.` names the provider with id "" (create.go getProviderInfo), which the server cannot find; it is not
    the cluster's own MinIO."""
    assert _errors(tmp_path, MINIMAL_SERVICE + "      output:\n      - {storage_provider: minio., path: abc/b}\n") == [
        f"{tmp_path / 'service.yaml'}:8: functions.oscar.0.oscar.output.0.storage_provider: 'minio.': write "
        "<type>.<id>, e.g. minio.default"
    ]


@pytest.mark.parametrize("kind", ["onedata", "rucio"])
def test_only_what_the_mount_sidecar_serves_can_be_mounted(tmp_path: Path, kind: str) -> None:
    """pkg/backends/resources/mount.go sidecarPodSpec configures rclone for minio, s3 and webdav only."""
    text = MINIMAL_SERVICE + f"      mount:\n        storage_provider: {kind}.x\n        path: data\n"
    assert (
        f"mount.storage_provider: '{kind}.x': OSCAR's mount sidecar serves minio, s3, webdav only (mount.go); "
        f"{kind} cannot be mounted" in _errors(tmp_path, text)[0]
    )


def test_mount_options_are_sent(tmp_path: Path) -> None:
    """storage.go:64-66: a mount has options, rclone flags."""
    text = (
        MINIMAL_SERVICE
        + "      mount:\n        storage_provider: minio\n        path: models\n"
        + "        options: --vfs-cache-mode=full\n"
    )
    assert _body(tmp_path, text)["mount"] == {
        "storage_provider": "minio",
        "path": "models",
        "options": ["--vfs-cache-mode=full"],
    }


def test_federation_members_need_the_refresh_token(tmp_path: Path) -> None:
    """create.go:227-231: with federation members and no environment.secrets.refresh_token, 400."""
    text = (
        MINIMAL_SERVICE
        + "      federation:\n        members:\n        - {type: endpoint, url: https://hooks.example.org}\n"
    )
    assert _errors(tmp_path, text) == [
        f"{tmp_path / 'service.yaml'}:8: functions.oscar.0.oscar.federation.members: a federation with members "
        "needs environment.secrets.refresh_token (OSCAR refuses the service with 400 without it); add an OIDC "
        "refresh token there, e.g. '{{ env(\"OIDC_REFRESH_TOKEN\") }}'"
    ]
    with_token = text + "      environment:\n        secrets: {refresh_token: r3fr3sh}\n"
    assert _body(tmp_path, with_token)["federation"]["topology"] == "none"  # create.go checkValues default
    no_members = MINIMAL_SERVICE + "      federation:\n        group_id: g\n"
    assert _body(tmp_path, no_members)["federation"] == {"group_id": "g", "topology": "none"}


@pytest.mark.parametrize(("topology", "accepted"), [("none", True), ("star", True), ("mesh", True), ("tree", False)])
def test_federation_topologies(tmp_path: Path, topology: str, accepted: bool) -> None:
    """pkg/types/federation.go:23: "Topology defines the federation topology: none, star, mesh"."""
    text = MINIMAL_SERVICE + f"      federation:\n        topology: {topology}\n"
    if accepted:
        assert _body(tmp_path, text)["federation"]["topology"] == topology
    else:
        assert "federation.topology: 'tree' is not allowed; use 'none', 'star' or 'mesh'" in _errors(tmp_path, text)[0]


def test_federation_delegation_policies(tmp_path: Path) -> None:
    """pkg/types/federation.go: "Delegation defines the delegation policy: static, random, load-based"."""
    text = MINIMAL_SERVICE + "      federation:\n        delegation: topsis\n"
    assert "'topsis' is not allowed; use 'static', 'random' or 'load-based'" in _errors(tmp_path, text)[0]


@pytest.mark.parametrize(
    ("ports", "node_ports", "problem"),
    [
        ("[8080]", "[0]", None),
        ("[8080, 9090]", "[30080, 0]", None),
        ("[8080]", "[30000]", None),
        ("[8080]", "[32767]", None),
        ("[8080]", "[29999]", "expose.nodePort.0: 29999 is not a NodePort: use 30000-32767, or 0"),
        ("[8080]", "[32768]", "expose.nodePort.0: 32768 is not a NodePort"),
        ("[8080, 9090]", "[30080]", "expose.nodePort: gives 1 port(s) for 2 api_port(s); give one per api_port"),
        ("[8080]", "[30080, 30081]", "expose.nodePort: gives 2 port(s) for 1 api_port(s)"),
    ],
)
def test_node_ports_pair_with_api_ports(tmp_path: Path, ports: str, node_ports: str, problem: str | None) -> None:
    """expose.go:99-104: nodePort may be 0 (Kubernetes picks one) and has as many entries as api_port."""
    text = MINIMAL_SERVICE + f"      expose:\n        api_port: {ports}\n        nodePort: {node_ports}\n"
    if problem is None:
        assert _body(tmp_path, text)["expose"]["nodePort"] == yaml.safe_load(node_ports)
    else:
        assert problem in _errors(tmp_path, text)[0]


@pytest.mark.parametrize(
    ("volume", "problem"),
    [
        (
            "{name: shared, mount_path: /models, lifecycle_policy: retain}",
            "volume.lifecycle_policy: only valid with size",
        ),
        ("{size: 1Gi, mount_path: /oscar/config}", "'/oscar/config' overlaps /oscar/config, which OSCAR mounts itself"),
        ("{size: 1Gi, mount_path: /oscar/bin}", "'/oscar/bin' overlaps /oscar/bin"),
        ("{size: 1Gi, mount_path: /oscar/bin/tools}", "'/oscar/bin/tools' overlaps /oscar/bin"),
        ("{size: 0Gi, mount_path: /data}", "volume.size: '0Gi' must be more than zero"),
        ("{name: Shared, mount_path: /data}", "volume.name: 'Shared' must be a DNS label"),
        ("{size: 1Gi, mount_path: /oscar/binaries}", None),
        ("{size: 1Gi, mount_path: /oscar}", None),
    ],
)
def test_volume_rules(tmp_path: Path, volume: str, problem: str | None) -> None:
    """pkg/utils/volume.go:94-103 ValidateVolumeConfig: lifecycle_policy only with size; mount paths under
    /oscar/config and /oscar/bin refused; a DNS-1123 name; a positive size."""
    text = MINIMAL_SERVICE + f"      volume: {volume}\n"
    if problem is None:
        assert _body(tmp_path, text)["volume"]["lifecycle_policy"] == "delete"  # volume.go default with a size
    else:
        assert problem in _errors(tmp_path, text)[0]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "      vo: <vo>\n",
            "service.yaml:7: functions.oscar.0.oscar.vo: placeholder '<vo>': replace it with virtual organisation of "
            "the owner (multi-tenant clusters)",
        ),
        (
            "      memory: [memory]\n",
            "service.yaml:7: functions.oscar.0.oscar.memory: placeholder [memory] (YAML reads it as a one-item "
            "list): replace it with memory limit (default 256Mi)",
        ),
        (
            "      expose:\n        api_port:\n",
            "service.yaml:8: functions.oscar.0.oscar.expose.api_port: placeholder: the value is empty; replace it "
            "with port(s) inside the container where the API listens; a single number is accepted",
        ),
        (
            "      output:\n      - storage_provider: s3.sns\n        path: '[topic_arn]'\n"
            "storage_providers:\n  s3:\n    sns: {access_key: <access_key>, secret_key: , region: us-east-1}\n",
            "service.yaml:9: functions.oscar.0.oscar.output.0.path: placeholder '[topic_arn]': replace it with path "
            "in the provider",
        ),
    ],
)
def test_placeholders_are_named_as_such(tmp_path: Path, snippet: str, expected: str) -> None:
    """Upstream's example FDLs carry `<vo>`, `[topic_arn]` and empty values to fill in."""
    lines = _errors(tmp_path, MINIMAL_SERVICE + snippet)
    assert any(expected in line for line in lines), lines
    assert not any("Input should be" in line for line in lines), lines


def test_several_placeholders_of_a_provider_at_once(tmp_path: Path) -> None:
    text = (
        MINIMAL_SERVICE + "storage_providers:\n  s3:\n    sns: {access_key: <access_key>, secret_key: , region: eu}\n"
    )
    assert [line.split(": ", 1)[1] for line in _errors(tmp_path, text)] == [
        "storage_providers.s3.sns.access_key: placeholder '<access_key>': replace it with AWS access key id",
        "storage_providers.s3.sns.secret_key: placeholder: the value is empty; replace it with AWS secret access key",
    ]


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        (
            "webdav:\n    dcache: {hostname: dcache.example.org, login: alice, password: [Sup3rS3cret]}\n",
            "storage_providers.webdav.dcache.password: placeholder [...] (YAML reads it as a one-item list): "
            "replace it with account password",
        ),
        (
            "webdav:\n    dcache: {hostname: dcache.example.org, login: alice, password: '<Sup3rS3cret>'}\n",
            "storage_providers.webdav.dcache.password: placeholder: replace it with account password",
        ),
        (
            "webdav:\n    dcache: {hostname: 'https://alice:Sup3rS3cret@dcache.example.org', login: a, password: b}\n",
            "storage_providers.webdav.dcache.hostname: 'https://****@dcache.example.org': write the host name "
            "without the protocol (OSCAR always uses https)",
        ),
    ],
)
def test_a_credential_is_never_echoed_as_a_placeholder_or_in_a_host_name(
    tmp_path: Path, provider: str, expected: str
) -> None:
    lines = _errors(tmp_path, MINIMAL_SERVICE + "storage_providers:\n  " + provider)
    assert [line.split(": ", 1)[1] for line in lines] == [expected]
    assert not any("Sup3rS3cret" in line for line in lines)


def test_a_placeholder_among_environment_secrets_is_not_echoed(tmp_path: Path) -> None:
    text = MINIMAL_SERVICE + "      environment:\n        secrets: {DB_PASS: '[Sup3rS3cret]'}\n"
    (line,) = _errors(tmp_path, text)
    assert line.endswith(
        ": functions.oscar.0.oscar.environment.secrets.DB_PASS: placeholder: replace it with the real value"
    )


def test_an_empty_script_is_one_line_saying_so(tmp_path: Path) -> None:
    text = MINIMAL_SERVICE.replace("script: run.sh", "script: ''")
    assert text != MINIMAL_SERVICE
    assert [line.split(": ", 1)[1] for line in _errors(tmp_path, text)] == ["functions.oscar.0.oscar.script: is empty"]


def test_placeholders_in_scripts_are_left_alone(tmp_path: Path) -> None:
    text = MINIMAL_SERVICE.replace("script: run.sh", "script: |\n        #!/bin/sh\n        echo <usage>\n")
    assert _body(tmp_path, text)["script"] == "#!/bin/sh\necho <usage>\n"


def test_the_body_carries_the_create_handlers_defaults(tmp_path: Path) -> None:
    """create.go checkValues: memory 256Mi, cpu 0.2, visibility private, log level INFO (upper-cased); the script's
    line endings normalised (create.go: utils.NormalizeLineEndings)."""
    (tmp_path / "crlf.sh").write_bytes(b"#!/bin/sh\r\necho hi\r\n")
    body = _body(tmp_path, MINIMAL_SERVICE.replace("run.sh", "crlf.sh"))
    assert {key: body[key] for key in ("memory", "cpu", "visibility", "log_level", "script")} == {
        "memory": "256Mi",
        "cpu": "0.2",
        "visibility": "private",
        "log_level": "INFO",
        "script": "#!/bin/sh\necho hi\n",
    }


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
            "script: missing/run.sh: no such script file; paths are relative to the FDL file",
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
        (
            MINIMAL_SERVICE
            + "      federation:\n        members:\n        - {type: oscar, cluster_id: nowhere, service_name: x}\n"
            + "      environment:\n        secrets: {refresh_token: r}\n",
            "federation.members.0.cluster_id: 'nowhere' is not defined under the top-level clusters",
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
        (None, "9bad=1", "--set 9bad=...: write NAME=VALUE"),
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
    assert bodies[0]["environment"]["secrets"] == {"API_KEY": MASK, "refresh_token": MASK}
    shown = cli("service", "render", str(path), "--json", "--show-secrets")
    assert json.loads(shown.output)[0]["environment"]["secrets"] == {
        "API_KEY": "s3cr3t-value",
        "refresh_token": "refresh-value",
    }
    yaml_text = cli("service", "render", str(path)).output
    assert "s3cr3t-value" not in yaml_text and "api_port:\n        - 5000" in yaml_text

    broken = _write(cli.cwd, textwrap.dedent(MINIMAL_SERVICE) + "      expose:\n        port: 5000\n", "broken.yaml")
    failed = cli("service", "validate", str(broken))
    assert failed.exit_code == 2
    assert "error: " in failed.output and "expose.port: unknown key; did you mean 'api_port'?" in failed.output
    assert "Traceback" not in failed.output
