"""peaks: the "% peak" of host<->device transfers is of the link, never of device memory; the table shows it."""

import pytest

from benchbench.measure import peaks
from benchbench.model.report import CaseKey, Report, Result
from benchbench.output import tables

H100 = {"name": "cuda", "available": True, "device_name": "NVIDIA H100 80GB HBM3",
        "peaks": {"source": "datasheet", "flops": {"float32": 67e12}, "bandwidth": 3.35e12}}


def res(benchmark, median, params=None, metrics=None, bound=None, **work):
    return Result(key=CaseKey.make("tensor_ops", benchmark, params or {}, "cuda", "float32"), status="ok",
                  samples=[median] * 5, work=work, metrics=dict(metrics or {}), bound=bound)


def nvml_device(index, gen=5, width=16, **over):
    return {"index": index, "visible": True, "measured": False, "pcie_gen_max": gen, "pcie_width_max": width,
            **over}


def report(results, devices=None):
    facts = {"gpu": {"nvml": {"available": True, "devices": devices}}} if devices is not None else {}
    return Report(run_id="r", created_at="2026-01-01T00:00:00Z", results=results, backends=[H100],
                  environment={"facts": facts})


# 256 MiB in 10 ms: 26.8 GB/s over the link
TRANSFER = res("transfer", 0.01, params={"direction": "h2d", "memory": "pinned", "mib": 256},
               bound="link", bytes=256 * 2**20)
COPY = res("copy", 0.001, params={"numel": 2**24}, bound="memory", bytes=2 * 4 * 2**24)


def test_a_transfer_is_never_a_percentage_of_device_memory_bandwidth():
    rows = {row["case"]: row for row in tables.result_rows(report([TRANSFER, COPY]))}
    assert rows["tensor_ops/transfer[direction=h2d,memory=pinned,mib=256]"]["% peak"] == ""
    assert rows["tensor_ops/copy[numel=16777216]"]["% peak"] == "4%"  # 134 GB/s of 3.35 TB/s


def test_a_transfer_is_a_percentage_of_the_pcie_link_nvml_reported():
    r = report([TRANSFER], devices=[nvml_device(0, gen=4, measured=False), nvml_device(1, gen=5, measured=True)])
    assert peaks.link_bandwidth(r, "cuda") == pytest.approx(63.0e9, rel=1e-3)  # the measured GPU's gen 5 x16
    assert peaks.peak_fraction(TRANSFER, r) == {"link": pytest.approx(256 * 2**20 / 0.01 / 63.0e9, rel=1e-3)}
    assert tables.result_rows(r)[0]["% peak"] == "43%"


def test_no_link_percentage_when_the_link_or_the_gpu_is_unknown():
    assert peaks.link_bandwidth(report([TRANSFER], devices=[nvml_device(0, gen="unavailable: x")]), "cuda") is None
    two_unmeasured = report([TRANSFER], devices=[nvml_device(0), nvml_device(1)])
    assert peaks.link_bandwidth(two_unmeasured, "cuda") is None  # which GPU was measured is not known
    assert peaks.link_bandwidth(report([TRANSFER], devices=[nvml_device(0)]), "mps") is None
