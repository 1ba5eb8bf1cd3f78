"""Small benchmarks for the harness tests: fast, deterministic, no torch."""

from __future__ import annotations

import time
from typing import ClassVar

from perfcast.bench import Benchmark, Cost, register


@register
class SumList(Benchmark):
    suite, name = "demo", "sum"
    params: ClassVar = {"n": [100, 1000]}
    tags = ("demo",)
    description = "sum() of a list of ints"

    def setup(self, n: int) -> None:
        self.data = list(range(n))
        self.n = n

    def run(self) -> int:
        return sum(self.data)

    def check(self) -> None:
        assert self.run() == self.n * (self.n - 1) // 2

    def work(self) -> Cost:
        return Cost(flops=self.n, bytes=8 * self.n)


class _Total(Benchmark):
    suite, name = "demo", "total"
    params: ClassVar = {"n": [2000]}
    tags = ("pair",)

    def setup(self, n: int) -> None:
        self.data = list(range(n))

    def check(self) -> None:
        assert self.run() == sum(range(len(self.data)))


@register
class TotalLoop(_Total):
    role = "baseline"

    def run(self) -> int:
        total = 0
        for x in self.data:
            total += x
        return total


@register
class TotalBuiltin(_Total):
    role = "optimized"

    def run(self) -> int:
        return sum(self.data)


@register
class BrokenCheck(Benchmark):
    suite, name = "demo", "broken-check"

    def run(self) -> int:
        return 41

    def check(self) -> None:
        if self.run() != 42:
            raise AssertionError(f"expected 42, got {self.run()}")


@register
class Sleepy(Benchmark):
    """Slow on purpose: the SIGKILL test stops a run in the middle of it."""

    suite, name = "slow", "sleep"
    params: ClassVar = {"ms": [1, 2, 3, 4, 5, 6, 7, 8]}

    def setup(self, ms: int) -> None:
        self.seconds = ms / 1000

    def run(self) -> None:
        time.sleep(self.seconds)


@register
class NeedsCuda(Benchmark):
    suite, name, device = "demo", "needs-cuda", "cuda"

    def run(self) -> None:
        return None
