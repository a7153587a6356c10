"""The gateway in front of OSCAR, its dashboard and MinIO: Traefik implementing the Gateway API, with TLS.

Why the pinned Traefik chart through k3s's helm-controller (a `HelmChart` object) and not k3s's packaged
Traefik configured by a `HelmChartConfig`:

- our k3s roles disable the packaged Traefik (playbooks/roles/k3s_server defaults: `k3s_server_disable:
  [traefik, metrics-server]`), so there is no packaged release to configure;
- the packaged chart moves with k3s: k3s 1.32/1.33 ship chart 34.2.1+up34.2.0 (Traefik 3.3), later minors
  38.x and 39.x, so a k3s upgrade would silently change the gateway; our Gateway API CRDs (v1.4.1) need a
  Traefik whose Gateway provider knows them, which the catalogue pins together (chart 39.0.9, the chart
  upstream OSCAR's kind script installs);
- helm-controller ships inside every k3s server (it is not disabled), so the chart needs no Helm client and
  its values are a plain object here, rendered and validated like the rest.

We create the Gateway ourselves (the chart's own is switched off) so that its listeners, TLS secret and route
policy are ours: `traefik-gateway` in `traefik`, the names OSCAR uses for exposed services by default
(HTTPROUTE_GATEWAY_NAME/_NAMESPACE), HTTP on Traefik's `web` entry point (8000, exposed as 80) and HTTPS on
`websecure` (8443, exposed as 443). HTTPS takes routes from every namespace, as upstream's kind script does;
plain HTTP only from the gateway's own namespace (the redirect to HTTPS and cert-manager's HTTP-01 solver routes,
which it creates in the Certificate's namespace). OSCAR's exposed-service HTTPRoutes name the Gateway without a
`sectionName` (O:pkg/backends/resources/expose.go getHTTPRouteSpec), so they attach to every listener that admits
them, and on `web` their longer path prefix would outrank the redirect's `/` (gateway-api apis/v1
httproute_types.go, match precedence): the exposed service, and the basic auth it may ask for, in clear text.

TLS comes from cert-manager: Let's Encrypt HTTP-01 answered through the Gateway (cert-manager's
`gatewayHTTPRoute` solver, which needs its `--enable-gateway-api` flag), or a cluster CA that a self-signed
issuer creates once (10 years, key kept on renewal) and a CA issuer signs the gateway's certificate with; its
certificate is `ca.crt` of Secret cert-manager/oscar-ca, for clients to trust.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml

from oscar_deploy.platform.model import (
    CA_SECRET,
    CERT_MANAGER_NAMESPACE,
    GATEWAY_CLASS,
    GATEWAY_HTTP_PORT,
    GATEWAY_HTTPS_PORT,
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    GATEWAY_TLS_SECRET,
    MINIO_API_PORT,
    MINIO_NAME,
    MINIO_NAMESPACE,
    OSCAR_NAME,
    OSCAR_NAMESPACE,
    OSCAR_PORT,
    KubeObject,
    OfflinePlatform,
    TlsMode,
)
from oscar_deploy.platform.storage import metadata
from oscar_deploy.spec.catalogue import Catalogue
from oscar_deploy.spec.models import ClusterSpec
from oscar_deploy.support.errors import UserInputError

ACME_SERVERS = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}
CA_ISSUER = "oscar-ca"
SELF_SIGNED_ISSUER = "oscar-selfsigned"
ACME_ISSUER = "oscar-letsencrypt"
TRAEFIK_HELM_NAMESPACE = "kube-system"


def gateway_host(spec: ClusterSpec, public_address: str | None) -> str:
    """`platform.domain`, else `<address>.sslip.io` (IPv6 written with dashes, as sslip.io reads it)."""
    if spec.platform.domain:
        return spec.platform.domain
    if not public_address:
        raise UserInputError(
            "platform.domain: not set and no public address of the first server is known; "
            "set platform.domain or give the address (render: --public-address)"
        )
    try:
        address = ipaddress.ip_address(public_address)
    except ValueError as exc:
        raise UserInputError(f"public address {public_address!r}: not an IP address; give the server's IP") from exc
    if address.is_unspecified or address.is_multicast:
        raise UserInputError(f"public address {public_address!r}: no client can reach it; give the server's IP")
    text = str(address)
    if address.version == 6:
        # sslip.io reads IPv6 with dashes for colons; a DNS label may not start or end with one, so `::1` is
        # written `0::1` (the same address) before the colons become dashes.
        text = ("0" if text.startswith(":") else "") + text + ("0" if text.endswith(":") else "")
        text = text.replace(":", "-")
    return f"{text}.sslip.io"


def minio_host(host: str) -> str:
    return f"minio.{host}"


def traefik_helm_chart(catalogue: Catalogue, offline: OfflinePlatform | None = None) -> KubeObject:
    """The chart from its repository, or offline the bundled archive (`chartContent` overrides `chart`)."""
    chart = catalogue["traefik_chart"]
    values = {
        "providers": {"kubernetesGateway": {"enabled": True}},
        "gateway": {"enabled": False},
        "gatewayClass": {"enabled": True, "name": GATEWAY_CLASS},
        "ports": {
            "web": {"port": GATEWAY_HTTP_PORT, "exposedPort": 80},
            "websecure": {"port": GATEWAY_HTTPS_PORT, "exposedPort": 443},
        },
        # k3s's ServiceLB publishes a LoadBalancer service on every node's ports 80 and 443.
        "service": {"type": "LoadBalancer"},
    }
    source = (
        {"chart": "traefik", "chartContent": offline.traefik_chart}
        if offline is not None
        else {"repo": chart.helm_repo, "chart": "traefik", "version": chart.version}
    )
    return {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": metadata("traefik", TRAEFIK_HELM_NAMESPACE),
        "spec": {
            **source,
            "targetNamespace": GATEWAY_NAMESPACE,
            "valuesContent": yaml.safe_dump(values, sort_keys=True),
        },
    }


def gateway_objects(
    spec: ClusterSpec, catalogue: Catalogue, host: str, tls_mode: TlsMode, offline: OfflinePlatform | None = None
) -> list[KubeObject]:
    hosts = [host, minio_host(host)]
    everyone = {"namespaces": {"from": "All"}}
    own_namespace = {"namespaces": {"from": "Same"}}
    objects: list[KubeObject] = [traefik_helm_chart(catalogue, offline)]
    objects += issuer_objects(spec, tls_mode)
    objects += [
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": metadata(GATEWAY_TLS_SECRET, GATEWAY_NAMESPACE),
            "spec": {
                "secretName": GATEWAY_TLS_SECRET,
                "dnsNames": hosts,
                "issuerRef": {
                    "group": "cert-manager.io",
                    "kind": "ClusterIssuer",
                    "name": CA_ISSUER if tls_mode == "selfsigned" else ACME_ISSUER,
                },
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": metadata(GATEWAY_NAME, GATEWAY_NAMESPACE),
            "spec": {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    {"name": "web", "port": GATEWAY_HTTP_PORT, "protocol": "HTTP", "allowedRoutes": own_namespace},
                    {
                        "name": "websecure",
                        "port": GATEWAY_HTTPS_PORT,
                        "protocol": "HTTPS",
                        "tls": {
                            "mode": "Terminate",
                            "certificateRefs": [{"group": "", "kind": "Secret", "name": GATEWAY_TLS_SECRET}],
                        },
                        "allowedRoutes": everyone,
                    },
                ],
            },
        },
        {
            # Plain HTTP answers with a redirect to HTTPS; an ACME HTTP-01 challenge route is more specific
            # (its exact path) and still wins.
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": metadata("https-redirect", GATEWAY_NAMESPACE),
            "spec": {
                "parentRefs": [_parent("web")],
                "hostnames": hosts,
                "rules": [
                    {
                        "filters": [
                            {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
                        ]
                    }
                ],
            },
        },
        _route(OSCAR_NAME, OSCAR_NAMESPACE, host, OSCAR_NAME, OSCAR_PORT),
        _route(MINIO_NAME, MINIO_NAMESPACE, minio_host(host), MINIO_NAME, MINIO_API_PORT),
    ]
    return objects


def _parent(section: str) -> dict[str, Any]:
    return {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": GATEWAY_NAME,
        "namespace": GATEWAY_NAMESPACE,
        "sectionName": section,
    }


def _route(name: str, namespace: str, host: str, service: str, port: int) -> KubeObject:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata(name, namespace),
        "spec": {
            "parentRefs": [_parent("websecure")],
            "hostnames": [host],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [{"kind": "Service", "name": service, "port": port}],
                }
            ],
        },
    }


def issuer_objects(spec: ClusterSpec, tls_mode: TlsMode) -> list[KubeObject]:
    if tls_mode == "selfsigned":
        return [
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "ClusterIssuer",
                "metadata": metadata(SELF_SIGNED_ISSUER),
                "spec": {"selfSigned": {}},
            },
            {
                # A CA issuer's Secret lives in cert-manager's cluster resource namespace (its own namespace).
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": metadata(CA_SECRET, CERT_MANAGER_NAMESPACE),
                "spec": {
                    "isCA": True,
                    "commonName": f"oscar-deploy cluster CA {spec.name}",
                    "secretName": CA_SECRET,
                    "duration": "87600h",
                    "renewBefore": "720h",
                    "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Never"},
                    "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": SELF_SIGNED_ISSUER},
                },
            },
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "ClusterIssuer",
                "metadata": metadata(CA_ISSUER),
                "spec": {"ca": {"secretName": CA_SECRET}},
            },
        ]
    return [
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "ClusterIssuer",
            "metadata": metadata(ACME_ISSUER),
            "spec": {
                "acme": {
                    "server": ACME_SERVERS[tls_mode],
                    "email": spec.platform.acme_email,
                    "privateKeySecretRef": {"name": f"{ACME_ISSUER}-account"},
                    "solvers": [{"http01": {"gatewayHTTPRoute": {"parentRefs": [_parent("web")]}}}],
                }
            },
        }
    ]
