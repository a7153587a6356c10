"""Lowest layer: domain errors, guarded file I/O, verified downloads, progress output, where the bundled layers live."""
