"""Energy a benchmark used: CPU packages through RAPL (powercap), NVIDIA GPUs through NVML."""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

POWERCAP = Path("/sys/class/powercap")
NVML_SAMPLE_S = 0.02


class EnergyMeter(Protocol):
    """A cumulative energy counter."""

    name: str

    def read_j(self) -> float:
        """Joules consumed since an arbitrary origin (only differences mean anything)."""
        ...


class EnergyUnavailable(RuntimeError):
    """A meter cannot be built on this machine; the message says why."""


@dataclass
class _RaplDomain:
    """One powercap zone's ``energy_uj`` counter, unwrapped into a running total."""

    path: Path
    max_uj: int
    last_uj: int
    total_uj: int = 0

    def update(self) -> int:
        """Read the counter; a value below the last one means it wrapped once."""
        now = int((self.path / "energy_uj").read_text())
        delta = now - self.last_uj
        self.total_uj += delta + self.max_uj if delta < 0 else delta
        self.last_uj = now
        return self.total_uj


def _zone_name(zone: Path) -> str | None:
    try:
        return (zone / "name").read_text().strip()
    except OSError:
        return None


def _top_zones(root: Path) -> dict[str, list[Path]]:
    """Top-level zones (``intel-rapl:0``, not ``intel-rapl:0:0``) grouped by domain name.

    The MMIO interface (``intel-rapl-mmio:N``) repeats a package's counter, so it sorts last.
    """
    zones = sorted(
        (p for p in root.glob("*:*") if p.name.count(":") == 1),
        key=lambda p: ("mmio" in p.name, p.name),
    )
    named: dict[str, list[Path]] = {}
    for zone in zones:
        name = _zone_name(zone)
        if name is not None:
            named.setdefault(name, []).append(zone)
    return named


