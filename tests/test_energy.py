"""Energy counters: RAPL on a fake powercap tree (wraparound included), amd_energy on a fake hwmon tree,
NVML and amdsmi through fakes with their counters' semantics, and the tally a case's metrics come from."""

from __future__ import annotations

import json

import pytest
from fakes import FakeBackend, FakeClock, FakeTimer

from benchbench import Case, benchmark
from benchbench.measure import energy, nvml
from benchbench.measure.backends import Backend
from benchbench.measure.engine import Budget
from benchbench.model.report import CaseKey
from benchbench.run.execute import Prepared, prepare_case, run_case

TINY = Budget(warmup_calls=2, warmup_min_s=0.0, warmup_max_s=0.5, block_min_s=0.0005, min_samples=5,
              max_samples=20, max_time_s=0.2, target_rel_ci=0.05, timeout_s=60)


# --- RAPL ------------------------------------------------------------------------------------
def zone(root, name, label, uj, max_uj=262_143_328_850):
    d = root / name
    d.mkdir(parents=True)
    (d / "name").write_text(label + "\n")
    (d / "energy_uj").write_text(f"{uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def set_uj(d, uj):
    (d / "energy_uj").write_text(f"{uj}\n")


@pytest.fixture
def rapl_tree(tmp_path):
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)  # the control type, not a zone
    zones = {
        "pkg": zone(root, "intel-rapl:0", "package-0", 1_000_000),
        "core": zone(root, "intel-rapl:0:0", "core", 500_000),  # inside the package
        "dram": zone(root, "intel-rapl:0:1", "dram", 2_000_000, max_uj=65_712_999_613),
        "psys": zone(root, "intel-rapl:1", "psys", 9_000_000),  # contains the package
    }
    return root, zones


def test_rapl_reads_package_and_dram_only_and_adds_them(rapl_tree):
    root, zones = rapl_tree
    meter = energy.rapl_meter(str(root))
    assert isinstance(meter, energy.Meter)
    assert [c.name for c in meter.counters] == ["package-0", "dram-0"]
    start = meter.read()
    set_uj(zones["pkg"], 3_500_000)  # +2.5 J
    set_uj(zones["dram"], 2_250_000)  # +0.25 J
    set_uj(zones["core"], 99_000_000)
    set_uj(zones["psys"], 99_000_000)
    joules, _ = meter.since(start)
    assert joules == pytest.approx(2.75)


def test_rapl_counter_wraps_at_max_energy_range(rapl_tree):
    root, zones = rapl_tree
    max_uj = 262_143_328_850
    set_uj(zones["pkg"], max_uj - 1_000_000)  # 1 J before the rollover
    meter = energy.rapl_meter(str(root))
    start = meter.read()
    set_uj(zones["pkg"], 500_000)  # ... and 0.5 J after it
    joules, _ = meter.since(start)
    assert joules == pytest.approx(1.5)
    assert meter.counters[0].wrap_j == pytest.approx(max_uj * 1e-6)


def test_a_counter_that_goes_backwards_without_a_wrap_range_is_an_error():
    c = energy.Counter("x", lambda: 0.0, wrap_j=None)
    assert c.delta(1.0, 3.0) == 2.0
    with pytest.raises(ValueError, match="went backwards"):
        c.delta(3.0, 1.0)


def test_rapl_readable_by_root_only_says_so(rapl_tree, monkeypatch):
    root, _ = rapl_tree
    real = energy._read_int

    def deny(path):
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(energy, "_read_int", deny)
    reason = energy.rapl_meter(str(root))
    assert isinstance(reason, str) and "root only" in reason and "\n" not in reason


