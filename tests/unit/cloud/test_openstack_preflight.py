"""OpenStack preflight through openstacksdk against the local OpenStack double, with a temporary clouds.yaml."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from oscar_deploy.providers.base import PlannedNode
from oscar_deploy.providers.gaps import PreflightError
from oscar_deploy.providers.openstack.preflight import needs_for, preflight, provider_settings
from oscar_deploy.spec.models import ClusterSpec, parse_spec
from tests.doubles.openstack_api import PROJECT_ID, FakeOpenStack

ACCESS_TOKEN = "eyJ-valid-access-token"


def egi_cloud(auth_url: str) -> dict[str, object]:
    """A clouds.yaml entry as EGI FedCloud's (an OIDC access token, for the double's identity provider)."""
    return {
        "auth_type": "v3oidcaccesstoken",
        "auth": {
            "auth_url": auth_url,
            "identity_provider": "egi.eu",
            "protocol": "openid",
            "access_token": ACCESS_TOKEN,
            "project_id": PROJECT_ID,
        },
        "identity_api_version": 3,
        "region_name": "RegionOne",
    }


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def cloud_content() -> dict[str, object]:
    return {
        "images": [{"id": "img-noble", "name": "Ubuntu 24.04", "min_disk": 10, "architecture": "x86_64"}],
        "flavors": [
            {"id": "f-large", "name": "m1.large", "vcpus": 4, "ram": 8192, "disk": 40},
            {"id": "f-medium", "name": "m1.medium", "vcpus": 2, "ram": 4096, "disk": 20},
            {"id": "f-tiny", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1},
        ],
        "networks": [
            {"id": "net-public", "name": "public", "router:external": True},
            {"id": "net-private", "name": "private"},
        ],
    }


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenStack]:
    server = FakeOpenStack(
        **cloud_content(), access_tokens={("egi.eu", "openid"): {ACCESS_TOKEN}}, passwords={"researcher": "right"}
    )  # type: ignore[arg-type]
    clouds = {
        "clouds": {
            "egi": egi_cloud(server.auth_url),
            "lab": {
                "auth_type": "v3password",
                "auth": {
                    "auth_url": server.auth_url,
                    "username": "researcher",
                    "password": "wrong",
                    "project_id": PROJECT_ID,
                    "user_domain_name": "Default",
                },
                "region_name": "RegionOne",
            },
        }
    }
    config = tmp_path / "clouds.yaml"
    config.write_text(yaml.safe_dump(clouds))
    config.chmod(0o600)
    for name in [name for name in os.environ if name.startswith("OS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(config))
    monkeypatch.chdir(tmp_path)
    yield server
    server.stop()


def spec(extra: str = "", workers: int = 2) -> ClusterSpec:
    return parse_spec(
        f"name: lab\ntarget: openstack\nworkers: {{initial: {workers}, max: 10}}\nopenstack:\n  cloud: egi\n{extra}"
    )


def test_a_cloud_that_fits_has_no_gaps(cloud: FakeOpenStack) -> None:
    report = preflight(spec())
    assert report.gaps == []
    assert report.facts["auth_type"] == "v3oidcaccesstoken"
    assert report.facts["project_id"] == PROJECT_ID
    assert report.facts["image_id"] == "img-noble"
    assert cloud.requests[0] == "POST /identity/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/openid/auth"
    assert f"GET /network/v2.0/quotas/{PROJECT_ID}/details" in cloud.requests
    assert "GET /compute/v2.1/limits" in cloud.requests


def test_missing_image(cloud: FakeOpenStack) -> None:
    cloud.images = []
    assert preflight(spec()).gaps == [
        "openstack.image: no image 'Ubuntu 24.04' in cloud 'egi'; pick one from `openstack image list`"
    ]


def test_missing_flavor(cloud: FakeOpenStack) -> None:
    report = preflight(spec("  worker_flavor: m1.huge\n"))
    assert report.gaps == [
        "openstack.worker_flavor: no flavor 'm1.huge' in cloud 'egi'; pick one from `openstack flavor list`"
    ]


def test_quota_exceeded_names_the_key_and_the_fix(cloud: FakeOpenStack) -> None:
    cloud.compute_limits.update(maxTotalCores=20, totalCoresUsed=16)
    assert preflight(spec()).gaps == [
        "workers.initial: the nodes need 8 cores, the quota leaves 4 of 20; use smaller flavors or fewer workers, "
        "or ask the cloud's support to raise the quota"
    ]


def test_quota_boundary_exactly_enough_then_one_short(cloud: FakeOpenStack) -> None:
    # 1 server (m1.large: 4 vCPU, 8192 MiB) + 2 workers (m1.medium: 2 vCPU, 4096 MiB) = 3 instances, 8 cores, 16384 MiB
    cloud.compute_limits.update(
        maxTotalInstances=5,
        totalInstancesUsed=2,
        maxTotalCores=10,
        totalCoresUsed=2,
        maxTotalRAMSize=20480,
        totalRAMUsed=4096,
    )
    cloud.quota = {
        "floatingip": {"limit": 2, "used": 1, "reserved": 0},
        "security_group": {"limit": 3, "used": 2, "reserved": 0},
    }
    assert preflight(spec()).gaps == []
    cloud.compute_limits.update(totalInstancesUsed=3, totalCoresUsed=3, totalRAMUsed=4097)
    cloud.quota = {
        "floatingip": {"limit": 2, "used": 1, "reserved": 1},
        "security_group": {"limit": 3, "used": 3, "reserved": 0},
    }
    gaps = preflight(spec()).gaps
    assert [gap.split(";")[0] for gap in gaps] == [
        "workers.initial: the nodes need 3 instances, the quota leaves 2 of 5",
        "workers.initial: the nodes need 8 cores, the quota leaves 7 of 10",
        "workers.initial: the nodes need 16384 MiB of RAM, the quota leaves 16383 of 20480",
        "openstack.floating_ips: the nodes need 1 floating IPs, the quota leaves 0 of 2",
        "openstack.cloud: the nodes need 1 security groups, the quota leaves 0 of 3",
    ]


def test_unlimited_quota_is_no_gap(cloud: FakeOpenStack) -> None:
    cloud.compute_limits.update(maxTotalInstances=-1, maxTotalCores=-1, maxTotalRAMSize=-1, totalCoresUsed=999)
    cloud.quota = {
        "floatingip": {"limit": -1, "used": 50, "reserved": 0},
        "security_group": {"limit": -1, "used": 9, "reserved": 0},
    }
    assert preflight(spec(workers=9)).gaps == []


def test_floating_ips_on_all_nodes_count_against_the_quota(cloud: FakeOpenStack) -> None:
    cloud.quota["floatingip"] = {"limit": 3, "used": 0, "reserved": 0}
    assert preflight(spec("  floating_ips: all\n")).gaps == []  # 1 server + 2 workers: exactly 3
    gaps = preflight(spec("  floating_ips: all\n", workers=3)).gaps
    assert gaps == [
        "openstack.floating_ips: the nodes need 4 floating IPs, the quota leaves 3 of 3; "
        "set openstack.floating_ips: first-server, release unused floating IPs, or ask for more"
    ]


def test_every_gap_in_one_report(cloud: FakeOpenStack) -> None:
    cloud.images = []
    cloud.networks = [{"id": "net-public", "name": "public"}]
    cloud.compute_limits.update(maxTotalInstances=1)
    gaps = preflight(spec("  server_flavor: m1.tiny\n  worker_flavor: m9.none\n  network: lab-net\n")).gaps
    assert gaps == [
        "openstack.server_flavor: flavor 'm1.tiny' has 512 MiB RAM, k3s servers with the platform need 4096; "
        "pick a larger flavor",
        "openstack.worker_flavor: no flavor 'm9.none' in cloud 'egi'; pick one from `openstack flavor list`",
        "openstack.image: no image 'Ubuntu 24.04' in cloud 'egi'; pick one from `openstack image list`",
        "openstack.external_network: network 'public' is not external, so it gives no floating IPs; "
        "pick one from `openstack network list --external`",
        "openstack.network: no network 'lab-net' in this project; pick one from `openstack network list`",
        "workers.initial: the nodes need 3 instances, the quota leaves 1 of 1; use smaller flavors or fewer workers, "
        "or ask the cloud's support to raise the quota",
    ]
    with pytest.raises(PreflightError) as raised:
        preflight(spec("  server_flavor: m1.tiny\n")).raise_for_gaps()
    assert raised.value.exit_code == 2
    assert raised.value.lines == str(raised.value).splitlines()


def test_image_checks_arch_disk_and_duplicates(cloud: FakeOpenStack) -> None:
    cloud.images = [{"id": "img-arm", "name": "Ubuntu 24.04", "architecture": "aarch64", "min_disk": 30}]
    assert preflight(spec()).gaps == [
        "openstack.image: image 'Ubuntu 24.04' is aarch64 but the nodes are amd64; "
        "pick an image for amd64 or set openstack.arch: arm64",
        "openstack.worker_flavor: flavor 'm1.medium' has a 20 GiB disk, image 'Ubuntu 24.04' needs 30; "
        "pick a flavor with a larger disk",
    ]
    assert preflight(spec("  arch: arm64\n")).gaps[:1] == [
        "openstack.worker_flavor: flavor 'm1.medium' has a 20 GiB disk, image 'Ubuntu 24.04' needs 30; "
        "pick a flavor with a larger disk"
    ]
    cloud.images = [{"id": "img-1", "name": "Ubuntu 24.04"}, {"id": "img-2", "name": "Ubuntu 24.04"}]
    assert preflight(spec()).gaps == [
        "openstack.image: several images are named 'Ubuntu 24.04'; use the image's id instead of its name"
    ]


def test_expired_access_token_is_one_line_saying_how_to_get_a_new_one(cloud: FakeOpenStack) -> None:
    cloud.access_tokens[("egi.eu", "openid")] = set()
    report = preflight(spec())
    assert report.gaps == [
        "openstack.cloud: the OIDC access token of cloud 'egi' is expired or revoked (Keystone answered 401); "
        "get a new one (access tokens are short-lived; EGI Check-in: https://aai.egi.eu/token or oidc-agent) "
        "and put it in clouds.yaml under clouds.egi.auth.access_token"
    ]
    assert ACCESS_TOKEN not in report.gaps[0]
    assert cloud.requests == ["POST /identity/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/openid/auth"]


def test_refused_password_is_one_line(cloud: FakeOpenStack) -> None:
    report = preflight(parse_spec("name: lab\ntarget: openstack\nopenstack: {cloud: lab}\n"))
    assert report.gaps == [
        "openstack.cloud: cloud 'lab' refused the credentials in clouds.yaml (Keystone answered 401); "
        "renew them (for example a new application credential from your dashboard)"
    ]


def test_a_cloud_without_its_access_token(cloud: FakeOpenStack) -> None:
    config = Path(os.environ["OS_CLIENT_CONFIG_FILE"])
    data = yaml.safe_load(config.read_text())
    del data["clouds"]["egi"]["auth"]["access_token"]
    config.write_text(yaml.safe_dump(data))
    assert preflight(spec()).gaps == [
        "openstack.cloud: cloud 'egi' lacks access_token in clouds.yaml; add it under clouds.egi.auth"
    ]
    assert cloud.requests == []


def test_the_report_never_shows_the_token(cloud: FakeOpenStack) -> None:
    report = preflight(spec())
    assert report.facts["token"] not in repr(report)
    assert ACCESS_TOKEN not in repr(report)


def test_unknown_cloud_lists_the_known_ones(cloud: FakeOpenStack) -> None:
    report = preflight(parse_spec("name: lab\ntarget: openstack\nopenstack: {cloud: nowhere}\n"))
    assert report.gaps == [
        "openstack.cloud: no cloud 'nowhere' in clouds.yaml (./, ~/.config/openstack/, /etc/openstack/ or "
        "OS_CLIENT_CONFIG_FILE); set it to one of: egi, lab, or download clouds.yaml from your dashboard"
    ]
    assert cloud.requests == []


def test_unreachable_identity_service(cloud: FakeOpenStack, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = Path(os.environ["OS_CLIENT_CONFIG_FILE"])
    data = yaml.safe_load(config.read_text())
    data["clouds"]["egi"]["auth"]["auth_url"] = f"http://127.0.0.1:{closed_port}/identity/v3"
    config.write_text(yaml.safe_dump(data))
    assert preflight(spec()).gaps == [
        "openstack.cloud: cannot reach the identity service of cloud 'egi' (ConnectFailure); "
        "check auth_url in clouds.yaml and your network"
    ]


def test_a_scale_out_needs_only_its_new_nodes(cloud: FakeOpenStack) -> None:
    cloud.compute_limits.update(maxTotalInstances=4, totalInstancesUsed=3)
    cloud.quota = {
        "floatingip": {"limit": 1, "used": 1, "reserved": 0},
        "security_group": {"limit": 1, "used": 1, "reserved": 0},
    }
    the_spec = spec()
    needs = needs_for(the_spec, [PlannedNode("agent-2", "agent", "amd64")], new_cluster=False)
    assert (needs.floating_ips, needs.security_groups) == (0, 0)
    assert preflight(the_spec, needs).gaps == []
    needs = needs_for(
        the_spec,
        [PlannedNode("agent-2", "agent", "amd64"), PlannedNode("agent-3", "agent", "amd64")],
        new_cluster=False,
    )
    assert [gap.split(";")[0] for gap in preflight(the_spec, needs).gaps] == [
        "workers.initial: the nodes need 2 instances, the quota leaves 1 of 4"
    ]


def test_provider_settings_hand_oidc_clouds_a_keystone_token_in_the_environment(cloud: FakeOpenStack) -> None:
    report = preflight(spec())
    settings = provider_settings(report.facts)
    assert settings.config == {
        "openstack:authUrl": cloud.auth_url,
        "openstack:tenantId": PROJECT_ID,
        "openstack:region": "RegionOne",
    }
    token = settings.environment["OS_TOKEN"]
    assert len(token) == 32 and token != ACCESS_TOKEN
    assert settings.environment["OS_CLOUD"] == ""
    assert token not in repr(settings)
    password_cloud = provider_settings({**report.facts, "auth_type": "v3applicationcredential"})
    assert (password_cloud.config, password_cloud.environment) == ({"openstack:cloud": "egi"}, {})
