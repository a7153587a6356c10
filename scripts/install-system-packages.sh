#!/usr/bin/env bash
# Installs the Debian packages the test tiers need: podman and runc for local nodes, debootstrap to build
# their base images offline, qemu-user-static and binfmt-support for arm64 nodes, the SSH client Ansible
# uses, skopeo (air-gap bundles copy the platform's images with it), docker-registry (the registry the
# bundle tests start on 127.0.0.1 with their own configuration) and iptables (the offline nodes test rejects
# and counts what nodes send out). Idempotent: packages already present are left as they are.
set -euo pipefail

packages=(podman runc debootstrap qemu-user-static binfmt-support openssh-client iproute2 uidmap
  slirp4netns fuse-overlayfs skopeo docker-registry iptables)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing Debian packages: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null; then
    # Tests start their own registry; the package's service (port 5000 on every address) is not wanted.
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi

# Foreign-arch nodes run under qemu-user through binfmt_misc; mount it and enable aarch64 where we can.
if [[ $(id -u) -eq 0 ]]; then
  if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
  fi
  # Registered and enabled: the first line of the entry says "enabled" (a privileged container running
  # systemd-binfmt can unregister every entry; local nodes mask that unit, other containers may not).
  if [[ -e /proc/sys/fs/binfmt_misc/status ]] && ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
    update-binfmts --enable qemu-aarch64 || true
  fi
fi
