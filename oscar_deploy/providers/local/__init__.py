"""Local nodes: podman containers booting systemd and sshd, their base images and this host's quirks."""
