"""Energy meters: RAPL over a fake powercap tree, NVML through a fake pynvml module."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import pytest

from perfcast.bench import energy
from perfcast.bench.energy import (
    EnergyReading,
    EnergyUnavailable,
    NvmlMeter,
    RaplMeter,
    energy_meters,
    measure_energy,
)


def _zone(root: Path, dirname: str, name: str, energy_uj: int | None, max_uj: int) -> Path:
    zone = root / dirname
    zone.mkdir(parents=True)
    (zone / "name").write_text(f"{name}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    if energy_uj is None:
        (zone / "energy_uj").mkdir()  # reading it fails like a root-only file does
    else:
        (zone / "energy_uj").write_text(f"{energy_uj}\n")
    return zone


def _set(zone: Path, energy_uj: int) -> None:
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def powercap(tmp_path: Path) -> dict[str, Path]:
    """Two readable packages, one unreadable, plus zones the meter must ignore."""
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)  # the control type, not a zone
    zones = {
        "pkg0": _zone(root, "intel-rapl:0", "package-0", 1_000_000, 10_000_000),
        "pkg1": _zone(root, "intel-rapl:1", "package-1", 9_000_000, 10_000_000),
        "pkg2": _zone(root, "intel-rapl:2", "package-2", None, 10_000_000),
        "psys": _zone(root, "intel-rapl:3", "psys", 5_000_000, 10_000_000),
        "core": _zone(root, "intel-rapl:0:0", "core", 0, 10_000_000),
        "mmio": _zone(root, "intel-rapl-mmio:0", "package-0", 0, 10_000_000),
    }
    return {"root": root, **zones}


def test_rapl_sums_packages_and_unwraps(powercap: dict[str, Path]) -> None:
    meter = RaplMeter(powercap["root"])
    assert sorted(meter.domains) == ["package-0", "package-1"]
    assert meter.domains["package-0"].path.name == "intel-rapl:0"  # not the MMIO copy
    assert len(meter.unreadable) == 1 and "package-2" in meter.unreadable[0]
    assert "needs root" in meter.unreadable[0]
    assert meter.read_j() == 0.0
    with measure_energy([meter]) as span:
        _set(powercap["pkg0"], 3_500_000)  # +2.5 J
        _set(powercap["pkg1"], 500_000)  # wrapped: 500_000 - 9_000_000 + 10_000_000 = 1.5 J
        _set(powercap["psys"], 9_000_000)  # ignored: psys includes the packages
        _set(powercap["core"], 7_000_000)  # ignored: a sub-zone
    assert span.reading is not None
    assert span.reading.joules == {"rapl": 4.0}
    assert span.reading.total_j == 4.0
    assert meter.read_j() == 4.0


def test_rapl_falls_back_to_psys(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", "package-0", None, 100)
    psys = _zone(tmp_path, "intel-rapl:1", "psys", 40, 100)
    meter = RaplMeter(tmp_path)
    assert list(meter.domains) == ["psys"]
    _set(psys, 10)
    assert meter.read_j() == pytest.approx(70e-6)


def test_rapl_reasons(tmp_path: Path) -> None:
    with pytest.raises(EnergyUnavailable, match="not present"):
        RaplMeter(tmp_path / "missing")
    with pytest.raises(EnergyUnavailable, match="no package or psys domain"):
        RaplMeter(tmp_path)
    _zone(tmp_path, "intel-rapl:0", "package-0", None, 100)
    with pytest.raises(EnergyUnavailable, match=r"energy_uj not readable \(needs root"):
        RaplMeter(tmp_path)


def test_energy_meters_uses_powercap_root(powercap, monkeypatch) -> None:
    monkeypatch.setattr(energy, "POWERCAP", powercap["root"])
    meters, reasons = energy_meters("cpu")
    assert [m.name for m in meters] == ["rapl"]
    assert len(reasons) == 1 and "package-2" in reasons[0]


def test_energy_meters_without_powercap(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(energy, "POWERCAP", tmp_path / "powercap")
    meters, reasons = energy_meters("cpu")
    assert meters == []
    assert reasons == [
        f"RAPL: {tmp_path / 'powercap'} not present (no CPU energy counter on this machine)"
    ]


def test_energy_meters_on_this_machine() -> None:
    meters, reasons = energy_meters("cpu")
    if not energy.POWERCAP.exists():
        assert meters == [] and "powercap" in reasons[0]
    cuda_meters, cuda_reasons = energy_meters("cuda")
    if not any(isinstance(m, NvmlMeter) for m in cuda_meters):
        assert any(r.startswith("NVML: ") for r in cuda_reasons)


class FakeNvml:
    """State behind a fake ``pynvml`` module."""

    NOT_SUPPORTED, LIBRARY_NOT_FOUND = 3, 12

    def __init__(self, *, energy_mj: list[int] | None = None, power=None, init_error=None):
        self.energy_mj = energy_mj
        self.power = power  # () -> milliwatts
        self.init_error = init_error
        self.handles: list[object] = []
        self.power_calls = 0
        self.shutdowns = 0

    def module(self) -> types.ModuleType:
        mod = types.ModuleType("pynvml")

        class NVMLError(Exception):
            def __init__(self, value: int) -> None:
                super().__init__(f"NVML error {value}")
                self.value = value

        def init() -> None:
            if self.init_error is not None:
                raise NVMLError(self.init_error)

        def total_energy(handle: object) -> int:
            if self.energy_mj is None:
                raise NVMLError(self.NOT_SUPPORTED)
            return self.energy_mj.pop(0)

        def power(handle: object) -> int:
            self.power_calls += 1
            return self.power()

        def shutdown() -> None:
            self.shutdowns += 1

        mod.NVMLError = NVMLError
        mod.NVML_ERROR_LIBRARY_NOT_FOUND = self.LIBRARY_NOT_FOUND
        mod.nvmlInit = init
        mod.nvmlShutdown = shutdown
        mod.nvmlDeviceGetHandleByIndex = lambda i: self.handles.append(i) or i
        mod.nvmlDeviceGetHandleByUUID = lambda u: self.handles.append(u) or u
        mod.nvmlDeviceGetTotalEnergyConsumption = total_energy
        mod.nvmlDeviceGetPowerUsage = power
        return mod


def _install(monkeypatch, fake: FakeNvml) -> FakeNvml:
    monkeypatch.setitem(sys.modules, "pynvml", fake.module())
    return fake


def test_nvml_total_energy_counter(monkeypatch) -> None:
    fake = _install(monkeypatch, FakeNvml(energy_mj=[7, 1_000_000, 1_002_500, 1_004_000]))
    meter = NvmlMeter(2)
    assert meter.name == "gpu2" and not meter.sampled
    with measure_energy([meter]) as span:
        pass
    assert span.reading is not None and span.reading.joules == {"gpu2": 2.5}
    assert meter.read_j() == 1004.0
    meter.close()
    assert fake.handles == [2] and fake.shutdowns == 1


def test_nvml_samples_power_when_no_counter(monkeypatch) -> None:
    now = [0.0]
    # Power ramps linearly, 100 W + 50 W/s, so the trapezoid rule is exact.
    fake = _install(monkeypatch, FakeNvml(power=lambda: round(1e3 * (100 + 50 * now[0]))))
    meter = NvmlMeter(0, interval_s=3600, clock=lambda: now[0])  # the thread never wakes
    assert meter.sampled
    assert meter.read_j() == 0.0
    now[0] = 2.0
    assert meter.read_j() == 300.0  # 100 * 2 + 25 * 2**2
    now[0] = 4.0
    assert meter.read_j() == 800.0  # 100 * 4 + 25 * 4**2
    meter.close()
    assert fake.shutdowns == 1


def test_nvml_sampling_thread_runs_between_reads(monkeypatch) -> None:
    fake = _install(monkeypatch, FakeNvml(power=lambda: 50_000))
    meter = NvmlMeter(0, interval_s=0.001)
    start = time.perf_counter()
    with measure_energy([meter]) as span:
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    meter.close()
    assert fake.power_calls > 5  # the thread sampled, not only the two reads
    assert span.reading is not None
    assert 0 < span.reading.joules["gpu0"] <= 50 * elapsed
    assert span.reading.mean_w == pytest.approx(50, rel=0.2)


def test_energy_meters_cuda_maps_visible_devices(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(energy, "POWERCAP", tmp_path / "none")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    fake = _install(monkeypatch, FakeNvml(energy_mj=[0, 0]))
    meters, reasons = energy_meters("cuda:1")
    assert [m.name for m in meters] == ["gpu5"] and fake.handles == [5]
    assert len(reasons) == 1 and reasons[0].startswith("RAPL: ")


def test_energy_meters_cuda_without_driver(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(energy, "POWERCAP", tmp_path / "none")
    _install(monkeypatch, FakeNvml(init_error=FakeNvml.LIBRARY_NOT_FOUND))
    meters, reasons = energy_meters("cuda")
    assert meters == []
    assert reasons[-1] == "NVML: library not found (no NVIDIA driver)"


def test_reading_without_meters() -> None:
    with measure_energy([]) as span:
        pass
    assert span.reading is not None
    assert span.reading.joules == {} and span.reading.total_j is None
    assert span.reading.mean_w is None


def test_reading_totals() -> None:
    reading = EnergyReading({"rapl": 3.0, "gpu0": 5.0}, seconds=2.0)
    assert reading.total_j == 8.0 and reading.mean_w == 4.0
