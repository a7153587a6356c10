"""`render`: the platform as plain YAML for GitOps users, from the same builder the stack uses.

DIR/objects.yaml                        every object we generate but the Secrets, in apply order
DIR/secrets.yaml                        the Secrets (only when asked for; mode 0600)
DIR/third-party/<component>/kustomization.yaml
                                        the pinned upstream release manifests and our JSON patches; from an
                                        air-gap bundle, the manifests are copied beside it and named by file
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from oscar_deploy.platform.model import JsonPatch, KubeObject, PlatformObjects, ThirdPartyManifest
from oscar_deploy.support.files import check_write_target, write_user_file

OBJECTS_FILE = "objects.yaml"
SECRETS_FILE = "secrets.yaml"
THIRD_PARTY_DIR = "third-party"
RENDERED = "rendered manifest"
# Stands for every secret value when Secrets are not rendered; it must never reach a written file.
REDACTED = "<redacted-by-oscar-deploy>"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (scripts, Helm values) as literal blocks and no anchors, so the YAML stays readable."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def dump_documents(objects: list[Any]) -> str:
    text = yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    return text if text.endswith("\n") else text + "\n"


def kustomization(manifests: list[ThirdPartyManifest], local: bool = False) -> dict[str, Any]:
    """Resources by upstream URL, or with `local` by file name (the copies written beside it)."""
    patches = [_kustomize_patch(patch) for manifest in manifests for patch in manifest.patches]
    data: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [manifest.file if local else manifest.url for manifest in manifests],
    }
    if patches:
        data["patches"] = patches
    return data


def _kustomize_patch(patch: JsonPatch) -> dict[str, Any]:
    group, _, version = patch.api_version.rpartition("/")
    target: dict[str, str] = {"version": version, "kind": patch.kind, "name": patch.name}
    if group:
        target["group"] = group
    if patch.namespace:
        target["namespace"] = patch.namespace
    return {"target": target, "patch": dump_documents([list(patch.operations)]).strip()}


def _kustomization_text(manifests: list[ThirdPartyManifest], local: bool = False) -> str:
    header = ["# Written by oscar-deploy render: upstream release manifests and oscar-deploy's settings for them."]
    for manifest in manifests:
        pin = f"sha256 {manifest.sha256}" if manifest.sha256 else "UNPINNED (no sha256 in the catalogue yet)"
        header.append(f"# {manifest.url}: {pin}")
    for manifest in manifests:
        header += [f"# patch {p.kind} {p.name}: {p.why}" for p in manifest.patches]
    return "\n".join(header) + "\n" + dump_documents([kustomization(manifests, local)])


def render_platform(
    platform: PlatformObjects, directory: Path, with_secrets: bool, manifest_texts: dict[str, str] | None = None
) -> list[Path]:
    """Write the platform's YAML into `directory`; returns the files written. With `manifest_texts` (by URL, from
    an air-gap bundle) the release manifests are written beside their kustomization, which names them by file.

    Every target is checked before the first write (a folder, a FIFO or a path under a file is refused), so a
    refused render writes nothing."""
    objects_text = (
        "# Written by oscar-deploy render: the OSCAR platform's own objects, in apply order.\n"
        + _secrets_note(platform.secrets, with_secrets)
        + dump_documents(platform.non_secrets)
    )
    if REDACTED in objects_text:
        raise AssertionError("a secret value reached a non-Secret object")  # the builder's own invariant
    files: list[tuple[Path, str, int]] = [(directory / OBJECTS_FILE, objects_text, 0o644)]
    if with_secrets:
        files.append((directory / SECRETS_FILE, dump_documents(platform.secrets), 0o600))
    by_component: dict[str, list[ThirdPartyManifest]] = {}
    for manifest in platform.third_party:
        by_component.setdefault(manifest.component, []).append(manifest)
    for component, manifests in by_component.items():
        folder = directory / THIRD_PARTY_DIR / component.replace("_", "-")
        if manifest_texts is not None:
            files += [(folder / manifest.file, manifest_texts[manifest.url], 0o644) for manifest in manifests]
        kustomization_text = _kustomization_text(manifests, local=manifest_texts is not None)
        files.append((folder / "kustomization.yaml", kustomization_text, 0o644))
    for path, _text, _mode in files:
        check_write_target(path, RENDERED, create_parents=True)
    for path, text, mode in files:
        write_user_file(path, text, RENDERED, mode, create_parents=True)
    return [path for path, _text, _mode in files]


def _secrets_note(secrets: list[KubeObject], with_secrets: bool) -> str:
    if with_secrets:
        return f"# The Secrets are in {SECRETS_FILE} (keep it private).\n"
    lines = ["# Not included: these Secrets (render with --with-secrets, or create them with these keys):"]
    for secret in secrets:
        meta = secret["metadata"]
        lines.append(f"#   {meta['namespace']}/{meta['name']}: {', '.join(secret['stringData'])}")
    return "\n".join(lines) + "\n"
