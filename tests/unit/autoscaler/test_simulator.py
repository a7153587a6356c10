"""The simulator: exact timings of one job under our policy and CLUES-OSCAR, evictions, determinism."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from oscar_deploy.autoscaler.baselines import CLUES_OSCAR, POLICIES, Clues, PolicyController, policy_config
from oscar_deploy.autoscaler.model import Action, ClusterSnapshot, Decision, Resources
from oscar_deploy.autoscaler.simulator import Job, NodePool, Scenario, percentile, simulate
from oscar_deploy.autoscaler.workloads import OSCAR_WN, SCENARIOS

EXACT_POOL = NodePool(OSCAR_WN, 2, boot_median=180.0, boot_sigma=0.0, boot_failure=0.0, shutdown=(30.0, 30.0))


def one_job(at: float = 100.0, duration: float = 60.0) -> Scenario:
    job = Job(at, duration, Resources.request(1000, 1024))
    return Scenario("one", "one job", (EXACT_POOL,), (job,), horizon=3600.0)


def test_our_policy_boots_at_once_and_powers_off_once_the_demand_window_no_longer_needs_the_node() -> None:
    metrics = simulate(one_job(), PolicyController(policy_config(one_job())), seed=1)
    # Pending at 100, decided 1 s later, Ready 180 s after that; runs 60 s (to 341). The tick at 340 is the last
    # to need the node; empty for idle_time (300 s) at 660, it stays while the last 2 x idle_time of demand
    # holds that tick: the tick at 960 powers it off and the 30 s shutdown ends at 990.
    assert metrics.wait_p95 == pytest.approx(181.0)
    assert metrics.node_hours == pytest.approx((990 - 101) / 3600)
    assert metrics.idle_node_hours == pytest.approx((960 - 341) / 3600)
    assert (metrics.wait_mean, metrics.wait_p50, metrics.wait_max) == pytest.approx((181.0, 181.0, 181.0))
    assert (metrics.power_ons, metrics.power_offs, metrics.jobs_killed, metrics.unfinished) == (1, 1, 0, 0)


def test_clues_oscar_waits_for_reconsider_job_time() -> None:
    metrics = simulate(one_job(), Clues(CLUES_OSCAR, (OSCAR_WN,)), seed=1)
    # First seen pending by the 20 s monitoring at 120; a request once pending > 60 s, at the 5 s step 185.
    assert metrics.wait_p95 == pytest.approx(185 + 180 - 100)
    assert metrics.power_ons == 1


class DrainAtTwoHundred:
    """A controller that powers a node on for the first pending pod and drains it at t=200, to show what an
    eviction does to an OSCAR job (killed: restarted from scratch) and to a Knative pod (moved)."""

    name = "drain-test"
    observe_every = decide_every = 10.0
    reaction_delay: float | None = None
    starts_all_on = True

    def __init__(self) -> None:
        self.drained = False

    def decide(self, snapshot: ClusterSnapshot, now: float) -> Sequence[Decision]:
        if now >= 200 and not self.drained:
            self.drained = True
            busy = [n.name for n in snapshot.nodes if n.pods]
            return [Decision(Action.DRAIN, name, "test") for name in busy]
        return []


def test_an_evicted_job_restarts_and_an_evicted_knative_pod_moves() -> None:
    jobs = (
        Job(0.0, 500.0, Resources.request(1900, 1024)),
        Job(0.0, 500.0, Resources.request(1900, 1024), interruptible=True),
    )
    pool = NodePool(OSCAR_WN, 4, boot_median=180.0, boot_sigma=0.0, boot_failure=0.0, shutdown=(30.0, 30.0))
    scenario = Scenario("evict", "drain", (pool,), jobs, horizon=100.0)
    metrics = simulate(scenario, DrainAtTwoHundred(), seed=1)
    assert (metrics.jobs_killed, metrics.pods_moved, metrics.unfinished, metrics.power_offs) == (1, 1, 0, 2)
    # The job starts again from scratch at 200 (ends at 700); the Knative pod keeps its remaining 300 s.
    assert metrics.simulated_seconds == pytest.approx(700.0)
    assert (metrics.wait_p50, metrics.wait_max) == (0.0, 200.0)


def test_same_seed_same_numbers_and_another_seed_differs() -> None:
    scenario = SCENARIOS["sparse"](3)
    for name in ("oscar-deploy", "clues-oscar", "karpenter"):
        first = simulate(scenario, POLICIES[name].build(scenario, None), seed=3)
        again = simulate(SCENARIOS["sparse"](3), POLICIES[name].build(scenario, None), seed=3)
        assert first == again
    other = SCENARIOS["sparse"](4)
    assert other.jobs != scenario.jobs
    assert simulate(other, POLICIES["oscar-deploy"].build(other, None), seed=4) != first


def test_boot_failures_are_drawn_per_seed_and_given_up_after_max_wait_poweron() -> None:
    pool = NodePool(OSCAR_WN, 1, boot_median=60.0, boot_sigma=0.0, boot_failure=1.0, shutdown=(10.0, 10.0))
    scenario = Scenario(
        "stuck", "boots always fail", (pool,), (Job(0.0, 10.0, Resources.request(500, 512)),), horizon=600.0
    )
    controller = PolicyController(policy_config(scenario))
    metrics = simulate(scenario, controller, seed=1)
    assert metrics.unfinished == 1
    assert metrics.failed_boots == metrics.power_ons >= 2  # given up after max_wait_poweron, then tried again


def test_our_policy_kills_no_job_on_the_generated_scenarios() -> None:
    for name in ("sparse", "edge"):
        scenario = SCENARIOS[name](1)
        metrics = simulate(scenario, POLICIES["oscar-deploy"].build(scenario, None), seed=1)
        assert metrics.jobs_killed == 0
        assert metrics.unfinished == 0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.95), percentile(values, 0.5), percentile(values, 0.99)) == (95.0, 50.0, 99.0)
    assert percentile([], 0.95) == 0.0