def _open_domain(zones: list[Path]) -> _RaplDomain | None:
    """The first zone of one domain whose counter reads, or None."""
    for zone in zones:
        try:
            start = int((zone / "energy_uj").read_text())
            max_uj = int((zone / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            continue
        return _RaplDomain(zone, max_uj, start)
    return None


class RaplMeter:
    """CPU energy from RAPL: the sum of the package domains, else the psys (platform) domain.

    ``root`` defaults to :data:`POWERCAP`. psys already includes the packages, so it is used
    only when no package reads. A counter below its last value wrapped once:
    ``delta = now - last + max_energy_range_uj``. Reads must come more often than the
    counter wraps (minutes to hours, by power draw).
    """

    name = "rapl"

    def __init__(self, root: Path | None = None) -> None:
        root = POWERCAP if root is None else root
        if not root.is_dir():
            raise EnergyUnavailable(
                f"RAPL: {root} not present (no CPU energy counter on this machine)"
            )
        named = _top_zones(root)
        packages = {n: z for n, z in named.items() if n.startswith("package")}
        self.unreadable: list[str] = []
        self.domains: dict[str, _RaplDomain] = {}
        for candidates in (packages, {"psys": named.get("psys", [])}):
            self._open(candidates)
            if self.domains:
                return
        missing = f"RAPL: no package or psys domain under {root}"
        raise EnergyUnavailable("; ".join(self.unreadable) or missing)

    def _open(self, candidates: dict[str, list[Path]]) -> None:
        for name, zones in candidates.items():
            domain = _open_domain(zones)
            if domain is not None:
                self.domains[name] = domain
            elif zones:
                counter = zones[0] / "energy_uj"
                self.unreadable.append(
                    f"RAPL: {name} energy_uj not readable (needs root: sudo chmod o+r {counter})"
                )

    def read_j(self) -> float:
        return sum(d.update() for d in self.domains.values()) / 1e6


def _nvml_reason(nvml: Any, err: Exception) -> str:
    if getattr(err, "value", None) == getattr(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", None):
        return "NVML: library not found (no NVIDIA driver)"
    return f"NVML: {err}"


class NvmlMeter:
    """GPU energy from NVML: the driver's total-energy counter, else sampled power.

    Sampling polls ``nvmlDeviceGetPowerUsage`` every ``interval_s`` on a daemon thread
    (started by the first :meth:`read_j`, ended by :meth:`close` or when the meter is
    garbage-collected) and integrates with the trapezoid rule; each :meth:`read_j` also
    takes a sample, so a read covers the time up to the call. ``device`` is an NVML index
    or a GPU UUID string.
    """

    def __init__(self, device: int | str = 0, *, interval_s: float = NVML_SAMPLE_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        try:
            import pynvml
        except ImportError as exc:
            raise EnergyUnavailable("NVML: nvidia-ml-py is not installed") from exc
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise EnergyUnavailable(_nvml_reason(pynvml, exc)) from exc
        self._nvml = pynvml
        self.name = f"gpu{device}" if isinstance(device, int) else f"gpu-{device}"
        try:
            self._handle = self._lookup(device)
            self.sampled = not self._has_counter()
        except pynvml.NVMLError as exc:
            pynvml.nvmlShutdown()
            raise EnergyUnavailable(_nvml_reason(pynvml, exc)) from exc
        self._interval_s, self._clock = interval_s, clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._release = weakref.finalize(self, _release_nvml, pynvml, self._stop)
        self._thread: threading.Thread | None = None
        self._last: tuple[float, float] | None = None  # (time s, power W)
        self._joules = 0.0

    def _lookup(self, device: int | str) -> Any:
        if isinstance(device, int):
            return self._nvml.nvmlDeviceGetHandleByIndex(device)
        return self._nvml.nvmlDeviceGetHandleByUUID(device)

    def _has_counter(self) -> bool:
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except self._nvml.NVMLError:
            return False
        return True

    def read_j(self) -> float:
        if not self.sampled:
            return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1e3
        if self._thread is None:
            self._sample()
            self._thread = threading.Thread(
                target=_poll, args=(weakref.ref(self), self._stop, self._interval_s),
                name=f"nvml-{self.name}", daemon=True,
            )  # fmt: skip
            self._thread.start()
        return self._sample()

    def _sample(self) -> float:
        with self._lock:
            now = self._clock()
            watts = self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1e3
            if self._last is not None:
                then, before = self._last
                self._joules += (before + watts) / 2 * (now - then)
            self._last = (now, watts)
            return self._joules

    def close(self) -> None:
        """Stop sampling and release NVML (also done when the meter is garbage-collected)."""
        self._release()
        if self._thread is not None:
            self._thread.join()


def _release_nvml(nvml: Any, stop: threading.Event) -> None:
    stop.set()
    nvml.nvmlShutdown()


def _poll(meter: weakref.ref[NvmlMeter], stop: threading.Event, interval_s: float) -> None:
    """Sampling loop; holds the meter only while sampling, so it can be collected."""
    while not stop.wait(interval_s):
        live = meter()
        if live is None:
            return
        live._sample()
        del live


def _cuda_index(device: str) -> int:
    """``cuda`` -> 0, ``cuda:N`` -> N."""
    _, _, index = device.partition(":")
    return int(index) if index else 0


def _physical_gpu(index: int) -> int | str:
    """NVML index (or UUID) of CUDA device ``index`` under ``CUDA_VISIBLE_DEVICES``."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
    visible = [v for v in visible if v]
    if index >= len(visible):
        return index
    entry = visible[index]
    return int(entry) if entry.isdigit() else entry


def _try(build: Callable[[], EnergyMeter], meters: list[EnergyMeter], reasons: list[str]) -> None:
    try:
        meters.append(build())
    except EnergyUnavailable as exc:
        reasons.append(str(exc))


def energy_meters(device: str = "cpu") -> tuple[list[EnergyMeter], list[str]]:
    """Meters available for ``device`` (RAPL for the host; NVML too for ``cuda[:N]``).

    Returns the meters and a human reason for each one that is unavailable.
    """
    meters: list[EnergyMeter] = []
    reasons: list[str] = []
    _try(RaplMeter, meters, reasons)
    reasons += [r for m in meters if isinstance(m, RaplMeter) for r in m.unreadable]
    if device.startswith("cuda"):
        _try(lambda: NvmlMeter(_physical_gpu(_cuda_index(device))), meters, reasons)
    return meters, reasons


@dataclass
class EnergyReading:
    """Joules each meter counted over a span of ``seconds``."""

    joules: dict[str, float]
    seconds: float

    @property
    def total_j(self) -> float | None:
        """Sum over meters; None (not 0) when there were none."""
        return sum(self.joules.values()) if self.joules else None

    @property
    def mean_w(self) -> float | None:
        total = self.total_j
        return None if total is None or self.seconds <= 0 else total / self.seconds


@dataclass
class EnergySpan:
    """Filled in by :func:`measure_energy` when its block exits."""

    reading: EnergyReading | None = None


@contextmanager
def measure_energy(meters: list[EnergyMeter]) -> Iterator[EnergySpan]:
    """Energy the ``meters`` count while the block runs (``span.reading`` after exit)."""
    span = EnergySpan()
    start = {m.name: m.read_j() for m in meters}
    t0 = time.perf_counter()
    try:
        yield span
    finally:
        seconds = time.perf_counter() - t0
        joules = {m.name: m.read_j() - start[m.name] for m in meters}
        span.reading = EnergyReading(joules, seconds)
