#!/bin/sh
# Stops what a k3s node leaves running once its service stopped (the unit's KillMode=process keeps the
# container shims, and so the pods, alive across restarts) and undoes k3s' network setup: mounts, CNI and
# flannel interfaces, KUBE-/CNI-/flannel iptables rules. Prints one line per thing it undid, nothing when
# there was nothing to do. Arguments: the k3s data folder; `check` to undo nothing and print what it would undo
# (Ansible's check mode).
set -u
data_dir=${1:-/var/lib/rancher/k3s}
mode=${2:-run}

act() {
  [ "$mode" = check ] || "$@"
}

parent_of() {
  sed -n 's/^[0-9]* (.*) [A-Za-z] \([0-9]*\) .*/\1/p' "/proc/$1/stat" 2>/dev/null
}

descendants() {
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    if [ "$(parent_of "$pid")" = "$1" ]; then
      descendants "$pid"
      echo "$pid"
    fi
  done
}

for proc in /proc/[0-9]*; do
  exe=$(readlink "$proc/exe" 2>/dev/null) || continue
  case "$exe" in
    "$data_dir"/data/*/bin/containerd-shim*)
      shim=${proc#/proc/}
      act kill -9 $(descendants "$shim") "$shim" 2>/dev/null
      echo "stopped container shim $shim and its containers"
      ;;
  esac
done

awk -v data="$data_dir" '$2 ~ "^(/run/k3s|/var/lib/kubelet|/run/netns/cni-)" || index($2, data "/") == 1 { print $2 }' \
  /proc/self/mounts | sort -r | while read -r mount_point; do
  act umount -f "$mount_point" 2>/dev/null || act umount -l "$mount_point"
  echo "unmounted $mount_point"
done

if command -v ip >/dev/null; then
  for link in cni0 flannel.1 flannel-v6.1 flannel-wg flannel-wg-v6 kube-ipvs0; do
    if ip link show "$link" >/dev/null 2>&1; then
      act ip link delete "$link"
      echo "deleted interface $link"
    fi
  done
fi

for tables in iptables ip6tables; do
  if command -v "$tables-save" >/dev/null && "$tables-save" 2>/dev/null | grep -qE 'KUBE-|CNI-|flannel'; then
    [ "$mode" = check ] || "$tables-save" | grep -vE 'KUBE-|CNI-|flannel' | "$tables-restore"
    echo "removed k3s rules from $tables"
  fi
done
exit 0
