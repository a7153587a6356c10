"""The cluster spec: its models, the version catalogue and its preflight, checked YAML reading, `init`."""
