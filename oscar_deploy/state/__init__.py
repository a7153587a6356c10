"""What oscar-deploy keeps per cluster: the state folder, secrets, journal, desired state, endpoints."""
