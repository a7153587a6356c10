"""`oscar-deploy render DIR`: the files, their modes, no secret without --with-secrets, and every object valid
against the Kubernetes OpenAPI schema of the pinned k3s minor (kubernetes-validate, offline) or, for custom
resources, against the CRD kept in tests/data/crds (labelled with source and version): its structural schema
(jsonschema, unknown fields refused) and its CEL rules (cel-python), evaluated as the API server does on create,
on the object with the schema's defaults filled in."""

from __future__ import annotations

import copy
import os
import re
import stat
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import kubernetes_validate
import pytest
import yaml

from oscar_deploy.spec.catalogue import load_catalogue
from tests.conftest import Cli

CRD_DIR = Path(__file__).resolve().parents[1] / "data" / "crds"
GATEWAY = "traefik-gateway"
SPEC = "name: demo\nplatform:\n  oscar:\n    allowed_image_prefixes: [ghcr.io/grycap/]\n"
LE_SPEC = "name: demo\nplatform:\n  domain: oscar.example.org\n  acme_email: ops@example.org\n"
# Every custom resource the platform creates; each must have its CRD schema in tests/data/crds.
CUSTOM_KINDS = {
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "ClusterIssuer"),
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("helm.cattle.io/v1", "HelmChart"),
}


def k3s_minor() -> str:
    match = re.match(r"^v(\d+)\.(\d+)\.", load_catalogue().version("k3s"))
    assert match
    return f"{match.group(1)}.{match.group(2)}"


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in CRD_DIR.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused, as the API server's strict field validation refuses them."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    open_object = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and not open_object:
        result["additionalProperties"] = False
    return result


def field_schema(schema: Any, key: str) -> Any:
    """The schema of an object's field `key`: its own, else the one for additional properties, else none."""
    extra = schema.get("additionalProperties")
    return schema.get("properties", {}).get(key, extra if isinstance(extra, dict) else {})


def with_defaults(schema: Any, value: Any) -> Any:
    """`value` as the API server stores it: every missing field that has a schema default filled in, at any depth."""
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        filled = {key: copy.deepcopy(sub["default"]) for key, sub in properties.items() if "default" in sub}
        filled.update(value)
        return {key: with_defaults(field_schema(schema, key), item) for key, item in filled.items()}
    if isinstance(value, list):
        items = schema.get("items")
        return [with_defaults(items if isinstance(items, dict) else {}, item) for item in value]
    return value


CEL = celpy.Environment()
PROGRAMS: dict[str, Any] = {}


def rule_failures(schema: Any, value: Any, path: str, ran: list[str]) -> list[str]:
    """The messages of the CEL rules (x-kubernetes-validations) that `value` breaks, wherever a rule applies to a
    field it has; `ran` collects every rule evaluated."""
    failures = []
    for rule in schema.get("x-kubernetes-validations", []):
        program = PROGRAMS.get(rule["rule"])
        if program is None:
            program = PROGRAMS[rule["rule"]] = CEL.program(CEL.compile(rule["rule"]))
        ran.append(rule["rule"])
        try:
            result = program.evaluate({"self": celpy.json_to_cel(value)})
        except celpy.CELEvalError as exc:
            result = exc
        if isinstance(result, celpy.CELEvalError):
            failures.append(f"{path}: {rule['rule']} could not be evaluated ({result.args[0]})")
        elif result != celpy.celtypes.BoolType(True):
            failures.append(f"{path}: {rule.get('message', rule['rule'])}")
    if isinstance(value, dict):
        for key, item in value.items():
            failures += rule_failures(field_schema(schema, key), item, f"{path}.{key}", ran)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            failures += rule_failures(schema["items"], item, f"{path}[{index}]", ran)
    return failures


def crd_failures(obj: dict[str, Any], schema: Any, ran: list[str] | None = None) -> list[str]:
    """What the API server would refuse of `obj` by its CRD: the structural schema, then the CEL rules."""
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(obj)
    ]
    return errors or rule_failures(schema, with_defaults(schema, obj), obj["kind"], [] if ran is None else ran)


