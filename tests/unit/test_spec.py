"""The cluster spec: defaults, every kind of error with its exact one-line message, unknown keys, overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from oscar_deploy.spec.models import TARGETS, ClusterSpec, load_spec, parse_spec
from oscar_deploy.spec.template import json_schema, reference_markdown, render_spec
from oscar_deploy.support.errors import SpecError


def errors_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, "c.yaml")
    return caught.value.lines


def test_empty_spec_takes_documented_defaults() -> None:
    spec = parse_spec("", "c.yaml")
    assert (spec.name, spec.target, spec.servers.count) == ("oscar", "local", 1)
    assert (spec.workers.initial, spec.workers.min, spec.workers.max) == (1, 0, 3)
    assert spec.local is not None and spec.local.worker_arch == "amd64"
    assert spec.openstack is None and spec.aws is None
    assert (spec.platform.tls, spec.platform.tls_mode) == ("auto", "selfsigned")
    assert spec.platform.storage_class is None
    assert spec.versions == {}


def test_full_openstack_spec_is_accepted() -> None:
    spec = parse_spec(
        """
name: egi-lab
target: openstack
servers: {count: 3}
workers: {initial: 2, min: 1, max: 10}
openstack:
  cloud: fedcloud
  image: Ubuntu 22.04
  server_flavor: m1.xlarge
  network: private
  allowed_cidrs: [192.0.2.0/24, 2001:db8::/32]
platform:
  domain: oscar.example.org
  tls: letsencrypt
  acme_email: ops@example.org
  autoscaler: {enabled: true, idle_time: 600}
versions:
  k3s: v1.34.1+k3s1
