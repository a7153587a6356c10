#!/bin/sh
# Turns a Debian root file system (from debootstrap or the debian image) into a local node: systemd as PID 1,
# sshd accepting keys only, per-node SSH host keys and machine id made at first boot. Both build paths run it
# inside the root file system, so the two kinds of image behave the same.
set -eu

# sshd: public keys only, root by key (the cluster's key is copied in when a node is created).
mkdir -p /etc/ssh/sshd_config.d /root/.ssh
chmod 700 /root/.ssh
cat > /etc/ssh/sshd_config.d/10-oscar-deploy.conf <<'CONF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
CONF
passwd -l root >/dev/null

# Every node gets its own host keys, made before sshd starts the first time.
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/oscar-ssh-host-keys.service <<'UNIT'
[Unit]
Description=Generate this node's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target ssh.service
UNIT
systemctl enable oscar-ssh-host-keys.service ssh.service >/dev/null 2>&1

# Units that only make sense on a real console or with real devices.
systemctl mask getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service \
  systemd-modules-load.service sys-kernel-debug.mount sys-kernel-tracing.mount >/dev/null 2>&1
# Nodes are privileged containers sharing the host's kernel: systemd-binfmt would unregister the host's
# binfmt_misc entries (qemu-user for other nodes' architectures) and systemd-sysctl would apply this
# image's kernel settings to the host. Neither may run in a node.
systemctl mask systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
  systemd-sysctl.service >/dev/null 2>&1

# A machine id per container: systemd writes one at first boot when the file is empty.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
ln -s /etc/machine-id /var/lib/dbus/machine-id

# The engine provides hostname and resolv.conf (during a Containerfile build they are the builder's own
# bind mounts, which stay out of the image anyway); no package caches in the image.
for file in /etc/hostname /etc/resolv.conf; do
  mountpoint -q "$file" || rm -f "$file"
done
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /tmp/* /root/.bash_history