def render(cli: Cli, spec: str, *args: str) -> Any:
    (cli.cwd / "cluster.yaml").write_text(spec)
    return cli("render", "out", *args)


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("spec", [SPEC, LE_SPEC, "name: demo\nplatform:\n  storage_class: cephfs\n"])
def test_every_rendered_object_is_valid(cli: Cli, spec: str) -> None:
    result = render(cli, spec, "--public-address", "203.0.113.5", "--with-secrets")
    assert result.exit_code == 0, result.output
    out = cli.cwd / "out"
    objects = documents(out / "objects.yaml") + documents(out / "secrets.yaml")
    schemas = crd_schemas()
    assert set(schemas) >= CUSTOM_KINDS
    checked_custom = set()
    rules_ran: dict[str, list[str]] = {}
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in schemas:
            assert crd_failures(obj, schemas[key], rules_ran.setdefault(obj["kind"], [])) == [], obj["metadata"]
            checked_custom.add(key)
        else:
            kubernetes_validate.validate(obj, k3s_minor(), strict=True)
    assert checked_custom == CUSTOM_KINDS
    # The Gateway API CRDs carry CEL rules on the fields we set; cert-manager's and helm-controller's carry none.
    assert {kind: len(set(rules)) for kind, rules in rules_ran.items()} == {
        "HelmChart": 0,
        "ClusterIssuer": 0,
        "Certificate": 0,
        "Gateway": 7,
        "HTTPRoute": 40,
    }, "the distinct CEL rules that apply to what we set"


def set_path(obj: Any, path: str, value: Any) -> None:
    """Set `value` at a dotted path of keys and list indexes (`spec.listeners.0.port`); `None` deletes."""
    *parents, last = path.split(".")
    for step in parents:
        obj = obj[int(step)] if isinstance(obj, list) else obj[step]
    if value is None:
        del obj[last]
    else:
        obj[int(last) if isinstance(obj, list) else last] = value


@pytest.mark.parametrize(
    ("spec", "kind", "name", "path", "value", "complaint"),
    [
        (SPEC, "HelmChart", "traefik", "spec.valuesContents", "typo", "Additional properties"),
        (
            SPEC,
            "Gateway",
            "traefik-gateway",
            "spec.listeners.1.port",
            70000,
            "70000 is greater than the maximum of 65535",
        ),
        (SPEC, "Gateway", GATEWAY, "spec.listeners.0.name", None, "'name' is a required property"),
        (SPEC, "HTTPRoute", "oscar", "spec.rules.0.matches.0.path.type", "Prefix", "'Prefix' is not one of"),
        (SPEC, "HTTPRoute", "minio", "spec.parentRefs.0.sectionName", "Web Secure", "does not match"),
        (SPEC, "Certificate", "oscar-ca", "spec.privateKey.algorithm", "DSA", "'DSA' is not one of"),
        (SPEC, "Certificate", "oscar-gateway-tls", "spec.secretName", None, "'secretName' is a required property"),
        (SPEC, "ClusterIssuer", "oscar-ca", "spec.ca.secretName", None, "'secretName' is a required property"),
        (LE_SPEC, "ClusterIssuer", "oscar-letsencrypt", "spec.acme.privateKeySecretRef", None, "required property"),
        # CEL rules of the Gateway API CRDs.
        (SPEC, "Gateway", GATEWAY, "spec.listeners.1.name", "web", "Listener name must be unique within the Gateway"),
        (SPEC, "Gateway", GATEWAY, "spec.listeners.1.tls.mode", "Passthrough", "tls mode must be Terminate for proto"),
        (
            SPEC,
            "Gateway",
            GATEWAY,
            "spec.listeners.0.tls",
            {"certificateRefs": [{"name": "x"}]},
            "tls must not be specified for",
        ),
        (SPEC, "HTTPRoute", "oscar", "spec.rules.0.matches.0.path.value", "/a//b", "must not contain '//' when type"),
        (SPEC, "HTTPRoute", "oscar", "spec.rules.0.backendRefs.0.port", None, "Must have port for Service reference"),
    ],
)
def test_crd_schema_check_catches_a_wrong_field(
    cli: Cli, spec: str, kind: str, name: str, path: str, value: Any, complaint: str
) -> None:
    render(cli, spec, "--public-address", "203.0.113.5")
    objects = documents(cli.cwd / "out" / "objects.yaml")
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    schema = crd_schemas()[(obj["apiVersion"], kind)]
    assert crd_failures(obj, schema) == []
    set_path(obj, path, value)
    (failure,) = crd_failures(obj, schema)
    assert complaint in failure


def test_kubernetes_schema_check_catches_a_wrong_field(cli: Cli) -> None:
    render(cli, SPEC, "--public-address", "203.0.113.5")
    (deployment,) = [o for o in documents(cli.cwd / "out" / "objects.yaml") if o["kind"] == "Deployment"][1:]
    deployment["spec"]["template"]["spec"]["containers"][0]["envv"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, k3s_minor(), strict=True)


