"""Workload scenarios for the simulator, each a seeded, deterministic day of jobs on a pool of workers.

Generated scenarios follow the shapes the benchmark plan names: sparse uploads, bursts of file uploads, a
diurnal day, and edge boards with slow boots. Two are synthesised from the published shapes of the Azure
Functions traces (the trace files themselves are not used):

Azure Functions 2019 (`azure2019`). Published by Shahrad et al., "Serverless in the Wild", USENIX ATC 2020,
and the dataset description `AzureFunctionsDataset2019.md` in github.com/Azure/AzurePublicDataset:
  - invocation rates of functions span 8 orders of magnitude (paper abstract): each function's daily count is
    drawn log-uniformly over 8 decades, then all are scaled to the scenario's job count;
  - the share of functions per trigger group (paper, Fig. 2: HTTP 55%, queue 15%, timer 16%, orchestration
    7%, event 2%, others 5%): each function gets a trigger with these weights;
  - timer-triggered invocations are periodic (inter-arrival CV 0) while the others are far burstier than
    Poisson (CV > 1; the dataset's analysis notebook, Fig. 6): timer functions fire at a fixed period, the
    others follow an on/off modulated Poisson process;
  - a diurnal pattern in invocations per hour (paper, Fig. 4): rates follow a daily sine wave;
  - half of the functions run under one second on average (paper, Section 3 and Fig. 7): each function's mean
    execution time is lognormal with a 1 s median. The spread (sigma 2) is our choice, not a published value.
  The dataset's per-minute counts and duration percentiles are the format this mimics: counts per minute are
  spread uniformly inside the minute. An OSCAR job adds the container start (5 s, our estimate) to the
  function's execution time. Memory and CPU requests are OSCAR-like choices, not taken from the trace.
Azure Functions 2021 (`azure2021`). Published by Zhang et al., "Faster and Cheaper Serverless Computing on
Harvested Resources", SOSP 2021, and `AzureFunctionsInvocationTrace2021.md` in the same repository: one row
per invocation with app, func, end_timestamp (s) and duration (s). We synthesise rows in that schema (apps
with heavy-tailed rates, bursty arrivals, per-function durations from 10 ms to minutes as in the published
sample rows), derive start = end - duration, and keep invocations of at least 10 s, the ones that look like
OSCAR asynchronous jobs. `traces.read_azure2021_csv` reads real rows in the same format.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Mapping
from types import MappingProxyType

from oscar_deploy.autoscaler.model import ARCH_LABEL, NodeTemplate, Resources
from oscar_deploy.autoscaler.simulator import Job, NodePool, Scenario

DAY = 86_400.0
OSCAR_WN = NodeTemplate("wn", "amd64", Resources.node(2000, 3800))  # IM Dashboard OSCAR worker: 2 vCPU, 4 GiB
BOARD = NodeTemplate("board", "arm64", Resources.node(4000, 7600), cost_per_hour=0.3)  # Raspberry Pi 5 class
MINIPC = NodeTemplate("minipc", "amd64", Resources.node(4000, 15000), cost_per_hour=0.6)
ARM64: Mapping[str, str] = MappingProxyType({ARCH_LABEL: "arm64"})
AMD64: Mapping[str, str] = MappingProxyType({ARCH_LABEL: "amd64"})
ANY: Mapping[str, str] = MappingProxyType({})


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median), sigma)


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _sorted(jobs: list[Job]) -> tuple[Job, ...]:
    return tuple(sorted(jobs, key=lambda job: job.submit))


def diurnal_rate(t: float, peak_to_trough: float = 10.0) -> float:
    """Relative arrival rate at time t: a daily sine wave with its trough at 04:00 and peak at 16:00, mean 1."""
    amplitude = (peak_to_trough - 1) / (peak_to_trough + 1)
    return 1 + amplitude * math.sin(2 * math.pi * (t - 10 * 3600) / DAY)


def sparse(seed: int) -> Scenario:
    """S1: Poisson uploads at 2 per hour, run time lognormal around 120 s: the keep-alive time dominates cost."""
    rng = random.Random(f"sparse/{seed}")
    jobs = []
    t = rng.expovariate(2 / 3600)
    while t < DAY:
        duration = min(max(_lognormal(rng, 120, 0.6), 10.0), 3600.0)
        jobs.append(Job(t, duration, Resources.request(1000, 1024), service="sparse"))
        t += rng.expovariate(2 / 3600)
    return Scenario(
        "sparse", "2 uploads/h, ~120 s jobs, 4 workers booting in ~180 s", (NodePool(OSCAR_WN, 4),), _sorted(jobs)
    )


def bursty(seed: int) -> Scenario:
    """S2: bursts of 50-500 file uploads (one job each, 0.2-1 CPU, 30-600 s) about every 90 minutes."""
    rng = random.Random(f"bursty/{seed}")
    jobs = []
    t = rng.expovariate(1 / 5400)
    burst = 0
    while t < DAY:
        burst += 1
        size = rng.randint(50, 500)
        cpu = rng.choice((200, 500, 1000))
        memory = rng.choice((256, 512, 1024))
        median = _log_uniform(rng, 30, 400)
        spread = rng.uniform(10, 120)
        requests = Resources.request(cpu, memory)
        for _ in range(size):
            duration = min(max(median * _lognormal(rng, 1.0, 0.3), 30.0), 600.0)
            jobs.append(Job(t + rng.uniform(0, spread), duration, requests, service=f"burst-{burst}"))
        t += rng.expovariate(1 / 5400)
    return Scenario(
        "bursty",
        "50-500 uploads at once every ~90 min, 40 workers booting in ~180 s",
        (NodePool(OSCAR_WN, 40),),
        _sorted(jobs),
    )


def _percentile_sampler(points: list[tuple[float, float]]) -> Callable[[random.Random], float]:
    """A sampler of the piecewise-linear inverse CDF through (quantile, value) points, as in a percentile file."""

    def sample(rng: random.Random) -> float:
        u = rng.random()
        for (q0, v0), (q1, v1) in itertools.pairwise(points):
            if u <= q1:
                return v0 + (v1 - v0) * (u - q0) / (q1 - q0)
        return points[-1][1]

    return sample


def _diurnal_jobs(rng: random.Random, count: int, services: int, median_range: tuple[float, float]) -> list[Job]:
    """`count` jobs over a day with a 10x diurnal swing, from `services` services with Zipf-like shares; each
    service has its own requests and a duration distribution given as percentiles (p0, p1, p25 ... p100)."""
    weights = [1 / (k**1.2) for k in range(1, services + 1)]
    total = sum(weights)
    jobs: list[Job] = []
    for index, weight in enumerate(weights):
        requests = Resources.request(rng.choice((200, 500, 1000)), rng.choice((256, 512, 1024)))
        p50 = _log_uniform(rng, *median_range)
        sampler = _percentile_sampler(
            [
                (0.0, p50 / 10),
                (0.01, p50 / 5),
                (0.25, p50 / 2),
                (0.5, p50),
                (0.75, p50 * 2),
                (0.99, p50 * 8),
                (1.0, p50 * 20),
            ]
        )
        expected = count * weight / total
        rate_max = expected / DAY * 1.82  # the sine wave's peak is 1.82x its mean
        t = rng.expovariate(rate_max)
        while t < DAY:
            if rng.random() < diurnal_rate(t) / 1.82:
                jobs.append(Job(t, max(sampler(rng), 5.0), requests, service=f"svc-{index}"))
            t += rng.expovariate(rate_max)
    return jobs


def _knative_pods(rng: random.Random, count: int) -> list[Job]:
    """Synchronous services scaled up from zero by Knative in busy hours: interruptible, hours long."""
    return [
        Job(
            rng.uniform(9, 15) * 3600,
            rng.uniform(2, 4) * 3600,
            Resources.request(250, 512),
            interruptible=True,
            service="knative",
        )
        for _ in range(count)
    ]


def diurnal(seed: int) -> Scenario:
    """S3: ~4000 jobs with a 10x day/night swing from 8 services, plus 3 Knative pods in busy hours."""
    rng = random.Random(f"diurnal/{seed}")
    jobs = _diurnal_jobs(rng, 4000, 8, (30.0, 200.0)) + _knative_pods(rng, 3)
    return Scenario(
        "diurnal",
        "10x day/night swing, 8 services, 3 Knative pods, 12 workers booting in ~180 s",
        (NodePool(OSCAR_WN, 12),),
        _sorted(jobs),
    )


def edge(seed: int) -> Scenario:
    """S5: camera boards: arm64 boards booting in ~300 s and two amd64 mini-PCs; images every 15 min by day."""
    rng = random.Random(f"edge/{seed}")
    jobs: list[Job] = []
    services = [("detect", ARM64, 1500, 2048), ("thumbs", ANY, 1000, 1024), ("ocr", AMD64, 2000, 4096)]
    t = 6 * 3600.0
    while t < 20 * 3600:
        for _ in range(rng.randint(8, 20)):
            name, selector, cpu, memory = rng.choices(services, weights=(7, 2, 1))[0]
            duration = min(max(_lognormal(rng, 120, 0.4), 30.0), 900.0)
            jobs.append(Job(t + rng.uniform(0, 30), duration, Resources.request(cpu, memory), selector, service=name))
        t += 900
    t = rng.expovariate(6 / 3600)
    while t < DAY:
        jobs.append(
            Job(
                t, min(max(_lognormal(rng, 60, 0.5), 10.0), 600.0), Resources.request(1000, 1024), ANY, service="sensor"
            )
        )
        t += rng.expovariate(6 / 3600)
    pools = (
        NodePool(BOARD, 4, boot_median=300.0, boot_sigma=0.4, boot_failure=0.05, shutdown=(10.0, 30.0)),
        NodePool(MINIPC, 2, boot_median=120.0, boot_sigma=0.3, boot_failure=0.02, shutdown=(10.0, 30.0)),
    )
    return Scenario(
        "edge", "4 arm64 boards (~300 s boots) + 2 amd64 mini-PCs, camera bursts by day", pools, _sorted(jobs)
    )


AZURE2019_TRIGGERS = (("http", 55), ("queue", 15), ("timer", 16), ("orchestration", 7), ("event", 2), ("others", 5))


def azure2019(seed: int, functions: int = 200, jobs_per_day: int = 6000) -> Scenario:
    """Azure Functions 2019 shapes (see the module docstring) mapped onto OSCAR jobs on 10 workers."""
    rng = random.Random(f"azure2019/{seed}")
    raw = [10 ** rng.uniform(0, 8) for _ in range(functions)]
    scale = jobs_per_day / sum(raw)
    names, weights = zip(*AZURE2019_TRIGGERS, strict=True)
    jobs: list[Job] = []
    for index, daily in enumerate(raw):
        trigger = rng.choices(names, weights=weights)[0]
        count = daily * scale
        mean_exec = _lognormal(rng, 1.0, 2.0)
        requests = Resources.request(rng.choice((200, 500)), rng.choice((256, 512, 1024)))
        service = f"{trigger}-{index}"

        def duration(mean_exec: float = mean_exec) -> float:
            return 5.0 + min(mean_exec * _lognormal(rng, 1.0, 0.5), 1800.0)

        if trigger == "timer":
            if count < 1 and rng.random() > count:
                continue
            period = DAY / max(round(count), 1)
            t = rng.uniform(0, period)
            while t < DAY:
                jobs.append(Job(t, duration(), requests, service=service))
                t += period
            continue
        on = rng.random() < 0.25
        for minute in range(1440):
            # On/off modulation, mean 1: on for ~10 min at 4x, off for ~30 min; arrivals burstier than Poisson.
            if rng.random() < (0.1 if on else 1 / 30):
                on = not on
            if on:
                expected = count / 1440 * diurnal_rate(minute * 60.0, 3.0) * 4.0
                for _ in range(_poisson(rng, expected)):
                    jobs.append(Job(minute * 60.0 + rng.uniform(0, 60), duration(), requests, service=service))
    return Scenario(
        "azure2019",
        "Azure Functions 2019 shapes: 200 functions, rates over 8 decades, 10 workers",
        (NodePool(OSCAR_WN, 10),),
        _sorted(jobs),
    )


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(round(rng.gauss(mean, math.sqrt(mean))), 0)
    limit, product, count = math.exp(-mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count


def azure2021_rows(seed: int, apps: int = 120) -> list[tuple[str, str, float, float]]:
    """Synthetic rows in the Azure Functions 2021 schema: (app, func, end_timestamp, duration), one day."""
    rng = random.Random(f"azure2021/{seed}")
    rows: list[tuple[str, str, float, float]] = []
    for app in range(apps):
        daily = min(rng.paretovariate(1.0) * 8, 4_000)
        functions = rng.randint(1, 3)
        medians = [_log_uniform(rng, 0.01, 120.0) for _ in range(functions)]
        t = rng.expovariate(daily / DAY)
        burst_until = -1.0
        while t < DAY:
            func = rng.randrange(functions)
            duration = _lognormal(rng, medians[func], 0.8)
            rows.append((f"app{app:03d}", f"f{func}", t + duration, duration))
            if t > burst_until and rng.random() < 0.05:
                burst_until = t + rng.uniform(60, 600)
            gap = rng.expovariate(daily / DAY)
            t += gap / 10 if t < burst_until else gap
    return rows


def azure2021(seed: int) -> Scenario:
    """Azure Functions 2021 shapes (see the module docstring): invocations of 10 s or more on 10 workers."""
    from oscar_deploy.autoscaler.traces import jobs_from_azure2021

    jobs = jobs_from_azure2021(azure2021_rows(seed), Resources.request(500, 512))
    return Scenario(
        "azure2021",
        "Azure Functions 2021 shapes: bursty apps, invocations >= 10 s, 10 workers",
        (NodePool(OSCAR_WN, 10),),
        jobs,
    )


def large(seed: int, jobs: int = 100_000, nodes: int = 200) -> Scenario:
    """The timing scenario: a diurnal day of `jobs` jobs from 40 services on `nodes` workers."""
    rng = random.Random(f"large/{seed}")
    generated = _diurnal_jobs(rng, jobs, 40, (60.0, 400.0))
    return Scenario(
        "large",
        f"{len(generated)} jobs over a diurnal day on {nodes} workers",
        (NodePool(OSCAR_WN, nodes),),
        _sorted(generated),
    )


SCENARIOS: dict[str, Callable[[int], Scenario]] = {
    "sparse": sparse,
    "bursty": bursty,
    "diurnal": diurnal,
    "edge": edge,
    "azure2019": azure2019,
    "azure2021": azure2021,
}
