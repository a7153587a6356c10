"""The issue's goals judged from run metrics: the limits themselves, ties, and G2 beyond any policy's reach."""

from __future__ import annotations

from oscar_deploy.autoscaler.compare import Point, evaluate_goals
from oscar_deploy.autoscaler.simulator import RunMetrics


def metrics(policy: str, node_hours: float, p95: float, power_ons: int, killed: int = 0) -> RunMetrics:
    return RunMetrics(
        policy, "s", 100, node_hours, 0.0, 0.0, 0.0, p95, p95, p95, power_ons, power_ons, 0, killed, 0, 0, 0.0
    )


CLUES = metrics("clues-oscar", 10.0, 400.0, 10)


def ours(*points: tuple[float, float, float, int]) -> list[Point]:
    return [Point(knob, metrics("oscar-deploy", nh, p95, ons)) for knob, nh, p95, ons in points]


def marks(goals) -> str:
    return "".join("+" if goal.met else "-" for goal in goals)


def test_every_goal_met_at_the_limits_themselves() -> None:
    sweep = ours((60.0, 9.9, 400.0, 12), (300.0, 10.0, 200.0, 12))
    goals = evaluate_goals(CLUES, sweep[1], sweep, metrics("static-max", 96.0, 0.0, 0))
    assert marks(goals) == "++++"
    assert goals[0].detail == "idle_time=60s: 9.9 vs 10.0 node-h, p95 400s vs 400s"
    assert goals[1].detail == "idle_time=300s: p95 200s vs 400s (half: 200s) at 10.0 vs 10.0 node-h"
    assert goals[3].detail == "most: 12 power-ons at idle_time=300s vs 10 (limit 12)"


def test_a_tie_in_node_hours_is_not_fewer_and_one_cycle_over_the_limit_fails() -> None:
    sweep = ours((300.0, 10.0, 201.0, 12), (600.0, 9.0, 100.0, 13))
    goals = evaluate_goals(CLUES, sweep[0], sweep)
    assert marks(goals) == "--++"
    assert goals[1].detail == "idle_time=300s: p95 201s vs 400s (half: 200s) at 10.0 vs 10.0 node-h"
    default_over = ours((300.0, 9.0, 100.0, 13), (600.0, 9.0, 100.0, 12))
    assert marks(evaluate_goals(CLUES, default_over[0], default_over)) == "+++-"


def test_g2_beyond_reach_says_so_and_zero_waits_on_both_sides_count_as_met() -> None:
    sweep = ours((300.0, 9.0, 300.0, 10))
    busy = evaluate_goals(CLUES, sweep[0], sweep, metrics("static-max", 96.0, 201.0, 0))
    assert not busy[1].met
    assert busy[1].detail.endswith("; no policy can meet it here: with every worker always on (static-max) p95 is 201s")
    reachable = evaluate_goals(CLUES, sweep[0], sweep, metrics("static-max", 96.0, 200.0, 0))
    assert not reachable[1].met and "no policy" not in reachable[1].detail
    idle = metrics("clues-oscar", 10.0, 0.0, 2)
    zero = ours((300.0, 10.0, 0.0, 2))
    assert marks(evaluate_goals(idle, zero[0], zero)) == "-+++"


def test_a_killed_job_in_any_setting_fails_g3() -> None:
    sweep = [*ours((300.0, 9.0, 100.0, 10)), Point(900.0, metrics("oscar-deploy", 20.0, 0.0, 1, killed=1))]
    goals = evaluate_goals(CLUES, sweep[0], sweep)
    assert goals[2].met is False and goals[2].detail == "1 killed in 2 runs"


def test_goal_names_and_the_details_when_no_setting_qualifies() -> None:
    """Every setting waits longer and costs more than CLUES-OSCAR: G1 and G2 have no setting to judge."""
    sweep = ours((300.0, 11.0, 500.0, 10))
    goals = evaluate_goals(CLUES, sweep[0], sweep, metrics("static-max", 96.0, 300.0, 0))
    assert [goal.name for goal in goals] == [
        "G1 fewer node-hours at equal or lower p95 wait",
        "G2 p95 wait at most half at equal node-hours",
        "G3 no job killed",
        "G4 at most 1.2x CLUES-OSCAR's power cycles",
    ]
    assert marks(goals) == "--++"
    assert goals[0].detail == "no idle_time within the cycle limit reaches CLUES-OSCAR's p95 of 400s"
    assert goals[1].detail == (
        "no idle_time within the cycle limit stays within CLUES-OSCAR's 10.0 node-h; no policy can meet it here: "
        "with every worker always on (static-max) p95 is 300s"
    )


def test_half_of_a_p95_below_one_second_is_still_half() -> None:
    tiny = metrics("clues-oscar", 10.0, 1.0, 10)
    sweep = ours((300.0, 9.0, 0.5, 10))
    assert evaluate_goals(tiny, sweep[0], sweep)[1].met
