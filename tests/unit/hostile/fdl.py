"""FDL text for the hostile cases: a valid service to break one piece at a time."""

from __future__ import annotations


def service_fdl(extra_service: str = "", extra_top: str = "", script: str = "run.sh", name: str = "svc") -> str:
    return (
        "functions:\n  oscar:\n  - demo:\n"
        f"      name: {name}\n      image: ghcr.io/grycap/cowsay\n      script: {script}\n"
        f"{extra_service}{extra_top}"
    )
