"""The CPU architectures oscar-deploy knows: one table for every layer that names them.

Names are Kubernetes' and Go's (`amd64`, `arm64`, `arm`); `machine` is what `uname -m` says on such a host,
`qemu` the suffix of its qemu-user emulator, and the k3s fields are the names of its release files on
github.com/k3s-io/k3s/releases (32-bit ARM is `arm` there, but its binary is `k3s-armhf`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arch:
    name: str
    machine: str
    qemu: str
    k3s_binary: str
    k3s_images: str
    k3s_checksums: str
    # Whether providers make nodes of this arch (32-bit boards only join as hosts you own).
    node: bool

    @property
    def k3s_verified_files(self) -> tuple[str, str]:
        return (self.k3s_binary, self.k3s_images)


ARCHES: dict[str, Arch] = {
    arch.name: arch
    for arch in (
        Arch("amd64", "x86_64", "x86_64", "k3s", "k3s-airgap-images-amd64.tar.zst", "sha256sum-amd64.txt", True),
        Arch(
            "arm64", "aarch64", "aarch64", "k3s-arm64", "k3s-airgap-images-arm64.tar.zst", "sha256sum-arm64.txt", True
        ),
        Arch("arm", "armv7l", "arm", "k3s-armhf", "k3s-airgap-images-arm.tar.zst", "sha256sum-arm.txt", False),
    )
}
NODE_ARCHES = tuple(name for name, arch in ARCHES.items() if arch.node)
# Other names the same arches go by: `uname -m` output and Debian's name for 32-bit ARM.
ALIASES = {**{arch.machine: arch.name for arch in ARCHES.values()}, "armhf": "arm"}


def canonical_arch(name: str) -> str | None:
    """`x86_64` -> `amd64`, `arm64` -> `arm64`; None for a name no table row has."""
    name = name.lower()
    return name if name in ARCHES else ALIASES.get(name)
