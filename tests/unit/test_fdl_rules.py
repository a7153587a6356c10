"""Each rule of the FDL model at its limits, with the whole line it reports: the value on each side of a bound, and
the exact key path and message (a message cut short or a key path gone wrong fails here, not in a user's terminal).

The rules are OSCAR v4.1.2's (pkg/types/*.go, pkg/handlers/create.go, pkg/utils/volume.go); each test names where.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from oscar_deploy.services.fdl import REMOVED_SERVICE_KEYS, Service, mask_secrets
from oscar_deploy.spec.yamlcheck import KEY_MARK
from tests.unit.test_fdl import MINIMAL_SERVICE, _body, _errors

SERVICE = "functions.oscar.0.oscar"
WITH_TOKEN = "      environment: {secrets: {refresh_token: r3fr3sh}}\n"


def _problems(folder: Path, text: str) -> list[str]:
    """`<line>: <key path>: <message>` for each problem; the file name starts every line and is left out here."""
    prefix = f"{folder / 'service.yaml'}:"
    lines = _errors(folder, text)
    assert all(line.startswith(prefix) for line in lines), lines
    return [line.removeprefix(prefix) for line in lines]


def _service_problems(folder: Path, snippet: str) -> list[str]:
    return _problems(folder, MINIMAL_SERVICE + snippet)


# --- keys a service must not carry -------------------------------------------------------------------------------


def test_every_key_the_server_fills_in_is_refused_on_its_own_line(tmp_path: Path) -> None:
    """pkg/types/service.go: token, owner, namespace, bucket_list, volume_status and deployment are set by the
    server (tests/data/oscar-v4.1.2-service.schema.yaml lists them); a definition's values would be overwritten."""
    snippet = "".join(
        f"      {key}: x\n" for key in ("token", "owner", "bucket_list", "deployment", "volume_status", "namespace")
    )
    assert _service_problems(tmp_path, snippet) == [
        f"{line}: {SERVICE}.{key}: is set by the OSCAR server; remove it"
        for line, key in enumerate(("token", "owner", "bucket_list", "deployment", "volume_status", "namespace"), 7)
    ]


@pytest.mark.parametrize("key", ["token", "owner", "bucket_list", "deployment", "volume_status", "namespace"])
def test_the_service_model_alone_refuses_a_key_the_server_fills_in(key: str) -> None:
    """The model is usable without the file loader: it refuses the same keys with the same words."""
    with pytest.raises(ValidationError) as caught:
        Service.model_validate({"name": "a", "image": "i", "script": "s", key: "x"})
    assert caught.value.errors()[0]["msg"] == f"Value error, {KEY_MARK}{key}: is set by the OSCAR server; remove it"


