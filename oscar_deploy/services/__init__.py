"""OSCAR services: the typed FDL model, its templates, the REST API client, MinIO files and the smoke test."""
