"""ssh refusing a host key: how OpenSSH says so, and the line oscar-deploy gives for a node whose key it pinned.

OpenSSH (sshconnect2.c, verify_host_key_callback) ends every refusal with `Host key verification failed.`,
after check_host_key (sshconnect.c) named the host it checked, `[HOST]:PORT` for a port other than 22:

    Host key for HOST has changed and you have requested strict checking.      (after the WARNING banner)
    No ED25519 host key is known for HOST and you have requested strict checking.   (no key of that type known)
    ED25519 host key for HOST was revoked and you have requested strict checking.

Without strict checking (local nodes: StrictHostKeyChecking=no) a changed key is only warned about and the
connection goes on, so the WARNING banner alone is no refusal; the closing line is what tells one.

Only cloud nodes have keys oscar-deploy pinned (`providers/cloud.py`: generated before the VM, handed to
cloud-init, pinned in the state folder's known_hosts); `pinned_key_refused` is the one wording for them, used by
the wait for a new VM's SSH and by the line of a host Ansible could not reach. Hosts you own (the static target)
are checked against your own known_hosts, which their first connection fills (`StrictHostKeyChecking=accept-new`,
`providers/static`); `known_key_refused` words a refusal of theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HOST_KEY_REFUSED = "Host key verification failed."
_UNKNOWN_HOST = re.compile(r"No \S+ host key is known for (\S+) and you have requested strict checking\.")
_NAMED_HOST = (
    re.compile(r"Host key for (\S+) has changed and you have requested strict checking\."),
    _UNKNOWN_HOST,
    re.compile(r"\S+ host key for (\S+) was revoked and you have requested strict checking\."),
)
_BRACKETED = re.compile(r"\[(.+)\]:(\d+)")


@dataclass(frozen=True)
class RefusedHostKey:
    """ssh refused the host key presented at `host` (`ADDRESS` or `ADDRESS:PORT` for a port other than 22, as
    inventories name hosts); None when ssh did not say which host (a key differing from its IP's). `known_as` is
    ssh's own spelling of it (`[ADDRESS]:PORT`), the one known_hosts and `ssh-keygen -R` use."""

    host: str | None
    known_as: str | None = None
    # No key of the kind the host offered is known for it (strict checking refuses a first contact).
    unknown: bool = False


def refused_host_key(stderr: str) -> RefusedHostKey | None:
    """What ssh's standard error says of a refused host key; None when ssh refused none."""
    if HOST_KEY_REFUSED not in stderr:
        return None
    for pattern in _NAMED_HOST:
        found = pattern.search(stderr)
        if found:
            bracketed = _BRACKETED.fullmatch(found.group(1))
            host = f"{bracketed[1]}:{bracketed[2]}" if bracketed else found.group(1)
            return RefusedHostKey(host, found.group(1), unknown=pattern is _UNKNOWN_HOST)
    return RefusedHostKey(None)


def pinned_key_refused(refused: RefusedHostKey, address: str | None, known_hosts: Path) -> str:
    """What happened and what to do when ssh refused the key of a node at `address` (`ADDRESS[:PORT]`) whose key
    oscar-deploy pinned in `known_hosts`, for a server and a worker alike: `up` makes a worker whose VM was deleted
    again under its pinned key, and refuses a deleted server with the way to a new cluster. The key refused may
    be that of the jump host on the way to the node."""
    answering = refused.host or address or "the node's address"
    jump = " (the jump host on the way to it)" if refused.host and address and refused.host != address else ""
    return (
        f"{answering}{jump} answers SSH with a host key other than the one pinned for it in {known_hosts} when "
        "oscar-deploy made its VM: the VM was rebuilt or replaced outside oscar-deploy, or another machine holds "
        "that address; check in the cloud's console which VM holds it: if another VM, give the address back to the "
        "cluster's VM; if the cluster's VM was rebuilt, delete it and run `oscar-deploy up` (a worker is made again "
        "under its pinned key; for a server, up says how to make the cluster anew); editing known_hosts does not "
        "help: up writes the pinned keys there again"
    )


def known_key_refused(refused: RefusedHostKey, address: str | None) -> str:
    """What happened and what to do when ssh refused the key of a host you own (a static target's) at `address`:
    its key is checked against your own known_hosts, where the first connection recorded it (accept-new)."""
    answering = refused.host or address or "the host's address"
    if refused.unknown:
        return (
            f"{answering} answers SSH with a host key your known_hosts does not hold, and its SSH options ask for "
            "strict checking (StrictHostKeyChecking=yes): check the key's fingerprint and record it (connect once "
            "with ssh), or leave that option out so that the first connection records it"
        )
    forget = f"`ssh-keygen -R '{refused.known_as}'`" if refused.known_as else "`ssh-keygen -R ADDRESS`"
    return (
        f"{answering} answers SSH with a host key other than the one your known_hosts holds for it: if you "
        f"re-installed or replaced that machine, remove its old key with {forget} and run again (the next "
        "connection records the new one); if not, find out what else answers at that address before you do"
    )
