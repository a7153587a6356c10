"""Elasticity for OSCAR clusters: a pure scaling policy, a discrete-event simulator and the baselines it is judged by.

`model` holds the frozen data the policy reads and writes, `policy.decide` is the policy itself (no I/O),
`simulator` replays workloads against it and against re-implemented baselines (`baselines`), `workloads` and
`traces` produce the workloads, and `compare` runs the comparison that `oscar-deploy autoscaler simulate` prints.
Nothing here imports the spec module at import time; `spec_adapter.from_spec` reads a spec lazily.
"""
