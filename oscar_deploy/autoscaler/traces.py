"""Readers that turn public trace files into simulator jobs, refusing malformed rows with file and line.

Alibaba cluster-trace-gpu-v2023 pod lists (`csv/openb_pod_list_*.csv` in github.com/alibaba/clusterdata):
columns name, cpu_milli, memory_mib, num_gpu, gpu_milli, gpu_spec, qos, pod_phase, creation_time,
deletion_time, scheduled_time (times in seconds; scheduled_time is empty for pods never scheduled). A pod
becomes a job submitted at its creation time that runs from scheduling to deletion. GPU sharing (gpu_milli)
is not modelled: a pod asking for GPUs gets whole ones. Arrivals are compressed by `speedup` (the trace
spans months) while run times are kept, which is what puts the cluster under pressure.

Azure Functions 2021 invocation traces (`AzureFunctionsInvocationTrace2021.md` in
github.com/Azure/AzurePublicDataset): columns app, func, end_timestamp, duration (seconds).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from oscar_deploy.autoscaler.model import NodeTemplate, Resources
from oscar_deploy.autoscaler.simulator import Job, NodePool, Scenario
from oscar_deploy.support.errors import UserInputError, shown
from oscar_deploy.support.files import open_user_text

ALIBABA_COLUMNS = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)
AZURE2021_COLUMNS = ("app", "func", "end_timestamp", "duration")
MAX_ROWS = 2_000_000
# Node shapes seen in the v2023 node list: CPU-only 32 cores / 256 GiB, GPU nodes 96 cores / 768 GiB / 8 GPUs.
ALIBABA_CPU_NODE = NodeTemplate("cpu", "amd64", Resources.node(32_000, 262_144))
ALIBABA_GPU_NODE = NodeTemplate("gpu", "amd64", Resources.node(96_000, 786_432, 8), {"accelerator": "gpu"}, 4.0)


@dataclass(frozen=True, slots=True)
class AlibabaPod:
    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    qos: str
    phase: str
    created: float
    deleted: float
    scheduled: float | None


def _rows(path: Path, columns: Sequence[str], what: str) -> Iterable[tuple[int, dict[str, str]]]:
    with open_user_text(path, f"{what} CSV file", missing=f"give the path of a {what} CSV file") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise UserInputError(f"{path}:1: empty file; expected a {what} CSV with header {','.join(columns)}")
            missing = [c for c in columns if c not in header]
            if missing:
                raise UserInputError(
                    f"{path}:1: missing column(s) {', '.join(missing)}; expected the {what} header {','.join(columns)}"
                )
            for row in reader:
                if reader.line_num > MAX_ROWS:
                    raise UserInputError(f"{path}:{reader.line_num}: more than {MAX_ROWS} rows; use a smaller file")
                if not row:
                    continue
                if len(row) != len(header):
                    fields = f"{len(row)} fields, the header has {len(header)}"
                    raise UserInputError(f"{path}:{reader.line_num}: {fields}; fix or remove the row")
                yield reader.line_num, dict(zip(header, row, strict=True))
        except UnicodeDecodeError as exc:
            # The text is decoded in blocks ahead of the CSV reader, so its line count does not say where.
            raise UserInputError(
                f"{path}: the {what} CSV file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save it as UTF-8"
            ) from None
        except csv.Error as exc:
            raise UserInputError(f"{path}:{reader.line_num}: not valid CSV ({exc}); fix the file") from None


def _number(path: Path, line: int, row: dict[str, str], column: str, integer: bool = False) -> float:
    text = row[column].strip()
    try:
        value = float(int(text)) if integer else float(text)
    except OverflowError:  # a whole number beyond float's range
        raise UserInputError(f"{path}:{line}: {column} {shown(text)} is too large; fix or remove the row") from None
    except ValueError:  # also a whole number of more than 4300 digits, which int() refuses to read
        kind = "a whole number" if integer else "a number"
        raise UserInputError(f"{path}:{line}: {column} {shown(text)} is not {kind}; fix or remove the row") from None
    if not math.isfinite(value) or value < 0:
        raise UserInputError(
            f"{path}:{line}: {column} {shown(text)} must be a finite number >= 0; fix or remove the row"
        )
    return value


def read_alibaba_pod_list(path: Path) -> list[AlibabaPod]:
    """The pods of an Alibaba cluster-trace-gpu-v2023 pod list; UserInputError names file and line."""
    pods = []
    for line, row in _rows(path, ALIBABA_COLUMNS, "cluster-trace-gpu-v2023 pod list"):
        created = _number(path, line, row, "creation_time")
        deleted = _number(path, line, row, "deletion_time")
        scheduled = None if not row["scheduled_time"].strip() else _number(path, line, row, "scheduled_time")
        if deleted < created:
            raise UserInputError(f"{path}:{line}: deletion_time is before creation_time; fix or remove the row")
        if scheduled is not None and not created <= scheduled <= deleted:
            raise UserInputError(
                f"{path}:{line}: scheduled_time is outside creation_time..deletion_time; fix or remove the row"
            )
        pods.append(
            AlibabaPod(
                name=row["name"],
                cpu_milli=int(_number(path, line, row, "cpu_milli", integer=True)),
                memory_mib=int(_number(path, line, row, "memory_mib", integer=True)),
                num_gpu=int(_number(path, line, row, "num_gpu", integer=True)),
                qos=row["qos"],
                phase=row["pod_phase"],
                created=created,
                deleted=deleted,
                scheduled=scheduled,
            )
        )
    if not pods:
        raise UserInputError(f"{path}: no pods in the file; give a pod list with at least one row")
    return pods


def _ran(pods: Sequence[AlibabaPod]) -> list[AlibabaPod]:
    """The trace pods a replay keeps: those that were scheduled (the others never ran)."""
    return [pod for pod in pods if pod.scheduled is not None]


def arrival_span(pods: Sequence[AlibabaPod]) -> float:
    """Seconds from the first to the last arrival of the trace pods that ran, as recorded (0 when none ran)."""
    created = [pod.created for pod in _ran(pods)]
    return max(created) - min(created) if created else 0.0


def scenario_from_alibaba(
    pods: Sequence[AlibabaPod], name: str, speedup: float = 100.0, max_nodes: int = 200
) -> Scenario:
    """A scenario from trace pods: arrivals compressed by `speedup`, pools sized to 1.2x the peak demand."""
    ran = _ran(pods)
    if not ran:
        raise UserInputError(f"{name}: no pod in the trace was ever scheduled; nothing to simulate")
    origin = min(pod.created for pod in ran)
    jobs = []
    for pod in ran:
        assert pod.scheduled is not None
        requests = Resources.request(pod.cpu_milli, pod.memory_mib, pod.num_gpu)
        jobs.append(
            Job((pod.created - origin) / speedup, max(pod.deleted - pod.scheduled, 1.0), requests, service=pod.qos)
        )
    jobs.sort(key=lambda job: job.submit)
    gpu_jobs = [job for job in jobs if job.requests.gpu]
    cpu_jobs = [job for job in jobs if not job.requests.gpu]
    gpu_nodes = math.ceil(1.2 * _peak(gpu_jobs, lambda r: r.gpu) / ALIBABA_GPU_NODE.allocatable.gpu)
    cpu_nodes = math.ceil(1.2 * _peak(cpu_jobs, lambda r: r.cpu_milli) / ALIBABA_CPU_NODE.allocatable.cpu_milli)
    half = max_nodes // 2
    pools = tuple(
        NodePool(template, min(max(count, 1), half))
        for template, count in ((ALIBABA_CPU_NODE, cpu_nodes), (ALIBABA_GPU_NODE, gpu_nodes))
        if count or template is ALIBABA_CPU_NODE
    )
    horizon = max(job.submit for job in jobs) + 3600.0
    return Scenario(
        name,
        f"{len(jobs)} pods of an Alibaba v2023 pod list, arrivals x{speedup:g} faster",
        pools,
        tuple(jobs),
        horizon=horizon,
    )


def _peak(jobs: Sequence[Job], measure: Callable[[Resources], int]) -> float:
    """The highest total of `measure` over the jobs running at the same time."""
    changes: list[tuple[float, float]] = []
    for job in jobs:
        size = float(measure(job.requests))
        changes.append((job.submit, size))
        changes.append((job.submit + job.duration, -size))
    changes.sort()
    level = peak = 0.0
    for _, delta in changes:
        level += delta
        peak = max(peak, level)
    return peak


def read_azure2021_csv(path: Path) -> list[tuple[str, str, float, float]]:
    """Rows (app, func, end_timestamp, duration) of an Azure Functions 2021 invocation trace CSV."""
    rows = []
    for line, row in _rows(path, AZURE2021_COLUMNS, "Azure Functions 2021 invocation trace"):
        end = _number(path, line, row, "end_timestamp")
        duration = _number(path, line, row, "duration")
        rows.append((row["app"], row["func"], end, duration))
    return rows


def jobs_from_azure2021(
    rows: Iterable[tuple[str, str, float, float]], requests: Resources, min_duration: float = 10.0
) -> tuple[Job, ...]:
    """Jobs from invocation rows: start = end - duration, only invocations of at least `min_duration`."""
    jobs = [
        Job(max(end - duration, 0.0), duration, requests, service=f"{app}/{func}")
        for app, func, end, duration in rows
        if duration >= min_duration
    ]
    jobs.sort(key=lambda job: job.submit)
    return tuple(jobs)
