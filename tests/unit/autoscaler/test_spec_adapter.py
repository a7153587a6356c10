"""The policy configuration built from a cluster spec's workers and platform.autoscaler sections."""

from __future__ import annotations

from oscar_deploy.autoscaler.model import NodeTemplate, Resources
from oscar_deploy.autoscaler.spec_adapter import from_spec
from oscar_deploy.spec.models import ClusterSpec

WN = NodeTemplate("wn", "amd64", Resources.node(2000, 3800))


def test_from_spec_takes_workers_and_autoscaler_values() -> None:
    spec = ClusterSpec.model_validate(
        {
            "workers": {"initial": 1, "min": 1, "max": 6},
            "platform": {
                "autoscaler": {
                    "enabled": True,
                    "idle_time": 600,
                    "reconsider_job_time": 30,
                    "max_wait_poweron": 900,
                    "period": 10,
                    "extra_nodes_free": 1,
                }
            },
        }
    )
    config = from_spec(spec, (WN,), boot_time_estimate=240.0)
    assert (config.min_nodes, config.max_nodes, config.extra_nodes_free) == (1, 6, 1)
    assert (config.idle_time, config.reconsider_job_time, config.max_wait_poweron, config.period) == (
        600.0,
        30.0,
        900.0,
        10.0,
    )
    assert (config.templates, config.boot_time_estimate) == ((WN,), 240.0)


def test_defaults_match_clues_as_deployed_for_oscar() -> None:
    config = from_spec(ClusterSpec.model_validate({}), (WN,))
    assert (config.idle_time, config.reconsider_job_time, config.max_wait_poweron, config.period) == (
        300.0,
        60.0,
        3000.0,
        20.0,
    )
