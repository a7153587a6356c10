"""Where nodes come from: the Provider interface, its registry by target, and one sub-package per target."""
