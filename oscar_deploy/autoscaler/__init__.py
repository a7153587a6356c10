"""Elasticity for OSCAR clusters: a pure scaling policy, a discrete-event simulator and the baselines it is judged
by, and the runtime that applies the policy to a real cluster.

`model` holds the frozen data the policy reads and writes, `policy.decide` is the policy itself (no I/O),
`simulator` replays workloads against it and against re-implemented baselines (`baselines`), `workloads` and
`traces` produce the workloads, and `compare` runs the comparison that `oscar-deploy autoscaler simulate` prints.

The runtime: `observer` watches nodes, pods and Kueue workloads through the Kubernetes API, `kubeobjects` reads
them into the model's terms and `snapshot` builds the policy's snapshot (with the power managers of
`oscar_deploy.providers`), `drain` cordons and evicts, `runtime` is the loop, `decisions` its log and state
files, and `service` puts them together for `oscar-deploy autoscaler run` and `status`.
Nothing here imports the spec module at import time; `spec_adapter.from_spec` reads a spec lazily.
"""