@pytest.mark.parametrize("key", sorted(REMOVED_SERVICE_KEYS))
def test_the_service_model_alone_refuses_a_key_oscar_v4_dropped(key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Service.model_validate({"name": "a", "image": "i", "script": "s", key: 1})
    assert caught.value.errors()[0]["msg"] == f"Value error, {KEY_MARK}{key}: {REMOVED_SERVICE_KEYS[key]}"


@pytest.mark.parametrize("key", ["storage_providers", "clusters"])
def test_top_level_sections_inside_a_service_are_pointed_to_the_top(tmp_path: Path, key: str) -> None:
    assert _service_problems(tmp_path, f"      {key}: {{}}\n") == [
        f"7: {SERVICE}.{key}: belongs at the top level of the FDL file; move it there"
    ]


@pytest.mark.parametrize("key", ["storage_providers", "clusters"])
def test_a_misplaced_section_does_not_hide_the_services_other_problems(tmp_path: Path, key: str) -> None:
    """Every problem at once: the section is reported and taken out, and the rest of the service is checked."""
    snippet = f"      {key}: {{}}\n      memory: lots\n"
    assert _service_problems(tmp_path, snippet) == [
        f"7: {SERVICE}.{key}: belongs at the top level of the FDL file; move it there",
        f"8: {SERVICE}.memory: 'lots' is not a Kubernetes quantity such as 0.5, 500m, 256Mi or 2Gi",
    ]


@pytest.mark.parametrize("key", ["storage_providers", "clusters"])
def test_the_service_model_alone_points_a_top_level_section_to_the_top(key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Service.model_validate({"name": "a", "image": "i", "script": "s", key: {}})
    assert caught.value.errors()[0]["msg"] == (
        f"Value error, {KEY_MARK}{key}: belongs at the top level of the FDL file; move it there"
    )


# --- names, numbers and quantities ---------------------------------------------------------------------------------


def test_a_service_name_of_39_characters_is_the_longest(tmp_path: Path) -> None:
    """service.go: Name `binding:"required,max=39,min=1"`."""
    longest = "a" * 39
    assert _body(tmp_path, MINIMAL_SERVICE.replace("name: minimal", f"name: {longest}"))["name"] == longest
    assert _problems(tmp_path, MINIMAL_SERVICE.replace("name: minimal", f"name: {longest}b")) == [
        f"4: {SERVICE}.name: '{longest}b' has 40 characters; OSCAR allows at most 39"
    ]
    assert _problems(tmp_path, MINIMAL_SERVICE.replace("name: minimal", "name: a-")) == [
        f"4: {SERVICE}.name: 'a-' must be DNS-safe: lowercase letters, digits and '-', not at either end"
    ]


@pytest.mark.parametrize("flag", ["true", "false"])
def test_a_boolean_is_not_a_whole_number(tmp_path: Path, flag: str) -> None:
    """Go's JSON decoder refuses a boolean for an int field (pydantic alone would read true as 1)."""
    assert _service_problems(tmp_path, f"      synchronous: {{min_scale: {flag}}}\n") == [
        f"7: {SERVICE}.synchronous.min_scale: {flag} is not a number; give a whole number"
    ]


def test_the_model_turns_numbers_and_booleans_of_string_fields_into_their_text() -> None:
    """Environment values and quantities are Go strings. From a file the loader keeps each scalar's text; the model
    on its own (services.verify builds one from data) turns true, false, 1 and 1.5 into the strings they print as."""
    service = Service.model_validate(
        {
            "name": "a",
            "image": "i",
            "script": "s",
            "cpu": 1,
            "memory": 0.5,
            "environment": {"variables": {"A": True, "B": False, "C": 1, "D": 1.5}},
        }
    )
    assert (service.cpu, service.memory) == ("1", "0.5")
    assert service.environment is not None
    assert service.environment.variables == {"A": "true", "B": "false", "C": "1", "D": "1.5"}


def test_a_quantity_that_is_not_one_says_what_one_looks_like(tmp_path: Path) -> None:
    assert _service_problems(tmp_path, "      memory: lots\n") == [
        f"7: {SERVICE}.memory: 'lots' is not a Kubernetes quantity such as 0.5, 500m, 256Mi or 2Gi"
    ]


@pytest.mark.parametrize("level", ["notset", "debug", "info", "warning", "error", "critical"])
def test_every_log_level_of_the_supervisor_is_accepted_in_any_case(tmp_path: Path, level: str) -> None:
    """service.go: LogLevel, one of Python's logging levels (the supervisor is Python), upper-cased by checkValues."""
    assert _body(tmp_path, MINIMAL_SERVICE + f"      log_level: {level}\n")["log_level"] == level.upper()


@pytest.mark.parametrize(
    ("key", "value", "sent"),
    [
        ("visibility", "private", "private"),
        ("visibility", "public", "public"),
        ("isolation_level", "service", "SERVICE"),
        ("isolation_level", "user", "USER"),
    ],
)
def test_every_visibility_and_isolation_level_is_accepted(tmp_path: Path, key: str, value: str, sent: str) -> None:
    """service.go: Visibility private, public or restricted (with allowed_users); IsolationLevel SERVICE or USER,
    compared upper-cased (create.go strings.ToUpper)."""
    assert _body(tmp_path, MINIMAL_SERVICE + f"      {key}: {value}\n")[key] == sent


# --- storage -------------------------------------------------------------------------------------------------------


def test_an_unknown_provider_id_lists_the_defined_ones_in_order(tmp_path: Path) -> None:
    """The cluster's own MinIO needs no definition; the references after it are still checked."""
    text = (
        MINIMAL_SERVICE
        + "      output:\n      - {storage_provider: minio, path: abc/x}\n"
        + "      - {storage_provider: s3.c, path: abc/x}\n"
        + "storage_providers:\n  s3: {b: {access_key: a, secret_key: s}, a: {access_key: a, secret_key: s}}\n"
    )
    assert _problems(tmp_path, text) == [
        f"9: {SERVICE}.output.1.storage_provider: 's3.c' is not defined under storage_providers.s3 "
        "(defined: s3.a, s3.b); add it there"
    ]


def test_an_empty_storage_path_says_what_to_write(tmp_path: Path) -> None:
    """create.go normalizeStoragePaths trims ' /': what is left must name a bucket or folder."""
    assert _service_problems(tmp_path, "      output:\n      - {storage_provider: minio, path: ' / '}\n") == [
        f"8: {SERVICE}.output.0.path: must not be empty; write bucket/folder, or a folder of the service's own bucket"
    ]
    one_letter = MINIMAL_SERVICE + "      output:\n      - {storage_provider: minio, path: X}\n"
    assert _body(tmp_path, one_letter)["output"] == [{"storage_provider": "minio", "path": "minimal/X"}]


def test_input_rules_name_the_item_and_the_provider(tmp_path: Path) -> None:
    """create.go:630 (input only from minio, webdav, rucio); suffix and prefix are output filters only."""
    assert _service_problems(
        tmp_path,
        "      input:\n      - {storage_provider: minio, path: abc/in}\n"
        "      - {storage_provider: onedata.b, path: abc/in}\n",
    ) == [
        f"9: {SERVICE}.input.1.storage_provider: 'onedata.b': OSCAR only takes input from minio, webdav, rucio; "
        "use it as an output instead"
    ]
    assert _service_problems(
        tmp_path, "      input:\n      - {storage_provider: minio, path: abc/in, prefix: [x]}\n"
    ) == [f"8: {SERVICE}.input.0: suffix and prefix only filter output files; remove them here"]


def test_bucket_names_are_checked_for_minio_and_s3_paths_only(tmp_path: Path) -> None:
    """A MinIO or S3 path starts with a bucket (create.go createBuckets splits it at the first '/'); WebDAV paths
    are folders, which may have any name."""
    text = (
        MINIMAL_SERVICE
        + "      output:\n      - {storage_provider: webdav.d, path: Any_Folder/x}\n"
        + "      - {storage_provider: s3.b, path: Bad_Bucket/x}\n"
        + "storage_providers:\n  webdav: {d: {hostname: h}}\n  s3: {b: {access_key: a, secret_key: s}}\n"
    )
    assert _problems(tmp_path, text) == [
        f"9: {SERVICE}.output.1.path: bucket 'Bad_Bucket' (from path 'Bad_Bucket/x') is not a valid bucket name "
        "(3-63 lowercase letters, digits, '.' and '-')"
    ]
    assert _service_problems(tmp_path, "      mount: {storage_provider: minio, path: X-bucket/x}\n") == [
        f"7: {SERVICE}.mount.path: bucket 'X-bucket' (from path 'X-bucket/x') is not a valid bucket name "
        "(3-63 lowercase letters, digits, '.' and '-')"
    ]
    assert _body(tmp_path, MINIMAL_SERVICE + "      mount: {storage_provider: minio, path: /ok-bucket/x}\n")["mount"]


def test_the_clusters_own_minio_cannot_be_redefined(tmp_path: Path) -> None:
    text = MINIMAL_SERVICE + "storage_providers:\n  minio:\n    default: {access_key: a}\n"
    assert _problems(tmp_path, text) == [
        "9: storage_providers.minio.default: is the cluster's own MinIO, which OSCAR fills in itself (it would "
        "overwrite these values); use another id"
    ]


def test_an_unmountable_provider_is_named_with_its_type(tmp_path: Path) -> None:
    assert _service_problems(tmp_path, "      mount: {storage_provider: Onedata.x, path: data}\n") == [
        f"7: {SERVICE}.mount.storage_provider: 'Onedata.x': OSCAR's mount sidecar serves minio, s3, webdav only "
        "(mount.go); onedata cannot be mounted"
    ]


# --- volumes ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volume", "problem"),
    [
        ("{mount_path: /data}", "volume.size: required for a new volume (or set name to mount an existing one)"),
        (
            "{name: a, mount_path: /data, lifecycle_policy: delete}",
            "volume.lifecycle_policy: only valid with size (a volume the service creates); add size or remove "
            "lifecycle_policy",
        ),
        (
            "{name: Shared, mount_path: /data}",
            "volume.name: 'Shared' must be a DNS label (lowercase letters, digits and '-')",
        ),
        (
            "{size: 0, mount_path: /data}",
            "volume.size: '0' must be more than zero (volume.go: a valid positive quantity)",
        ),
        ("{size: 1Gi, mount_path: data}", "volume.mount_path: 'data' must be an absolute path such as /data"),
        (
            "{size: 1Gi, mount_path: /oscar/config/x}",
            "volume.mount_path: '/oscar/config/x' overlaps /oscar/config, which OSCAR mounts itself (volume.go); "
            "pick another",
        ),
    ],
)
def test_volume_problems_in_full(tmp_path: Path, volume: str, problem: str) -> None:
    """pkg/utils/volume.go ValidateVolumeConfig and validateSize (a quantity whose sign is positive)."""
    assert _service_problems(tmp_path, f"      volume: {volume}\n") == [f"7: {SERVICE}.{problem}"]


@pytest.mark.parametrize("size", ["0.5", "100m", ".5", "1"])
def test_any_positive_quantity_sizes_a_volume(tmp_path: Path, size: str) -> None:
    assert (
        _body(tmp_path, MINIMAL_SERVICE + f"      volume: {{size: '{size}', mount_path: /data}}\n")["volume"]["size"]
        == size
    )


def test_volume_name_and_mount_path_are_trimmed_as_volume_go_does(tmp_path: Path) -> None:
    """volume.go ValidateVolumeConfig: strings.TrimSpace on name and mount path before it checks them."""
    text = MINIMAL_SERVICE + "      volume: {name: ' shared ', mount_path: ' /data '}\n"
    assert _body(tmp_path, text)["volume"] == {"name": "shared", "mount_path": "/data"}


def test_volume_size_and_lifecycle_policy_are_trimmed_as_volume_go_does(tmp_path: Path) -> None:
    """volume.go ValidateVolumeConfig trims size and lifecycle_policy too, and stores what it trimmed."""
    text = MINIMAL_SERVICE + "      volume: {size: ' 1Gi ', mount_path: /data, lifecycle_policy: ' retain '}\n"
    assert _body(tmp_path, text)["volume"] == {
        "name": "minimal",
        "size": "1Gi",
        "mount_path": "/data",
        "lifecycle_policy": "retain",
    }


def test_a_blank_volume_setting_is_an_unset_one(tmp_path: Path) -> None:
    """volume.go compares the trimmed values with "": a blank name takes the service's, a blank lifecycle_policy
    is delete, and a blank size is no size."""
    text = MINIMAL_SERVICE + "      volume: {name: ' ', size: 1Gi, mount_path: /data, lifecycle_policy: ''}\n"
    assert _body(tmp_path, text)["volume"] == {
        "name": "minimal",
        "size": "1Gi",
        "mount_path": "/data",
        "lifecycle_policy": "delete",
    }
    assert _service_problems(tmp_path, "      volume: {name: '', size: ' ', mount_path: /data}\n") == [
        f"7: {SERVICE}.volume.size: required for a new volume (or set name to mount an existing one)"
    ]


# --- scaling and exposure ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("low", "high"), [(3, 3), (3, 0), (0, 0)])
def test_synchronous_max_scale_may_equal_min_scale_or_be_unlimited(tmp_path: Path, low: int, high: int) -> None:
    text = MINIMAL_SERVICE + f"      synchronous: {{min_scale: {low}, max_scale: {high}}}\n"
    assert _body(tmp_path, text)["synchronous"] == {"min_scale": low, "max_scale": high}


def test_synchronous_limits_in_full(tmp_path: Path) -> None:
    assert _service_problems(tmp_path, "      synchronous: {min_scale: 3, max_scale: 2}\n") == [
        f"7: {SERVICE}.synchronous.max_scale: must be >= min_scale or 0 for unlimited"
    ]
    assert _service_problems(tmp_path, "      synchronous: {min_scale: -1, max_scale: -1}\n") == [
        f"7: {SERVICE}.synchronous.max_scale: Input should be greater than or equal to 0",
        f"7: {SERVICE}.synchronous.min_scale: Input should be greater than or equal to 0",
    ]


@pytest.mark.parametrize(
    "expose",
    [
        "{api_port: 1, min_scale: 0, max_scale: 1, cpu_threshold: 1}",
        "{api_port: 65535, min_scale: 2, max_scale: 2, cpu_threshold: 100}",
        "{api_port: 80, auth_type: basic, set_auth: true, health_path: /, probe_mode: legacy}",
    ],
)
def test_expose_values_at_their_limits_are_accepted(tmp_path: Path, expose: str) -> None:
    """expose.go: ports 1-65535, cpu threshold a percentage, max_scale at least 1 and not below min_scale."""
    assert _body(tmp_path, MINIMAL_SERVICE + f"      expose: {expose}\n")["expose"]


@pytest.mark.parametrize(
    ("expose", "problems"),
    [
        (
            "{api_port: 80, min_scale: -1, max_scale: 0, cpu_threshold: 0}",
            [
                "expose.cpu_threshold: Input should be greater than or equal to 1",
                "expose.max_scale: Input should be greater than or equal to 1",
                "expose.min_scale: Input should be greater than or equal to 0",
            ],
        ),
        ("{api_port: 80, cpu_threshold: 101}", ["expose.cpu_threshold: Input should be less than or equal to 100"]),
        ("{api_port: 0}", ["expose.api_port.0: Input should be greater than or equal to 1"]),
        ("{api_port: 65536}", ["expose.api_port.0: Input should be less than or equal to 65535"]),
        ("{api_port: true}", ["expose.api_port: Input should be a valid list"]),
        ("{api_port: [], nodePort: []}", ["expose.api_port: needs at least one port"]),
        ("{api_port: 80, min_scale: 3, max_scale: 2}", ["expose.max_scale: must be >= min_scale"]),
        ("{api_port: 80, auth_type: basic, set_auth: false}", ["expose.auth_type: only used with set_auth: true"]),
        ("{api_port: 80, health_path: healthz}", ["expose.health_path: 'healthz' must start with /"]),
        ("{api_port: 80, probe_mode: tcp}", ["expose.probe_mode: 'tcp' is not allowed; use 'legacy' or 'direct'"]),
        (
            "{api_port: 80, nodePort: [29999]}",
            ["expose.nodePort.0: 29999 is not a NodePort: use 30000-32767, or 0 to let Kubernetes pick one"],
        ),
        (
            "{api_port: [80, 81], nodePort: 30001}",
            [
                "expose.nodePort: gives 1 port(s) for 2 api_port(s); give one per api_port, in the same order "
                "(0 lets Kubernetes pick)"
            ],
        ),
    ],
)
def test_expose_problems_in_full(tmp_path: Path, expose: str, problems: list[str]) -> None:
    assert _service_problems(tmp_path, f"      expose: {expose}\n") == [f"7: {SERVICE}.{p}" for p in problems]


# --- environment, federation, kserve -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["variables", "secrets"])
def test_both_spellings_of_an_environment_map_at_once_are_refused(tmp_path: Path, key: str) -> None:
    """v3 documents spell Variables and Secrets capitalised; the server reads the lower-case keys only."""
    snippet = f"      environment:\n        {key}: {{A: b}}\n        {key.capitalize()}: {{C: d}}\n"
    assert _service_problems(tmp_path, snippet) == [
        f"9: {SERVICE}.environment.{key.capitalize()}: given twice ({key} and {key.capitalize()}); merge them"
    ]
    one = f"      environment:\n        {key.capitalize()}: {{C: 1}}\n"
    assert _body(tmp_path, MINIMAL_SERVICE + one)["environment"] == {key: {"C": "1"}}


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("{url: 'https://h.example.org'}", "type: required key is missing"),
        ("{type: oscar, service_name: x}", "cluster_id: required for a replica of type oscar"),
        ("{type: oscar, cluster_id: far}", "service_name: required for a replica of type oscar"),
        ("{type: endpoint}", "url: an http(s) URL is required for a replica of type endpoint"),
        (
            "{type: endpoint, url: 'ftp://x.example.org/hook'}",
            "url: an http(s) URL is required for a replica of type endpoint ('ftp://x.example.org/hook' must be an "
            "http(s) URL such as https://oscar.example.org)",
        ),
        (
            "{type: endpoint, url: 'https://h.example.org', priority: -1}",
            "priority: Input should be greater than or equal to 0",
        ),
    ],
)
def test_federation_member_problems_in_full(tmp_path: Path, member: str, problem: str) -> None:
    """pkg/types/replica.go: a replica is another OSCAR cluster's service, or an endpoint; priority 0 is the top."""
    snippet = f"      federation:\n        members:\n        - {member}\n" + WITH_TOKEN
    assert _service_problems(tmp_path, snippet) == [f"9: {SERVICE}.federation.members.0.{problem}"]


