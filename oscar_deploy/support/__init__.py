"""Lowest layer: domain errors, guarded file I/O, progress output, where the bundled layers live."""
