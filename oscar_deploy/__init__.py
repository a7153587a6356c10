"""oscar-deploy: put a complete OSCAR serverless platform on clouds, edge boards or local nodes."""

__version__ = "0.1.0"