def test_a_long_url_is_cut_at_80_characters_in_a_message(tmp_path: Path) -> None:
    """A value pasted in the wrong place is not echoed whole (support.errors.shown); URLs keep 80 characters."""
    url = "ftp://" + "a" * 75
    snippet = f"      federation:\n        members:\n        - {{type: endpoint, url: '{url}'}}\n" + WITH_TOKEN
    assert _service_problems(tmp_path, snippet) == [
        f"9: {SERVICE}.federation.members.0.url: an http(s) URL is required for a replica of type endpoint "
        f"('{url[:80]}...' must be an http(s) URL such as https://oscar.example.org)"
    ]
    text = MINIMAL_SERVICE + f"clusters:\n  far: {{endpoint: '{url[6:]}aaaaaa'}}\n"
    assert _problems(tmp_path, text) == [
        f"8: clusters.far.endpoint: '{'a' * 80}...' must be an http(s) URL such as https://oscar.example.org"
    ]


def test_a_member_with_priority_zero_is_accepted(tmp_path: Path) -> None:
    snippet = (
        "      federation:\n        members:\n        - {type: endpoint, url: 'https://h.example.org', priority: 0}\n"
    )
    assert _body(tmp_path, MINIMAL_SERVICE + snippet + WITH_TOKEN)["federation"]["members"] == [
        {"type": "endpoint", "url": "https://h.example.org", "priority": 0}
    ]


