"""Trace readers: the Alibaba v2023 pod-list format on a labelled sample, malformed rows, Azure 2021 rows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oscar_deploy.autoscaler.baselines import POLICIES
from oscar_deploy.autoscaler.model import Resources
from oscar_deploy.autoscaler.simulator import simulate
from oscar_deploy.autoscaler.traces import (
    jobs_from_azure2021,
    read_alibaba_pod_list,
    read_azure2021_csv,
    scenario_from_alibaba,
)
from oscar_deploy.autoscaler.workloads import azure2021_rows
from oscar_deploy.support.errors import UserInputError

SAMPLE = Path(__file__).parents[2] / "data" / "alibaba" / "openb_pod_list_sample.csv"
HEADER = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time"


def test_reads_the_sample_pod_list() -> None:
    pods = read_alibaba_pod_list(SAMPLE)
    assert len(pods) == 10
    first, pending, gpu = pods[0], pods[5], pods[2]
    assert (first.name, first.cpu_milli, first.memory_mib, first.num_gpu) == ("sample-pod-00", 8000, 16384, 1)
    assert (first.created, first.deleted, first.scheduled) == (0.0, 90000.0, 0.0)
    assert (pending.phase, pending.scheduled) == ("Pending", None)
    assert (gpu.num_gpu, gpu.qos) == (2, "LS")


def test_trace_becomes_a_scenario_with_compressed_arrivals() -> None:
    scenario = scenario_from_alibaba(read_alibaba_pod_list(SAMPLE), "trace:sample", speedup=100.0)
    assert len(scenario.jobs) == 9  # the pod that was never scheduled is left out
    submits = [job.submit for job in scenario.jobs]
    assert submits[:3] == [0.0, 12.0, 30.0]
    assert scenario.jobs[1].duration == 4800 - 1205  # run time is kept: deletion minus scheduling
    assert scenario.jobs[2].requests == Resources.request(16000, 65536, 2)
    assert [pool.template.name for pool in scenario.pools] == ["cpu", "gpu"]
    metrics = simulate(scenario, POLICIES["oscar-deploy"].build(scenario, None), seed=1)
    assert (metrics.jobs, metrics.unfinished, metrics.jobs_killed) == (9, 0, 0)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("a,abc,1,0,0,,LS,Running,0,10,0", "{path}:2: cpu_milli 'abc' is not a whole number; fix or remove the row"),
        ("a,1000,1,0,0,,LS,Running,0,10", "{path}:2: 10 fields, the header has 11; fix or remove the row"),
        ("a,1000,1,0,0,,LS,Running,50,10,50", "{path}:2: deletion_time is before creation_time; fix or remove the row"),
        (
            "a,1000,1,0,0,,LS,Running,0,10,20",
            "{path}:2: scheduled_time is outside creation_time..deletion_time; fix or remove the row",
        ),
        (
            "a,1000,-1,0,0,,LS,Running,0,10,0",
            "{path}:2: memory_mib '-1' must be a finite number >= 0; fix or remove the row",
        ),
        (
            "a,1000,1,0,0,,LS,Running,nan,10,0",
            "{path}:2: creation_time 'nan' must be a finite number >= 0; fix or remove the row",
        ),
        (
            "a," + "9" * 400 + ",1,0,0,,LS,Running,0,10,0",
            "{path}:2: cpu_milli '" + "9" * 40 + "...' is too large; fix or remove the row",
        ),
        (
            "a," + "9" * 5000 + ",1,0,0,,LS,Running,0,10,0",
            "{path}:2: cpu_milli '" + "9" * 40 + "...' is not a whole number; fix or remove the row",
        ),
        (
            "a,1000,1,0,0,,LS,Running,0,10," + "1" * 400,
            "{path}:2: scheduled_time '" + "1" * 40 + "...' must be a finite number >= 0; fix or remove the row",
        ),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "pods.csv"
    path.write_text(f"{HEADER}\n{rows}\n")
    with pytest.raises(UserInputError) as error:
        read_alibaba_pod_list(path)
    assert str(error.value) == message.format(path=path)
    assert error.value.exit_code == 2


def test_a_trace_that_is_not_utf8_is_one_line_without_a_made_up_line(tmp_path: Path) -> None:
    path = tmp_path / "pods.csv"
    path.write_bytes(f"{HEADER}\n".encode() + "caf\xe9,1000,1,0,0,,LS,Running,0,10,0\n".encode("latin-1"))
    with pytest.raises(UserInputError) as error:
        read_alibaba_pod_list(path)
    assert str(error.value) == (
        f"{path}: the cluster-trace-gpu-v2023 pod list CSV file is not UTF-8 text (byte 0xe9); save it as UTF-8"
    )


def test_wrong_header_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "pods.csv"
    path.write_text("name,cpu\nx,1\n")
    with pytest.raises(UserInputError, match=r"pods.csv:1: missing column\(s\) cpu_milli, memory_mib, num_gpu,"):
        read_alibaba_pod_list(path)
    path.write_text("")
    with pytest.raises(UserInputError, match=r"pods.csv:1: empty file; expected a cluster-trace-gpu-v2023 pod list"):
        read_alibaba_pod_list(path)
    path.write_text(HEADER + "\n")
    with pytest.raises(UserInputError, match="no pods in the file"):
        read_alibaba_pod_list(path)


def test_a_trace_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as missing:
        read_alibaba_pod_list(tmp_path / "missing.csv")
    assert str(missing.value) == (
        f"{tmp_path / 'missing.csv'}: no such cluster-trace-gpu-v2023 pod list CSV file; give the path of a "
        "cluster-trace-gpu-v2023 pod list CSV file"
    )
    os.mkfifo(tmp_path / "pipe.csv")  # opening a FIFO for reading would wait for a writer
    with pytest.raises(UserInputError) as fifo:
        read_azure2021_csv(tmp_path / "pipe.csv")
    assert str(fifo.value) == (
        f"{tmp_path / 'pipe.csv'}: is a FIFO (named pipe), not a regular file; pass a regular file as the Azure "
        "Functions 2021 invocation trace CSV file"
    )
    with pytest.raises(UserInputError) as folder:
        read_alibaba_pod_list(tmp_path)
    assert str(folder.value) == (
        f"{tmp_path}: is a folder, not a regular file; pass a regular file as the cluster-trace-gpu-v2023 pod list "
        "CSV file"
    )


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    path = tmp_path / "invocations.csv"
    path.write_bytes(b"\xef\xbb\xbfapp,func,end_timestamp,duration\na1,f1,100.5,0.134\n")
    assert read_azure2021_csv(path) == [("a1", "f1", 100.5, 0.134)]


def test_azure2021_rows_become_jobs_of_ten_seconds_or_more(tmp_path: Path) -> None:
    path = tmp_path / "invocations.csv"
    path.write_text("app,func,end_timestamp,duration\na1,f1,100.5,0.134\na1,f2,160.0,42.0\na2,f1,20.0,30.0\n")
    rows = read_azure2021_csv(path)
    assert rows == [("a1", "f1", 100.5, 0.134), ("a1", "f2", 160.0, 42.0), ("a2", "f1", 20.0, 30.0)]
    jobs = jobs_from_azure2021(rows, Resources.request(500, 512))
    assert [(job.submit, job.duration, job.service) for job in jobs] == [(0.0, 30.0, "a2/f1"), (118.0, 42.0, "a1/f2")]
    path.write_text("app,func,end_timestamp,duration\na1,f1,soon,1\n")
    with pytest.raises(UserInputError, match=r"invocations.csv:2: end_timestamp 'soon' is not a number"):
        read_azure2021_csv(path)


def test_synthetic_azure2021_rows_follow_the_schema() -> None:
    rows = azure2021_rows(1, apps=5)
    assert rows == azure2021_rows(1, apps=5)
    assert all(
        isinstance(app, str) and isinstance(func, str) and end >= duration > 0 for app, func, end, duration in rows
    )