""",
        "c.yaml",
    )
    assert spec.servers.count == 3
    assert spec.openstack is not None and spec.openstack.cloud == "fedcloud"
    assert spec.openstack.allowed_cidrs == ["192.0.2.0/24", "2001:db8::/32"]
    assert spec.platform.autoscaler.idle_time == 600
    assert spec.versions == {"k3s": "v1.34.1+k3s1"}


def test_workers_max_below_min_names_both_keys() -> None:
    assert errors_of("workers:\n  min: 3\n  max: 2\n") == ["c.yaml:3: workers.max: must be >= workers.min (2 < 3)"]


def test_initial_outside_range() -> None:
    assert errors_of("workers:\n  initial: 5\n") == [
        "c.yaml:2: workers.initial: must be between workers.min and workers.max (5 not in 0..3)"
    ]


def test_even_server_count_is_refused_for_quorum() -> None:
    assert errors_of("servers:\n  count: 2\n") == [
        "c.yaml:2: servers.count: must be odd so etcd keeps a quorum (2 servers); use 1 or 3"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("servers: {count: 1}\n", None),
        ("servers: {count: 7}\n", None),
        ("servers: {count: 0}\n", "servers.count: Input should be greater than or equal to 1"),
        ("servers: {count: 8}\n", "servers.count: Input should be less than or equal to 7"),
        ("workers: {initial: 0, min: 0, max: 0}\n", None),
        ("workers: {initial: 200, min: 200, max: 200}\n", None),
        ("workers: {max: 201}\n", "workers.max: Input should be less than or equal to 200"),
        ("workers: {initial: -1}\n", "workers.initial: Input should be greater than or equal to 0"),
        ("workers: {min: -1}\n", "workers.min: Input should be greater than or equal to 0"),
        ("workers: {max: -1}\n", "workers.max: Input should be greater than or equal to 0"),
        ("workers: {initial: 2, min: 2, max: 5}\n", None),
        ("workers: {initial: 5, min: 2, max: 5}\n", None),
        (
            "workers: {initial: 1, min: 2, max: 5}\n",
            "workers.initial: must be between workers.min and workers.max (1 not in 2..5)",
        ),
        (
            "workers: {initial: 6, min: 2, max: 5}\n",
            "workers.initial: must be between workers.min and workers.max (6 not in 2..5)",
        ),
        ("platform: {autoscaler: {idle_time: 30, reconsider_job_time: 5, max_wait_poweron: 60, period: 5}}\n", None),
        (
            "platform: {autoscaler: {idle_time: 29}}\n",
            "platform.autoscaler.idle_time: Input should be greater than or equal to 30",
        ),
        (
            "platform: {autoscaler: {reconsider_job_time: 4}}\n",
            "platform.autoscaler.reconsider_job_time: Input should be greater than or equal to 5",
        ),
        (
            "platform: {autoscaler: {max_wait_poweron: 59}}\n",
            "platform.autoscaler.max_wait_poweron: Input should be greater than or equal to 60",
        ),
        (
            "platform: {autoscaler: {period: 4}}\n",
            "platform.autoscaler.period: Input should be greater than or equal to 5",
        ),
        (
            "platform: {autoscaler: {extra_nodes_free: -1}}\n",
            "platform.autoscaler.extra_nodes_free: Input should be greater than or equal to 0",
        ),
        ("target: aws\naws: {disk_gb: 20}\n", None),
        ("target: aws\naws: {disk_gb: 16384}\n", None),
        ("target: aws\naws: {disk_gb: 19}\n", "aws.disk_gb: Input should be greater than or equal to 20"),
        ("target: aws\naws: {disk_gb: 16385}\n", "aws.disk_gb: Input should be less than or equal to 16384"),
    ],
)
def test_numbers_are_taken_at_their_limits_and_refused_one_past(text: str, problem: str | None) -> None:
    if problem is None:
        parse_spec(text, "c.yaml")
    else:
        # the number is on the last line of the text
        assert errors_of(text) == [f"c.yaml:{text.count(chr(10))}: {problem}"]


@pytest.mark.parametrize(
    "key",
    [
        "servers.count",
        "workers.initial",
        "workers.min",
        "workers.max",
        "platform.autoscaler.idle_time",
        "platform.autoscaler.reconsider_job_time",
        "platform.autoscaler.max_wait_poweron",
        "platform.autoscaler.period",
        "platform.autoscaler.extra_nodes_free",
    ],
)
def test_counts_and_seconds_are_never_taken_from_quoted_text(key: str) -> None:
    """A quoted number is a typo the spec refuses rather than converts."""
    *parents, leaf = key.split(".")
    text = "".join(f"{'  ' * depth}{parent}:\n" for depth, parent in enumerate(parents))
    text += f"{'  ' * len(parents)}{leaf}: '3'\n"
    assert errors_of(text) == [f"c.yaml:{len(parents) + 1}: {key}: Input should be a valid integer"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workers:\n  maxx: 4\n", "c.yaml:2: workers.maxx: unknown key; did you mean 'max'?"),
        ("platfrom: {}\n", "c.yaml:1: platfrom: unknown key; did you mean 'platform'?"),
        ("local:\n  enginee: podman\n", "c.yaml:2: local.enginee: unknown key; did you mean 'engine'?"),
        (
            "platform:\n  minio:\n    size: 1Gi\n",
            "c.yaml:3: platform.minio.size: unknown key; allowed keys: storage_size",
        ),
    ],
)
def test_unknown_keys_are_errors_with_a_suggestion(text: str, expected: str) -> None:
    assert errors_of(text) == [expected]


def test_every_problem_is_reported_in_one_run() -> None:
    lines = errors_of(
        "name: Bad_Name\nservers: {count: 4}\nlocal: {worker_arch: arm65}\nversions: {k3s: 1.33.3, knativ: 1.2.3}\n"
    )
    assert lines == [
        "c.yaml:1: name: 'Bad_Name' is not a valid name; use 1-32 lowercase letters, digits and '-', "
        "starting with a letter and not ending with '-'",
        "c.yaml:2: servers.count: must be odd so etcd keeps a quorum (4 servers); use 3 or 5",
        "c.yaml:3: local.worker_arch: 'arm65' is not allowed; use 'amd64' or 'arm64'",
        "c.yaml:4: versions.knativ: unknown component; did you mean 'knative_serving'?",
        "c.yaml:4: versions.k3s: '1.33.3' is not a version; use vMAJOR.MINOR.PATCH+k3sN, e.g. v1.33.3+k3s1",
    ]


def test_section_of_another_target_is_refused() -> None:
    assert errors_of("target: openstack\naws: {region: eu-west-1}\n") == [
        "c.yaml:2: aws: only used with target aws (target is openstack); remove the section"
    ]


def test_letsencrypt_needs_domain_and_email() -> None:
    assert errors_of("platform:\n  tls: letsencrypt\n") == [
        "c.yaml:1: platform.domain: required with tls: letsencrypt; set a public DNS name"
    ]
    assert errors_of("platform:\n  tls: letsencrypt-staging\n  domain: a.example.org\n") == [
        "c.yaml:1: platform.acme_email: required with tls: letsencrypt-staging; set your address"
    ]


def test_platform_domain_and_storage_class_are_checked() -> None:
    assert errors_of("platform:\n  domain: https://oscar.example.org\n") == [
        "c.yaml:2: platform.domain: 'https://oscar.example.org' is not a DNS name such as oscar.example.org "
        "(lowercase, no scheme)"
    ]
    assert errors_of("platform:\n  storage_class: Fast_RWX\n") == [
        "c.yaml:2: platform.storage_class: 'Fast_RWX' is not a StorageClass name (lowercase letters, digits, '-' "
        "and '.')"
    ]
    spec = parse_spec("platform:\n  domain: oscar.example.org\n  storage_class: cephfs\n", "c.yaml")
    assert (spec.platform.domain, spec.platform.storage_class) == ("oscar.example.org", "cephfs")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "ftp://admin:S3cretPass@reg.example.org",
            "'ftp://****@reg.example.org' must be an http(s) URL such as https://registry.example.org:5000",
        ),
        ("https://admin:S3cretPass@", "'https://****@' carries credentials, which do not belong in a URL"),
        (
            "https://admin:S3cretPass@reg.example.org",
            "'https://****@reg.example.org' carries credentials, which do not belong in a URL",
        ),
        ("https://reg.example.org:65536", "'https://reg.example.org:65536' is not a URL (Port out of range 0-65535)"),
        ("https://", "'https://' names no host; give an http(s) URL such as https://registry.example.org:5000"),
    ],
)
def test_a_registry_mirror_url_is_checked_and_never_shown_with_its_credentials(url: str, problem: str) -> None:
    assert errors_of(f"platform:\n  registry_mirror:\n    url: '{url}'\n") == [
        f"c.yaml:3: platform.registry_mirror.url: {problem}"
    ]


def test_a_registry_mirror_url_at_the_highest_port_and_with_a_trailing_slash_is_taken() -> None:
    spec = parse_spec("platform:\n  registry_mirror:\n    url: https://reg.example.org:65535/\n", "c.yaml")
    assert spec.platform.registry_mirror.url == "https://reg.example.org:65535"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "platform:\n  oscar:\n    username: ''\n",
            "platform.oscar.username: '' is not a user name: 1 to 64 characters, no spaces and no ':'",
        ),
        ("platform:\n  oscar:\n    username: 'a:b'\n", "platform.oscar.username: 'a:b' is not a user name"),
        ("platform:\n  oscar:\n    username: " + "u" * 65 + "\n", "platform.oscar.username: 'uuuu"),
        (
            "platform:\n  acme_email: not-an-email\n",
            "platform.acme_email: 'not-an-email' is not an email address such as admin@example.org",
        ),
        ("platform:\n  acme_email: a@localhost\n", "platform.acme_email: 'a@localhost' is not an email address"),
        (
            "iac:\n  backend: s3://bucket:99999\n",
            "iac.backend: a bucket name holds no port; give the store's address as ?endpoint=HOST:PORT",
        ),
    ],
)
def test_values_that_would_break_later_are_refused_now(text: str, problem: str) -> None:
    (line,) = errors_of(text)
    assert line.split(": ", 1)[1].startswith(problem), line


NOT_AN_ENTRY = "is not REGISTRY[/PATH], such as ghcr.io/grycap or docker.io/grycap/cowsay"
TAG = "names a tag; an entry is a registry or a repository, which allows every tag of it"
LONE_NAME = "is taken for a registry, and so allows no image; for Docker Hub write docker.io/grycap"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("''", "an empty entry allows no image; remove it"),
        ("'  '", "an empty entry allows no image; remove it"),
        ("/", "an empty entry allows no image; remove it"),
        (
            "https://ghcr.io/grycap",
            "'https://ghcr.io/grycap' holds a URL scheme, which OSCAR refuses; write REGISTRY[/PATH] alone",
        ),
        ("/grycap", f"'/grycap' {NOT_AN_ENTRY}"),
        ("'ghcr.io/gry cap'", f"'ghcr.io/gry cap' {NOT_AN_ENTRY}"),
        ("ghcr.io/grycap/cowsay@sha256:0a1b", f"'ghcr.io/grycap/cowsay@sha256:0a1b' {NOT_AN_ENTRY}"),
        ("ghcr.io/grycap/cowsay:v1", f"'ghcr.io/grycap/cowsay:v1' {TAG}"),
        ("grycap/cowsay:v1", f"'grycap/cowsay:v1' {TAG}"),
        ("grycap", f"'grycap' {LONE_NAME}"),
        ("grycap/", f"'grycap/' {LONE_NAME}"),
    ],
)
def test_an_image_allow_list_entry_oscar_would_refuse_or_never_match_is_refused(entry: str, problem: str) -> None:
    assert errors_of(f"platform:\n  oscar:\n    allowed_image_prefixes: [docker.io/library, {entry}]\n") == [
        f"c.yaml:3: platform.oscar.allowed_image_prefixes: {problem}"
    ]


def test_image_allow_list_entries_are_kept_as_written() -> None:
    """Registries with a dot, a port or named localhost; Docker Hub accounts and repositories; any case."""
    entries = [
        "docker.io",
        "ghcr.io/grycap/",
        "GHCR.IO/GryCap",
        "grycap/cowsay",
        "localhost",
        "localhost:5000/team",
        "mirror:5000",
        "registry.example.org:5000",
    ]
    text = f"platform:\n  oscar:\n    allowed_image_prefixes: [{', '.join(entries)}]\n"
    assert parse_spec(text, "c.yaml").platform.oscar.allowed_image_prefixes == entries


def test_the_limits_of_a_user_name_and_an_email_are_taken() -> None:
    spec = parse_spec(
        "platform:\n  oscar:\n    username: " + "u" * 64 + "\n  acme_email: ops+oscar@lab.example.org\n", "c.yaml"
    )
    assert (len(spec.platform.oscar.username), spec.platform.acme_email) == (64, "ops+oscar@lab.example.org")
    assert parse_spec("platform:\n  oscar:\n    username: u\n", "c.yaml").platform.oscar.username == "u"


def test_tls_auto_picks_letsencrypt_only_with_domain_and_email() -> None:
    both = parse_spec("platform:\n  domain: oscar.example.org\n  acme_email: a@example.org\n", "c.yaml")
    assert both.platform.tls_mode == "letsencrypt"
    assert parse_spec("platform:\n  domain: oscar.example.org\n", "c.yaml").platform.tls_mode == "selfsigned"
    forced = parse_spec("platform:\n  domain: a.example.org\n  acme_email: a@example.org\n  tls: selfsigned\n")
    assert forced.platform.tls_mode == "selfsigned"


def test_bad_cidr_size_and_graviton_checks() -> None:
    assert errors_of("target: openstack\nopenstack:\n  allowed_cidrs: [10.0.0.0/33]\n") == [
        "c.yaml:3: openstack.allowed_cidrs: '10.0.0.0/33' is not a CIDR such as 203.0.113.0/24"
    ]
    assert errors_of("platform:\n  storage_size: 50GB\n") == [
        "c.yaml:2: platform.storage_size: '50GB' is not a size such as 512Mi, 20Gi or 1Ti"
    ]
    assert errors_of("platform:\n  minio:\n    storage_size: 20G\n") == [
        "c.yaml:3: platform.minio.storage_size: '20G' is not a size such as 512Mi, 20Gi or 1Ti"
    ]
    # the instance type is not in the file: the line is that of the nearest key that is
    assert errors_of("target: aws\naws:\n  arch: arm64\n") == [
        "c.yaml:2: aws.server_instance_type: t3.large is not an arm64 (Graviton) type; "
        "use e.g. t4g.large or set arch: amd64"
    ]
    spec = parse_spec(
        "target: aws\naws: {arch: arm64, server_instance_type: t4g.large, worker_instance_type: m7g.large}"
    )
    assert spec.aws is not None and spec.aws.arch == "arm64"


def test_a_cidr_may_have_host_bits_and_aws_checks_its_cidrs_too() -> None:
    spec = parse_spec("target: aws\naws: {allowed_cidrs: [192.0.2.1/24, '2001:db8::1/64']}\n", "c.yaml")
    assert spec.aws is not None and spec.aws.allowed_cidrs == ["192.0.2.1/24", "2001:db8::1/64"]
    assert errors_of("target: aws\naws:\n  allowed_cidrs: [192.0.2.0/24, office]\n") == [
        "c.yaml:3: aws.allowed_cidrs: 'office' is not a CIDR such as 203.0.113.0/24"
    ]


def test_a_graviton_family_has_a_g_after_its_first_letter_or_is_a1_and_the_worker_type_is_checked_too() -> None:
    spec = parse_spec(
        "target: aws\naws: {arch: arm64, server_instance_type: c7gn.xlarge, worker_instance_type: a1.large}"
    )
    assert spec.aws is not None
    assert (spec.aws.server_instance_type, spec.aws.worker_instance_type) == ("c7gn.xlarge", "a1.large")
    # a leading g is a GPU family (x86), not Graviton
    assert errors_of(
        "target: aws\naws: {arch: arm64, server_instance_type: m7g.large, worker_instance_type: g4dn.xlarge}"
    ) == [
        "c.yaml:2: aws.worker_instance_type: g4dn.xlarge is not an arm64 (Graviton) type; "
        "use e.g. t4g.large or set arch: amd64"
    ]
    assert parse_spec("target: aws\naws: {server_instance_type: g4dn.xlarge}\n").aws is not None  # amd64: any type


@pytest.mark.parametrize(
    ("text", "server", "agent"),
    [
        ("local: {server_arch: arm64}\n", "arm64", "amd64"),
        ("local: {worker_arch: arm64}\n", "amd64", "arm64"),
        ("target: openstack\nopenstack: {arch: arm64}\n", "arm64", "arm64"),
        (
            "target: aws\naws: {arch: arm64, server_instance_type: t4g.large, worker_instance_type: t4g.medium}\n",
            "arm64",
            "arm64",
        ),
        ("target: static\n", "amd64", "amd64"),
    ],
)
def test_each_target_tells_the_arch_of_its_nodes(text: str, server: str, agent: str) -> None:
    settings = parse_spec(text, "c.yaml").target_settings()
    assert (settings.node_arch("server"), settings.node_arch("agent")) == (server, agent)


def test_the_other_choice_of_each_setting_is_taken() -> None:
    openstack = parse_spec("target: openstack\nopenstack: {floating_ips: all, worker_power_off: shelve}\n").openstack
    assert openstack is not None and (openstack.floating_ips, openstack.worker_power_off) == ("all", "shelve")
    aws = parse_spec("target: aws\naws: {elastic_ips: all}\n").aws
    assert aws is not None and aws.elastic_ips == "all"
    local = parse_spec("local: {engine: podman}\n").local
    assert local is not None and local.engine == "podman"
    staging = parse_spec("platform: {tls: letsencrypt-staging, domain: a.example.org, acme_email: a@example.org}\n")
    assert staging.platform.tls_mode == "letsencrypt-staging"


STATIC = "target: static\nstatic:\n  inventory: boards.yml\n"


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ('[wakeonlan, "a\\0b"]', "item 1: control characters are not allowed"),
        ('[wakeonlan, x, "a\\nb"]', "item 2: control characters are not allowed"),
        ("['', x]", "the first item is the program to run: a plain name or path, without {placeholders}"),
        ("['wake}', x]", "the first item is the program to run: a plain name or path, without {placeholders}"),
        ("['{wake', x]", "the first item is the program to run: a plain name or path, without {placeholders}"),
        ("[x, 'a}b']", "item 1 ('a}b'): braces only as {name} placeholders"),
        (
            "[x, '{node}{pass_file}']",
            "item 1: {pass_file} names a secret, which a command line shows to every user "
            "of this machine; let the command read it from a file of its own",
        ),
        ("[" + ", ".join(["x"] * 65) + "]", "List should have at most 64 items after validation, not 65"),
    ],
)
@pytest.mark.parametrize("key", ["power_on_command", "power_off_command"])
def test_both_power_commands_are_checked(key: str, command: str, problem: str) -> None:
    assert errors_of(f"{STATIC}  {key}: {command}\n") == [f"c.yaml:4: static.{key}: {problem}"]


def test_power_commands_at_their_longest_and_a_static_cluster_without_autoscaler_needs_none() -> None:
    longest = "[" + ", ".join(["x"] * 64) + "]"
    spec = parse_spec(f"{STATIC}  power_on_command: {longest}\n  power_off_command: {longest}\n", "c.yaml")
    assert spec.static is not None and spec.static.power_on_command is not None
    assert (len(spec.static.power_on_command), spec.static.power_off_command) == (64, ["x"] * 64)
    plain = parse_spec(STATIC, "c.yaml").static
    assert plain is not None and (plain.power_on_command, plain.power_off_command) == (None, None)
    assert errors_of(f"{STATIC}  power_on_command: [wakeonlan, x]\nplatform: {{autoscaler: {{enabled: true}}}}\n") == [
        "c.yaml:2: static.power_off_command: platform.autoscaler needs it on target static; give the command "
        "(e.g. wake-on-LAN to switch on, SSH poweroff to switch off) or disable the autoscaler"
    ]
    # the autoscaler of another target needs no command
    assert parse_spec("platform: {autoscaler: {enabled: true}}\n").platform.autoscaler.enabled


def test_the_registry_mirror_and_its_host() -> None:
    assert parse_spec("platform: {registry_mirror: {url: '  '}}\n").platform.registry_mirror.url is None
    mirror = parse_spec(
        "platform: {registry_mirror: {url: 'https://reg.example.org:5000/'}}\n"
    ).platform.registry_mirror
    assert (mirror.url, mirror.host) == ("https://reg.example.org:5000", "reg.example.org:5000")
    # only slashes are stripped
    path = parse_spec("platform: {registry_mirror: {url: 'https://reg.example.org/mirrors/X/'}}\n").platform
    assert path.registry_mirror.url == "https://reg.example.org/mirrors/X"
    assert parse_spec("").platform.registry_mirror.host is None
    taken = parse_spec("platform: {registry_mirror: {registries: ['*', 'registry.example.org:5000']}}\n")
    assert taken.platform.registry_mirror.registries == ["*", "registry.example.org:5000"]
    assert errors_of("platform:\n  registry_mirror:\n    registries: [docker.io, Docker.io]\n") == [
        "c.yaml:3: platform.registry_mirror.registries: 'Docker.io' is not a registry host such as docker.io or "
        "registry.example.org:5000"
    ]
    # a long URL is cut at 80 characters
    assert errors_of(f"platform: {{registry_mirror: {{url: 'ftp://{'a' * 100}'}}}}\n") == [
        f"c.yaml:1: platform.registry_mirror.url: 'ftp://{'a' * 74}...' must be an http(s) URL such as "
        "https://registry.example.org:5000"
    ]


@pytest.mark.parametrize("name", ["a", "a" * 32, "lab-2", "x9"])
def test_names_at_the_limits_are_taken(name: str) -> None:
    assert parse_spec(f"name: {name}\n").name == name


@pytest.mark.parametrize(
    ("name", "shown_as"),
    [
        ("a" * 33, "'" + "a" * 33 + "'"),
        ("lab-", "'lab-'"),
        ("2lab", "'2lab'"),
        ("A" * 41, "'" + "A" * 40 + "...'"),
    ],
)
def test_names_past_the_limits_are_refused_and_a_long_one_is_cut(name: str, shown_as: str) -> None:
    """Without a source, the problem names the default spec file."""
    with pytest.raises(SpecError) as caught:
        parse_spec(f"name: '{name}'\n")
    assert caught.value.lines == [
        f"cluster.yaml:1: name: {shown_as} is not a valid name; use 1-32 lowercase letters, digits and '-', "
        "starting with a letter and not ending with '-'"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("versions: {k3s: 1.33}\n", "versions.k3s: Input should be a valid string"),
        ("versions: [k3s]\n", "versions: Input should be a valid dictionary"),
    ],
)
def test_versions_that_are_not_text_are_one_problem(text: str, problem: str) -> None:
    assert errors_of(text) == [f"c.yaml:1: {problem}"]


def test_a_static_inventory_is_found_beside_the_spec_file(tmp_path: Path) -> None:
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "cluster.yaml").write_text("target: static\nstatic: {inventory: hosts/boards.yml}\n")
    spec = load_spec(folder / "cluster.yaml")
    assert spec.static is not None and spec.static.inventory == str(folder.resolve() / "hosts" / "boards.yml")
    (folder / "local.yaml").write_text("name: lab\n")
    assert load_spec(folder / "local.yaml").name == "lab"


def test_version_override_outside_upstream_support_is_refused() -> None:
    assert errors_of("versions:\n  k3s: v1.30.4+k3s1\n") == [
        "c.yaml:2: versions.k3s: Kubernetes 1.30 (v1.30.4+k3s1) is older than Knative 1.20.0 supports (>= 1.32); "
        "raise k3s or lower knative_serving"
    ]
    assert parse_spec("versions:\n  knative_serving: 1.18.0\n  kourier: 1.18.1\n  k3s: v1.31.12+k3s1\n").versions


def test_yaml_syntax_error_names_the_line() -> None:
    assert errors_of("workers:\n  min: [1\n") == [
        "c.yaml:3: not valid YAML (expected ',' or ']', but got '<stream end>'); fix the syntax at that line"
    ]


def test_a_control_character_is_named_with_its_line() -> None:
    assert errors_of("name: a\nplatform:\n  domain: x\x00b\n") == [
        "c.yaml:3: not valid YAML (character U+0000 is not allowed); fix the syntax at that line"
    ]
    assert errors_of("\x07name: a\n") == [
        "c.yaml:1: not valid YAML (character U+0007 is not allowed); fix the syntax at that line"
    ]


def test_non_mapping_spec_is_refused() -> None:
    assert errors_of("- a\n- b\n") == [
        "c.yaml: the spec must be a YAML mapping; run `oscar-deploy init` for an example"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "none.yaml")
    assert caught.value.lines == [
        f"{tmp_path / 'none.yaml'}: no such spec file; create one with `oscar-deploy init` or pass -f FILE"
    ]
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("target", TARGETS)
def test_rendered_spec_round_trips_and_documents_every_key(target: str) -> None:
    text = render_spec("lab", target, "cluster.yaml")
    assert text.startswith("# yaml-language-server: $schema=./cluster.schema.json\n")
    spec = parse_spec(text)
    assert spec == ClusterSpec.model_validate({"name": "lab", "target": target})
    data = yaml.safe_load(text)
    assert set(data) == {"name", "target", "servers", "workers", target, "platform", "iac", "versions"}
    # every scalar key is preceded by its comment
    lines = text.splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not stripped.endswith(":"):
            assert lines[index - 1].strip().startswith("#"), f"no comment above {line!r}"


def test_json_schema_describes_the_model() -> None:
    schema = json.loads(json_schema())
    assert schema["title"] == "oscar-deploy cluster spec"
    assert schema["additionalProperties"] is False
    assert {"name", "target", "servers", "workers", "platform", "versions"} <= set(schema["properties"])


def test_readme_spec_reference_matches_the_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert reference_markdown() in readme, "README spec reference is stale: paste reference_markdown() output"


def test_a_key_given_twice_is_refused() -> None:
    assert errors_of("workers:\n  max: 5\n  max: 2\n") == [
        "c.yaml:3: workers.max: given twice (first at line 2); keep one"
    ]


def test_the_target_names_are_one_list() -> None:
    """`Target` (what the model accepts) spells exactly the targets that have a spec section."""
    from typing import get_args

    from oscar_deploy.spec.models import TARGET_SECTIONS, Target

    assert get_args(Target) == TARGETS == tuple(TARGET_SECTIONS)


def test_the_node_arches_are_the_arch_tables() -> None:
    """The spec's `Arch` names exactly the arches providers make nodes of (oscar_deploy/spec/arches.py)."""
    from typing import get_args

    from oscar_deploy.spec.arches import NODE_ARCHES
    from oscar_deploy.spec.models import Arch

    assert get_args(Arch) == NODE_ARCHES