def test_an_empty_refresh_token_does_not_count(tmp_path: Path) -> None:
    """create.go:227-231 checks the secret's value, so an empty one is refused as a missing one is."""
    snippet = (
        "      federation:\n        members:\n        - {type: endpoint, url: 'https://h.example.org'}\n"
        "      environment: {secrets: {refresh_token: ''}}\n"
    )
    (line,) = _service_problems(tmp_path, snippet)
    assert line.startswith(f"8: {SERVICE}.federation.members: a federation with members needs environment.secrets.")


@pytest.mark.parametrize("policy", ["static", "random", "load-based"])
def test_every_delegation_policy_is_accepted(tmp_path: Path, policy: str) -> None:
    """pkg/types/federation.go: "Delegation defines the delegation policy: static, random, load-based"."""
    text = MINIMAL_SERVICE + f"      federation:\n        delegation: {policy}\n"
    assert _body(tmp_path, text)["federation"]["delegation"] == policy


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (
            "type",
            "kserve.type: OSCAR v4.1.2 has no kserve.type (the server drops it); the kind of model follows from "
            "model_format (llm for a language model)",
        ),
        (
            "llm_inference",
            "kserve.llm_inference: OSCAR v4.1.2 has no kserve.llm_inference (the server drops it); did you mean 'llm' "
            "(with model_format: llm)?",
        ),
    ],
)
def test_later_kserve_keys_are_refused_in_full(tmp_path: Path, key: str, problem: str) -> None:
    """pkg/types/service.go at v4.1.2: Kserve has no type, inference or llm_inference."""
    snippet = f"      kserve:\n        {key}: x\n        storage_uri: hf://m\n        model_format: llm\n"
    assert _service_problems(tmp_path, snippet) == [f"8: {SERVICE}.{problem}"]


