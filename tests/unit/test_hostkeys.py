"""Recognising ssh's host key refusals (oscar_deploy/nodes/hostkeys.py) on standard error as OpenSSH words it:
sshconnect.c (check_host_key, warn_changed_key) and sshconnect2.c (verify_host_key_callback), OpenSSH 9.x. The
same classification on what the real client prints runs in tests/unit/cloud/test_pinned_host_keys.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from oscar_deploy.nodes.hostkeys import RefusedHostKey, known_key_refused, pinned_key_refused, refused_host_key

BANNER = (
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
    "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n"
    "Someone could be eavesdropping on you right now (man-in-the-middle attack)!\n"
    "It is also possible that a host key has just been changed.\n"
    "The fingerprint for the ED25519 key sent by the remote host is\n"
    "SHA256:q1Zw5xY0TQ6m0b3Jk2aQ0f9X8fS9VbQkq4l2ZC8N1yE.\n"
    "Please contact your system administrator.\n"
    "Add correct host key in /state/lab/ssh/known_hosts to get rid of this message.\n"
    "Offending ED25519 key in /state/lab/ssh/known_hosts:1\n"
)
CHANGED = (
    BANNER
    + "Host key for 203.0.113.7 has changed and you have requested strict checking.\nHost key verification failed.\n"
)
CHANGED_ON_PORT = (
    BANNER + "Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.\n"
    "Host key verification failed.\n"
)
UNKNOWN = (
    "No ED25519 host key is known for 203.0.113.7 and you have requested strict checking.\n"
    "Host key verification failed.\n"
)
REVOKED = (
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
    "@       WARNING: REVOKED HOST KEY DETECTED!               @\n"
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
    "The ED25519 host key for 203.0.113.7 is marked as revoked.\n"
    "This could mean that a stolen key is being used to\n"
    "impersonate this host.\n"
    "ED25519 host key for 203.0.113.7 was revoked and you have requested strict checking.\n"
    "Host key verification failed.\n"
)
# CheckHostIP: the key matches the host name's but not its IP address's; ssh names no host in its last lines.
IP_DIFFERS = (
    "Warning: the ED25519 host key for 'server-0.example.org' differs from the key for the IP address "
    "'203.0.113.7'\nOffending key for IP in /state/lab/ssh/known_hosts:2\nMatching host key in "
    "/state/lab/ssh/known_hosts:1\nExiting, you have requested strict checking.\nHost key verification failed.\n"
)
# Through ProxyJump: the jump host's ssh refused its key, then the outer ssh lost its connection.
JUMP_REFUSED = (
    BANNER + "Host key for 203.0.113.5 has changed and you have requested strict checking.\n"
    "Host key verification failed.\nConnection closed by UNKNOWN port 65535\n"
)
# Without strict checking (local nodes) a changed key is a warning and the connection goes on: a later failure
# is no refusal of the key.
WARNED_THEN_DENIED = (
    BANNER + "Password authentication is disabled to avoid man-in-the-middle attacks.\n"
    "Keyboard-interactive authentication is disabled to avoid man-in-the-middle attacks.\n"
    "root@127.0.0.1: Permission denied (publickey).\n"
)


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (CHANGED, RefusedHostKey("203.0.113.7", "203.0.113.7")),
        (CHANGED_ON_PORT, RefusedHostKey("127.0.0.1:2222", "[127.0.0.1]:2222")),
        (UNKNOWN, RefusedHostKey("203.0.113.7", "203.0.113.7", unknown=True)),
        (REVOKED, RefusedHostKey("203.0.113.7", "203.0.113.7")),
        (IP_DIFFERS, RefusedHostKey(None, None)),
        (JUMP_REFUSED, RefusedHostKey("203.0.113.5", "203.0.113.5")),
        (
            "Failed to connect to the host via ssh: " + CHANGED.replace("\n", "\r\n"),
            RefusedHostKey("203.0.113.7", "203.0.113.7"),
        ),
        (WARNED_THEN_DENIED, None),
        ("ssh: connect to host 127.0.0.1 port 2222: Connection refused\n", None),
        ("root@203.0.113.7: Permission denied (publickey).\n", None),
        ("", None),
    ],
    ids=[
        "changed",
        "changed-off-port-22",
        "unknown",
        "revoked",
        "ip-differs",
        "jump-host",
        "ansible-message",
        "warned-not-refused",
        "connection-refused",
        "login-denied",
        "empty",
    ],
)
def test_refusals_are_told_from_other_failures_with_the_host_ssh_checked(
    stderr: str, expected: RefusedHostKey | None
) -> None:
    assert refused_host_key(stderr) == expected


KNOWN_HOSTS = Path("/state/lab/ssh/known_hosts")
ADVICE = (
    "answers SSH with a host key other than the one pinned for it in /state/lab/ssh/known_hosts when oscar-deploy "
    "made its VM: the VM was rebuilt or replaced outside oscar-deploy, or another machine holds that address; check "
    "in the cloud's console which VM holds it: if another VM, give the address back to the cluster's VM; if the "
    "cluster's VM was rebuilt, delete it and run `oscar-deploy up` (a worker is made again under its pinned key; "
    "for a server, up says how to make the cluster anew); editing known_hosts does not help: up writes the pinned "
    "keys there again"
)


def test_the_line_names_the_address_whose_key_was_refused_and_a_jump_host_as_such() -> None:
    assert pinned_key_refused(RefusedHostKey("203.0.113.7"), "203.0.113.7", KNOWN_HOSTS) == f"203.0.113.7 {ADVICE}"
    assert (
        pinned_key_refused(RefusedHostKey("203.0.113.5"), "10.0.0.7", KNOWN_HOSTS)
        == f"203.0.113.5 (the jump host on the way to it) {ADVICE}"
    )
    assert pinned_key_refused(RefusedHostKey(None), "203.0.113.7", KNOWN_HOSTS) == f"203.0.113.7 {ADVICE}"
    assert pinned_key_refused(RefusedHostKey(None), None, KNOWN_HOSTS) == f"the node's address {ADVICE}"


OWN_ADVICE = (
    "answers SSH with a host key other than the one your known_hosts holds for it: if you re-installed or replaced "
    "that machine, remove its old key with {forget} and run again (the next connection records the new one); if "
    "not, find out what else answers at that address before you do"
)


def test_a_host_you_own_is_told_how_to_forget_its_old_key_in_the_spelling_ssh_keygen_takes() -> None:
    assert known_key_refused(RefusedHostKey("203.0.113.7", "203.0.113.7"), "203.0.113.7") == (
        "203.0.113.7 " + OWN_ADVICE.format(forget="`ssh-keygen -R '203.0.113.7'`")
    )
    assert known_key_refused(RefusedHostKey("127.0.0.1:2222", "[127.0.0.1]:2222"), "127.0.0.1") == (
        "127.0.0.1:2222 " + OWN_ADVICE.format(forget="`ssh-keygen -R '[127.0.0.1]:2222'`")
    )
    assert known_key_refused(RefusedHostKey(None), "203.0.113.7") == (
        "203.0.113.7 " + OWN_ADVICE.format(forget="`ssh-keygen -R ADDRESS`")
    )
    assert known_key_refused(RefusedHostKey(None), None) == (
        "the host's address " + OWN_ADVICE.format(forget="`ssh-keygen -R ADDRESS`")
    )


def test_a_host_you_own_that_strict_checking_met_for_the_first_time_is_told_to_record_its_key() -> None:
    refused = refused_host_key(UNKNOWN)
    assert refused is not None
    assert known_key_refused(refused, "203.0.113.7") == (
        "203.0.113.7 answers SSH with a host key your known_hosts does not hold, and its SSH options ask for strict "
        "checking (StrictHostKeyChecking=yes): check the key's fingerprint and record it (connect once with ssh), or "
        "leave that option out so that the first connection records it"
    )