def test_secrets_only_with_the_flag_and_private(cli: Cli, state_home: Path) -> None:
    result = render(cli, SPEC, "--public-address", "203.0.113.5")
    assert result.exit_code == 0, result.output
    out = cli.cwd / "out"
    assert not (out / "secrets.yaml").exists()
    text = (out / "objects.yaml").read_text()
    assert [o for o in documents(out / "objects.yaml") if o["kind"] == "Secret"] == []
    assert "&id" not in text and "*id" not in text
    assert "#   oscar-svc/minio: accessKey, secretKey, oidc_uid" in text
    assert "left out 3 Secrets (--with-secrets writes them)" in result.stdout
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml")) == [
        "objects.yaml",
        "third-party/cert-manager/kustomization.yaml",
        "third-party/gateway-api/kustomization.yaml",
        "third-party/knative-serving/kustomization.yaml",
        "third-party/kourier/kustomization.yaml",
        "third-party/metrics-server/kustomization.yaml",
    ]
    assert "warning: 12 release files have no sha256 pin yet (see `oscar-deploy versions`)" in result.stderr

    with_secrets = render(cli, SPEC, "--public-address", "203.0.113.5", "--with-secrets")
    assert with_secrets.exit_code == 0, with_secrets.output
    secrets_file = out / "secrets.yaml"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    stored = yaml.safe_load((state_home / "demo" / "secrets.yaml").read_text())
    secrets = {o["metadata"]["name"]: o["stringData"] for o in documents(secrets_file)}
    assert secrets["oscar-manager"]["OSCAR_PASSWORD"] == stored["oscar_password"]
    assert secrets["minio"]["secretKey"] == stored["minio_secret_key"]
    for value in stored.values():
        assert value not in (out / "objects.yaml").read_text()
        assert value not in with_secrets.stdout + with_secrets.stderr


def test_kustomizations_carry_our_settings(cli: Cli) -> None:
    render(cli, SPEC, "--public-address", "203.0.113.5")
    kourier = yaml.safe_load((cli.cwd / "out" / "third-party" / "kourier" / "kustomization.yaml").read_text())
    assert kourier["resources"] == [
        "https://github.com/knative-extensions/net-kourier/releases/download/knative-v1.20.0/kourier.yaml"
    ]
    (patch,) = kourier["patches"]
    assert patch["target"] == {"version": "v1", "kind": "Service", "name": "kourier", "namespace": "kourier-system"}
    assert yaml.safe_load(patch["patch"]) == [{"op": "replace", "path": "/spec/type", "value": "ClusterIP"}]
    cert_manager = yaml.safe_load((cli.cwd / "out" / "third-party" / "cert-manager" / "kustomization.yaml").read_text())
    assert cert_manager["patches"][0]["target"]["group"] == "apps"


def test_bad_input_is_one_line_and_exit_2(cli: Cli) -> None:
    no_address = render(cli, "name: demo\n")
    assert no_address.exit_code == 2
    assert no_address.stderr == (
        "error: platform.domain: not set and no public address of the first server is known; "
        "set platform.domain or give the address (render: --public-address)\n"
    )
    (cli.cwd / "taken").write_text("")
    (cli.cwd / "cluster.yaml").write_text("name: demo\n")
    taken = cli("render", "taken", "--public-address", "203.0.113.5")
    assert taken.exit_code == 2
    assert taken.stderr == "error: taken/objects.yaml: a part of the path is a file, not a folder; pick another path\n"


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (
            lambda out: (out / "objects.yaml").mkdir(parents=True),
            "out/objects.yaml: is a folder; the rendered manifest is only written to a regular file",
        ),
        (
            lambda out: (out.mkdir(), (out / "third-party").write_text("")),
            "out/third-party/gateway-api/kustomization.yaml: a part of the path is a file, not a folder; "
            "pick another path",
        ),
        (
            lambda out: (out.mkdir(), os.mkfifo(out / "secrets.yaml")),
            "out/secrets.yaml: is a FIFO (named pipe); the rendered manifest is only written to a regular file",
        ),
    ],
    ids=["objects.yaml is a folder", "third-party is a file", "secrets.yaml is a FIFO"],
)
def test_a_target_of_another_kind_is_refused_before_anything_is_written(cli: Cli, prepare: Any, message: str) -> None:
    out = cli.cwd / "out"
    prepare(out)
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    result = render(cli, SPEC, "--public-address", "203.0.113.5", "--with-secrets")
    assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before, "nothing written"


def test_a_folder_name_too_long_is_one_line(cli: Cli) -> None:
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    result = cli("render", "d" * 300, "--public-address", "203.0.113.5")
    assert result.exit_code == 2
    assert result.stderr == (f"error: '{'d' * 200}...': cannot write the rendered manifest (File name too long)\n")