def test_kserve_scales_start_at_zero(tmp_path: Path) -> None:
    snippet = "      kserve: {model_format: x, storage_uri: y, min_scale: 0, max_scale: 0}\n"
    assert _body(tmp_path, MINIMAL_SERVICE + snippet)["kserve"]["max_scale"] == 0
    snippet = "      kserve: {model_format: x, storage_uri: y, min_scale: -1, max_scale: -1}\n"
    assert _service_problems(tmp_path, snippet) == [
        f"7: {SERVICE}.kserve.max_scale: Input should be greater than or equal to 0",
        f"7: {SERVICE}.kserve.min_scale: Input should be greater than or equal to 0",
    ]


def test_visibility_restricted_needs_its_users(tmp_path: Path) -> None:
    assert _service_problems(tmp_path, "      visibility: restricted\n") == [
        f"3: {SERVICE}.allowed_users: required with visibility: restricted"
    ]


# --- the file ------------------------------------------------------------------------------------------------------


def test_an_entry_without_a_service_says_how_many_keys_it_has(tmp_path: Path) -> None:
    assert _problems(tmp_path, "functions:\n  oscar:\n  - {}\n") == [
        "3: functions.oscar.0: each entry is one `<cluster id>: <service>` mapping (found 0 keys); start each "
        "service with its own '- '"
    ]


