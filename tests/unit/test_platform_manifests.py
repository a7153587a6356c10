"""Third-party release manifests: the checked cache (pinned, trusted on first use, offline) and the patches."""

from __future__ import annotations

import hashlib
import json
import urllib.error
from pathlib import Path

import pytest

from oscar_deploy.platform.jsonpatch import apply_operations, apply_patches
from oscar_deploy.platform.manifests import LOCK_FILE, ManifestCache, manifest_objects
from oscar_deploy.platform.model import JsonPatch, ThirdPartyManifest
from oscar_deploy.support.errors import OperationError

URL = "https://example.invalid/releases/v1/app.yaml"
TEXT = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n}\ndata: {a: b}\n"
DIGEST = hashlib.sha256(TEXT.encode()).hexdigest()


class Source:
    """Stands for the release server: serves one text, or fails like an offline machine (URLError)."""

    def __init__(self, text: str | None) -> None:
        self.text = text
        self.calls = 0

    def __call__(self, url: str) -> bytes:
        self.calls += 1
        if self.text is None:
            raise urllib.error.URLError("no route to host")
        return self.text.encode()


def manifest(sha256: str | None) -> ThirdPartyManifest:
    return ThirdPartyManifest(component="app", file="app.yaml", url=URL, sha256=sha256)


def test_pinned_manifest_is_downloaded_once_then_read_from_the_cache(tmp_path: Path) -> None:
    source = Source(TEXT)
    assert ManifestCache(tmp_path, source).text(manifest(DIGEST)) == TEXT
    assert ManifestCache(tmp_path, Source(None)).text(manifest(DIGEST)) == TEXT
    assert source.calls == 1
    assert not (tmp_path / LOCK_FILE).exists()


def test_pinned_manifest_with_another_digest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OperationError) as caught:
        ManifestCache(tmp_path, Source(TEXT + "# changed\n")).text(manifest(DIGEST))
    changed = hashlib.sha256((TEXT + "# changed\n").encode()).hexdigest()
    assert str(caught.value) == (
        f"{URL}: sha256 {changed}, but the catalogue pins {DIGEST}; the release changed or the download was "
        "tampered with"
    )
    assert list(tmp_path.iterdir()) == []


def test_damaged_cache_copy_is_fetched_again(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path, Source(TEXT))
    cache.text(manifest(DIGEST))
    cache.path_for(manifest(DIGEST)).write_text("garbage")
    assert cache.text(manifest(DIGEST)) == TEXT


def test_unpinned_manifest_is_trusted_on_first_use_and_held_to_it(tmp_path: Path) -> None:
    first = ManifestCache(tmp_path, Source(TEXT))
    assert first.text(manifest(None)) == TEXT
    assert first.recorded == [(URL, DIGEST)]
    assert json.loads((tmp_path / LOCK_FILE).read_text()) == {URL: DIGEST}
    first.path_for(manifest(None)).unlink()
    with pytest.raises(OperationError) as caught:
        ManifestCache(tmp_path, Source("kind: Other\n")).text(manifest(None))
    assert f"but {tmp_path / LOCK_FILE} recorded {DIGEST}" in str(caught.value)


def test_offline_without_a_cached_copy_says_where_to_put_it(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path, Source(None))
    with pytest.raises(OperationError) as caught:
        cache.text(manifest(DIGEST))
    assert str(caught.value) == (
        f"{URL}: cannot download (<urlopen error no route to host>); copy the file to "
        f"{cache.path_for(manifest(DIGEST))} on a connected machine or retry when online"
    )


def test_patches_apply_to_their_one_target_and_fail_loudly_otherwise() -> None:
    patch = JsonPatch("v1", "ConfigMap", "c", "n", ({"op": "add", "path": "/data/x~1y", "value": "z"},), "why")
    (patched,) = manifest_objects(
        ThirdPartyManifest(component="app", file="app.yaml", url=URL, sha256=None, patches=(patch,)), TEXT
    )
    assert patched["data"] == {"a": "b", "x/y": "z"}
    with pytest.raises(OperationError) as missing:
        apply_patches([], [patch], URL)
    assert str(missing.value) == f"{URL}: ConfigMap n/c: expected once in the upstream manifest, found 0 times"
    with pytest.raises(OperationError) as no_field:
        apply_operations({"spec": {}}, [{"op": "replace", "path": "/spec/type", "value": "ClusterIP"}], "Service s")
    assert str(no_field.value) == "Service s: patch replace /spec/type: no such field in the upstream manifest"
    with pytest.raises(OperationError) as no_item:
        apply_operations({"a": []}, [{"op": "add", "path": "/a/0/args/-", "value": "x"}], "Deployment d")
    assert str(no_item.value) == "Deployment d: patch /a/0/args/-: no list item 0"
    assert apply_operations({"a": [1, 3]}, [{"op": "add", "path": "/a/1", "value": 2}], "x") == {"a": [1, 2, 3]}
    assert apply_operations({"a": {"b": 1}}, [{"op": "remove", "path": "/a/b"}], "x") == {"a": {}}


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(OperationError) as caught:
        manifest_objects(manifest(None), "- a\n- b\n")
    assert str(caught.value) == f"{URL}: a document is not a Kubernetes object"
