"""The policy configuration from a cluster spec: `workers.min/max` and `platform.autoscaler`.

The spec says nothing about the workers' allocatable resources or boot times, so the caller passes the node
templates (the runtime learns them from a Ready worker of each kind) and, if known, a boot-time estimate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oscar_deploy.autoscaler.model import NodeTemplate, PolicyConfig, config_from_values

if TYPE_CHECKING:
    from oscar_deploy.spec.models import ClusterSpec


def from_spec(
    spec: ClusterSpec,
    templates: tuple[NodeTemplate, ...],
    boot_time_estimate: float = 180.0,
    max_concurrent_boots: int = 0,
) -> PolicyConfig:
    settings = spec.platform.autoscaler
    return config_from_values(
        templates=templates,
        min_nodes=spec.workers.min,
        max_nodes=spec.workers.max,
        idle_time=settings.idle_time,
        reconsider_job_time=settings.reconsider_job_time,
        max_wait_poweron=settings.max_wait_poweron,
        period=settings.period,
        extra_nodes_free=settings.extra_nodes_free,
        boot_time_estimate=boot_time_estimate,
        max_concurrent_boots=max_concurrent_boots,
    )
