"""A corpus of real-world-style FDL files (tests/data/fdl-corpus/) covering every upstream feature: the JSON the
client sends is what OSCAR v4.1.2's create handler stores, with its defaults applied the same way.

The expected bodies are written by hand next to each file, each default commented with its upstream source
(pkg/handlers/create.go `checkValues` and `normalizeStoragePaths`, pkg/types/service.go `Kserve.UnmarshalJSON`,
pkg/utils/volume.go `ValidateVolumeConfig`; see tests/data/fdl-corpus/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
import yaml

from oscar_deploy.services.client import ApplyOutcome, OscarClient
from oscar_deploy.services.stored import SECRETS_DIGEST_ANNOTATION, stored_path
from oscar_deploy.services.templating import load_fdl
from oscar_deploy.state.endpoints import OscarAccess
from tests.unit.fake_oscar import FakeOscar

CORPUS = Path(__file__).resolve().parent.parent / "data" / "fdl-corpus"
FILES = sorted(path for path in CORPUS.glob("*.yaml") if not path.name.endswith(".expected.yaml"))


def _expected(path: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(path.with_name(f"{path.stem}.expected.yaml").read_text()))


def _go_zero_pruned(value: Any) -> Any:
    """Go's zero values and absence are one thing: drop "", 0, false, null, [] and {} from mappings."""
    if isinstance(value, dict):
        pruned = {key: _go_zero_pruned(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in (None, "", 0, False, [], {})}
    if isinstance(value, list):
        return [_go_zero_pruned(item) for item in value]
    return value


def test_the_corpus_covers_every_upstream_feature() -> None:
    bodies = [body for path in FILES for body in _expected(path)]
    features = {
        "kserve": any("kserve" in body for body in bodies),
        "federation members": any((body.get("federation") or {}).get("members") for body in bodies),
        "rucio input": any(item["storage_provider"].startswith("rucio") for b in bodies for item in b.get("input", [])),
        "mount with options": any((body.get("mount") or {}).get("options") for body in bodies),
        "volume created and mounted": {("size" in body["volume"]) for body in bodies if "volume" in body}
        == {True, False},
        "expose with nodePort 0": any(0 in (body.get("expose") or {}).get("nodePort", []) for body in bodies),
        "secrets": any((body.get("environment") or {}).get("secrets") for body in bodies),
        "allowed users": any(body.get("allowed_users") for body in bodies),
        "every provider type": {kind for body in bodies for kind in (body.get("storage_providers") or {})}
        >= {"s3", "webdav", "onedata", "rucio"},
    }
    assert [name for name, covered in features.items() if not covered] == []


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_the_body_sent_is_what_the_create_handler_stores(path: Path) -> None:
    document = load_fdl(path)
    assert [definition.body for definition in document.services] == _expected(path)


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_the_fake_stores_what_is_sent_and_a_second_apply_changes_nothing(path: Path, fake: FakeOscar) -> None:
    """The fake applies the create handler's rules on its own (tests/unit/fake_oscar.py); what it stores matches
    the body key by key, apart from what the server adds itself."""
    document = load_fdl(path)
    with OscarClient(OscarAccess(url=fake.url, user=fake.user, password=fake.password)) as client:
        for definition in document.services:
            assert client.apply_service(definition.body) == ApplyOutcome("created")
            stored = client.get_service(definition.name)
            body = definition.body
            federated = bool((body.get("federation") or {}).get("members"))
            for key, value in body.items():
                if key in ("input", "output") and federated:  # sent as written, stored normalised (create.go)
                    value = [
                        {**item, "path": stored_path(definition.name, item["storage_provider"], item["path"])}
                        for item in value
                    ]
                if key == "labels":  # checkValues adds the server's own labels
                    assert value.items() <= stored["labels"].items()
                elif key == "annotations":  # apply adds the digest of the secrets (services/stored.py)
                    assert {**value, SECRETS_DIGEST_ANNOTATION: ANY} == stored[key]
                elif key == "storage_providers":  # checkValues adds minio.default with hidden credentials
                    providers = {**stored[key], "minio": dict(stored[key].get("minio") or {})}
                    assert providers["minio"].pop("default")["access_key"] == "hidden"
                    assert _go_zero_pruned(providers) == value
                elif key == "environment":  # secret values are blanked once they are in a Kubernetes Secret
                    assert stored[key].get("variables") == value.get("variables")
                    assert sorted(stored[key].get("secrets") or {}) == sorted(value.get("secrets") or {})
                else:
                    assert _go_zero_pruned(stored[key]) == _go_zero_pruned(value), key
            assert client.apply_service(definition.body) == ApplyOutcome("unchanged")
    assert [method for method, *_ in fake.requests if method in ("POST", "PUT")] == ["POST"] * len(document.services)