def test_cluster_endpoints_lose_their_trailing_slashes_and_keep_no_credentials(tmp_path: Path) -> None:
    text = MINIMAL_SERVICE + "clusters:\n  near: {endpoint: 'https://near.example.org/X//'}\n"
    assert _body(tmp_path, text)["clusters"] == {"near": {"endpoint": "https://near.example.org/X"}}  # slashes only
    text = MINIMAL_SERVICE + "clusters:\n  far: {endpoint: 'https://u:p4ss@far.example.org'}\n"
    assert _problems(tmp_path, text) == [
        "8: clusters.far.endpoint: 'https://****@far.example.org' carries credentials, which do not belong in a URL; "
        "put them in auth_user and auth_password"
    ]


def test_a_service_name_used_twice_names_both_places(tmp_path: Path) -> None:
    text = MINIMAL_SERVICE + "  - other: {name: minimal, image: i, script: run.sh}\n"
    assert _problems(tmp_path, text) == [
        "7: functions.oscar.1.other.name: 'minimal' is defined twice (also at functions.oscar.0.oscar); service "
        "names must be unique"
    ]


def test_a_member_cluster_must_be_defined_at_the_top(tmp_path: Path) -> None:
    snippet = "      federation:\n        members:\n        - {type: oscar, cluster_id: far, service_name: a}\n"
    assert _service_problems(tmp_path, snippet + WITH_TOKEN) == [
        f"9: {SERVICE}.federation.members.0.cluster_id: 'far' is not defined under the top-level clusters; add it there"
    ]


def test_masking_reaches_into_lists_and_leaves_other_values() -> None:
    data: dict[str, Any] = {"members": [{"password": "p", "n": 1}], "secrets": {"A": "x"}, "token": 5}
    assert mask_secrets(data) == {
        "members": [{"password": "********", "n": 1}],
        "secrets": {"A": "********"},
        "token": 5,
    }