def test_no_powercap_tree_or_no_zones_is_a_reason(tmp_path):
    assert "absent" in energy.rapl_meter(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    assert "no package or DRAM zone" in energy.rapl_meter(str(tmp_path / "empty"))


def test_amd_energy_hwmon_socket_counters(tmp_path):
    hw = tmp_path / "hwmon" / "hwmon3"
    hw.mkdir(parents=True)
    (tmp_path / "hwmon" / "hwmon0").mkdir()
    (tmp_path / "hwmon" / "hwmon0" / "name").write_text("k10temp\n")
    (hw / "name").write_text("amd_energy\n")
    for i, (label, uj) in enumerate([("Ecore000", 5), ("Esocket0", 10_000_000), ("Esocket1", 20_000_000)], 1):
        (hw / f"energy{i}_label").write_text(label + "\n")
        (hw / f"energy{i}_input").write_text(f"{uj}\n")
    meter = energy.amd_energy_meter(str(tmp_path / "hwmon"))
    assert [c.name for c in meter.counters] == ["Esocket0", "Esocket1"]
    start = meter.read()
    (hw / "energy2_input").write_text("11000000\n")
    (hw / "energy3_input").write_text("23000000\n")
    assert meter.since(start)[0] == pytest.approx(4.0)


def test_cpu_meter_falls_back_to_amd_energy_then_gives_both_reasons(tmp_path, monkeypatch):
    monkeypatch.setattr(energy, "POWERCAP_ROOT", str(tmp_path / "no-powercap"))
    monkeypatch.setattr(energy, "HWMON_ROOT", str(tmp_path / "no-hwmon"))
    reason = energy.cpu_meter()
    assert isinstance(reason, str) and "RAPL" in reason and "amd_energy" in reason


# --- NVML ------------------------------------------------------------------------------------
class NVMLError(Exception):
    pass


class FakeNVML:
    """nvmlDeviceGetTotalEnergyConsumption: millijoules since the driver loaded, as an integer."""

    def __init__(self, devices, supported=True):
        self.devices = devices  # uuid -> name
        self.mj = 123_456_789  # not zero: the driver loaded long ago
        self.supported = supported
        self.inits = 0

    def nvmlInit(self):
        self.inits += 1

    def nvmlDeviceGetHandleByUUID(self, uuid):
        if uuid not in self.devices:
            raise NVMLError("Not Found")
        return uuid

    def nvmlDeviceGetHandleByIndex(self, i):
        return list(self.devices)[i]

    def nvmlDeviceGetName(self, h):
        return self.devices[h].encode()  # old pynvml versions return bytes

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if not self.supported:
            raise NVMLError("Not Supported")
        return self.mj


def test_nvml_counter_in_millijoules(monkeypatch):
    fake = FakeNVML({"GPU-aaa": "NVIDIA H100 80GB HBM3"})
    monkeypatch.setattr(nvml, "import_pynvml", lambda: fake)
    meter = energy.nvml_meter("GPU-aaa")
    assert meter.label == "nvml: NVIDIA H100 80GB HBM3"
    start = meter.read()
    fake.mj += 1500
    assert meter.since(start)[0] == pytest.approx(1.5)


def test_nvml_unsupported_device_missing_device_and_missing_package_are_reasons(monkeypatch):
    monkeypatch.setattr(nvml, "import_pynvml", lambda: FakeNVML({"GPU-p": "Tesla P100"}, supported=False))
    reason = energy.nvml_meter("GPU-p")
    assert "not supported on Tesla P100" in reason and "Volta" in reason
    assert "no device GPU-x" in energy.nvml_meter("GPU-x")

    def missing():
        raise ImportError("No module named 'pynvml'")

    monkeypatch.setattr(nvml, "import_pynvml", missing)
    assert "nvidia-ml-py is not installed" in energy.nvml_meter("GPU-p")


def test_open_meter_picks_nvml_by_the_backends_uuid(monkeypatch):
    fake = FakeNVML({"GPU-0": "first", "GPU-1": "second"})
    monkeypatch.setattr(nvml, "import_pynvml", lambda: fake)
    cuda = Backend("cuda", True, device="cuda:0", properties={"platform": "cuda", "uuid": "GPU-1"})
    assert energy.open_meter(cuda).label == "nvml: second"
    assert "unavailable" in energy.open_meter(Backend("cuda", False, "no driver"))
    assert "mps" in energy.open_meter(Backend("mps", True))


# --- amdsmi ------------------------------------------------------------------------------------
class FakeAmdSmi:
    def __init__(self, key="energy_accumulator"):
        self.count, self.key = 1000, key

    def amdsmi_init(self):
        pass

    def amdsmi_get_processor_handles(self):
        return ["h0"]

    def amdsmi_get_energy_count(self, h):
        return {self.key: self.count, "counter_resolution": 15.3, "timestamp": 0}


@pytest.mark.parametrize("key", ["energy_accumulator", "power"])  # new and old amdsmi spell it differently
def test_amdsmi_counter_times_its_resolution_in_microjoules(monkeypatch, key):
    fake = FakeAmdSmi(key)
    monkeypatch.setattr(energy, "import_module", lambda name: fake)
    meter = energy.amdsmi_meter(0)
    start = meter.read()
    fake.count += 100_000
    assert meter.since(start)[0] == pytest.approx(100_000 * 15.3e-6)
    rocm = Backend("cuda", True, device="cuda:0", properties={"platform": "rocm"})
    assert energy.open_meter(rocm).source == "amdsmi"


def test_amdsmi_missing_is_a_reason(monkeypatch):
    def missing(name):
        raise ImportError(name)

    monkeypatch.setattr(energy, "import_module", missing)
    assert "amdsmi is not installed" in energy.amdsmi_meter()


# --- the tally and the case ---------------------------------------------------------------------
class Power:
    """A counter that integrates a power (watts) over a fake clock."""

    def __init__(self, clock, watts):
        self.clock, self.watts, self.j, self.t = clock, watts, 0.0, 0.0

    def read(self):
        self.j += self.watts * (self.clock.t - self.t)
        self.t = self.clock.t
        return self.j


def test_tally_metrics_and_reasons():
    clock = FakeClock()
    power = Power(clock, 40.0)
    tally = energy.Tally.of(energy.Meter("rapl", [energy.Counter("package-0", power.read)], clock))
    for _ in range(3):
        tally.start()
        clock.t += 0.5
        tally.stop(calls=100)
    m = tally.metrics()
    assert m == pytest.approx({"energy": "rapl: package-0", "energy_j_per_call": 0.2, "power_w": 40.0})
    assert energy.Tally.of(None) is None
    assert energy.Tally.of("no RAPL counters").metrics() == {"energy": "unavailable: no RAPL counters"}
    still = energy.Tally.of(energy.Meter("nvml", [energy.Counter("gpu", lambda: 7.0)], clock))
    still.start()
    clock.t += 0.1
    still.stop(10)
    assert "did not advance in 0.1 s" in still.metrics()["energy"]


def test_a_counter_failing_mid_case_makes_energy_unavailable_not_the_case():
    reads = iter([1.0])

    def flaky():
        return next(reads)  # StopIteration on the second read

    tally = energy.Tally.of(energy.Meter("rapl", [energy.Counter("package-0", flaky)]))
    tally.start()
    tally.stop(5)
    assert tally.metrics()["energy"].startswith("unavailable: reading rapl: package-0 failed")


def test_run_case_reads_energy_over_the_sampling_phase_only():
    """Warm-up draws 500 W, sampling 50 W: only sampling counts, so the case reads 50 W and 50 W x the time
    per call, which the fake timer makes exactly 1 ms."""
    clock = FakeClock()
    be = FakeBackend(timer=FakeTimer(clock, lambda i: 1e-3))
    power = Power(clock, 500.0)

    def on_phase(p):
        power.read()  # settle the energy drawn so far at the old power
        power.watts = 50.0 if p == "measure" else 500.0

    @benchmark()
    def b(ctx):
        return Case(lambda: None, items=1)

    meter = energy.Meter("rapl", [energy.Counter("package-0", power.read)], clock)
    r = run_case(b, CaseKey.make("t", "b"), be, TINY, clock=clock, on_phase=on_phase, meter=meter)
    assert r.status == "ok"
    assert r.metrics["energy"] == "rapl: package-0"
    assert r.metrics["power_w"] == pytest.approx(50.0)
    assert r.metrics["energy_j_per_call"] == pytest.approx(50.0 * 1e-3)


def test_interleaved_blocks_sum_their_energy():
    clock = FakeClock()
    be = FakeBackend(timer=FakeTimer(clock, lambda i: 2e-3))
    power = Power(clock, 30.0)

    @benchmark()
    def b(ctx):
        return Case(lambda: None)

    meter = energy.Meter("nvml", [energy.Counter("gpu", power.read)], clock)
    prepared = prepare_case(b, CaseKey.make("t", "b"), be, clock=clock, meter=meter)
    assert isinstance(prepared, Prepared)
    prepared.calibrate(TINY)
    for loops in (10, 20, 10):
        prepared.block(loops)
        clock.t += 1.0  # the other side's block: not this case's energy
    r = prepared.result()
    assert r.metrics["energy_j_per_call"] == pytest.approx(30.0 * 2e-3)
    assert r.metrics["power_w"] == pytest.approx(30.0)


def test_without_readers_every_energy_field_says_unavailable_with_the_reason(tmp_path, monkeypatch):
    """This VM: no powercap, no hwmon, no NVML. The case runs, and its energy is one line saying why."""
    from benchbench.model.report import Report
    from benchbench.output.tables import results_table

    monkeypatch.setattr(energy, "POWERCAP_ROOT", str(tmp_path / "powercap"))
    monkeypatch.setattr(energy, "HWMON_ROOT", str(tmp_path / "hwmon"))
    clock = FakeClock()
    be = FakeBackend(timer=FakeTimer(clock, lambda i: 1e-3))

    @benchmark()
    def b(ctx):
        return Case(lambda: None)

    meter = energy.open_meter(be)
    assert isinstance(meter, str)
    r = run_case(b, CaseKey.make("t", "b"), be, TINY, clock=clock, meter=meter)
    assert r.status == "ok"
    assert set(r.metrics) & {"energy", "energy_j_per_call", "power_w"} == {"energy"}
    assert r.metrics["energy"].startswith("unavailable: no RAPL counters") and "amd_energy" in r.metrics["energy"]
    table = results_table(Report(run_id="x", created_at="now", results=[r]))
    assert "energy" not in table.splitlines()[0]  # no column of "unavailable": one line says why
    lines = [line for line in table.splitlines() if line.startswith("energy unavailable: ")]
    assert lines == [f"energy {r.metrics['energy']}"]


def test_self_timed_case_says_why_it_has_no_energy():
    @benchmark()
    def external(ctx):
        return Case(None, samples=[1.0, 1.1, 0.9])

    meter = energy.Meter("rapl", [energy.Counter("package-0", lambda: 1.0)])
    clock = FakeClock()
    r = run_case(external, CaseKey.make("t", "external"), FakeBackend(timer=FakeTimer(clock, lambda i: 1e-3)),
                 TINY, clock=clock, meter=meter)
    assert r.metrics["energy"].startswith("unavailable: the benchmark times itself")


def test_a_report_whose_energy_metric_is_not_text_is_refused():
    from benchbench.errors import ReportError
    from benchbench.model.report import Report, Result, dumps, parse

    r = Result(key=CaseKey.make("t", "b"), status="ok", samples=[1.0], metrics={"energy": "rapl: package-0",
                                                                               "energy_j_per_call": 0.5})
    doc = json.loads(dumps(Report(run_id="x", created_at="now", results=[r])))
    assert parse(doc).results[0].metrics["energy_j_per_call"] == 0.5
    doc["results"][0]["metrics"]["energy"] = 5
    with pytest.raises(ReportError, match="energy"):
        parse(doc)


def test_table_cell_csv_columns_and_reasons_of_measured_and_unmeasured_cases():
    import csv
    import io

    from benchbench.model.report import Report, Result
    from benchbench.output.energy import energy_cell, energy_lines, fmt_joules
    from benchbench.output.tables import results_csv

    measured = Result(key=CaseKey.make("t", "a"), status="ok", samples=[1e-3],
                      metrics={"energy": "nvml: GPU", "energy_j_per_call": 0.0123, "power_w": 41.0})
    without = Result(key=CaseKey.make("t", "b"), status="ok", samples=[1e-3],
                     metrics={"energy": "unavailable: no RAPL counters"})
    older = Result(key=CaseKey.make("t", "c"), status="ok", samples=[1e-3])
    assert energy_cell(measured) == "12.3 mJ/call, 41 W"
    assert energy_cell(without) == "unavailable" and energy_cell(older) == ""
    report = Report(run_id="x", created_at="now", results=[measured, without, older])
    assert energy_lines(report) == ["energy unavailable: no RAPL counters (1 of 3 cases)"]
    rows = {r["benchmark"]: r for r in csv.DictReader(io.StringIO(results_csv(report)))}
    assert rows["a"]["energy_j_per_call"] == "0.0123" and rows["a"]["power_w"] == "41.0"
    assert rows["b"]["energy"] == "unavailable: no RAPL counters" and rows["b"]["energy_j_per_call"] == ""
    assert [fmt_joules(x) for x in (2.5, 0.0123, 4.5e-6, None)] == ["2.5 J", "12.3 mJ", "4.5 uJ", "-"]
