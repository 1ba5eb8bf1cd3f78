"""Benchmarks as code: the :class:`Benchmark` interface, the registry and target selection.

A benchmark is a class with ``setup(**params)``, ``run()`` and optionally ``teardown()``,
``check()`` (correctness, raises on a wrong result) and ``work()`` (FLOPs and bytes moved,
for achieved rates). ``params`` is a grid: every combination is one *case*. Registered
classes are addressed as ``suite:name``; two classes registered under one target with
roles ``baseline`` and ``optimized`` form a *pair*, timed side by side and judged against
an expectation (see :mod:`perfcast.bench.expectations`).

>>> @register
... class Add(Benchmark):
...     suite, name, params = "demo", "add", {"n": [1024, 4096]}
...     def setup(self, n): self.x = list(range(n))
...     def run(self): return sum(self.x)
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from perfcast.ir.cost import Cost
from perfcast.pyfile import import_file

ROLES = ("baseline", "optimized")
DEVICES = ("cpu", "cuda")
BUILTIN_SUITES = ("micro", "micro_cuda", "workloads", "pairs")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class BenchmarkError(ValueError):
    """A benchmark is defined wrongly, or a selection names nothing that exists."""


class Benchmark:
    """Base class of every benchmark; subclass it, set the class attributes, implement run()."""

    suite: ClassVar[str]
    name: ClassVar[str]
    params: ClassVar[Mapping[str, Sequence[Any]]] = {}
    tags: ClassVar[tuple[str, ...]] = ()
    device: ClassVar[str] = "cpu"
    role: ClassVar[str | None] = None
    description: ClassVar[str] = ""

    def setup(self, **params: Any) -> None:
        """Build inputs for one case; not timed."""

    def run(self) -> Any:
        """The timed operation."""
        raise NotImplementedError(f"{type(self).__name__}.run() is not implemented")

    def check(self) -> None:
        """Raise when ``run()`` gives a wrong result; a failing case is reported, not timed."""

    def teardown(self) -> None:
        """Release what setup() made; not timed."""

    def work(self) -> Cost | None:
        """FLOPs and bytes of one ``run()`` for this case, when known."""
        return None

    @classmethod
    def skip_reason(cls, **params: Any) -> str | None:
        """Why this case cannot run here (no CUDA, missing package...), or None."""
        if cls.device == "cuda":
            from perfcast.bench.timer import cuda_available

            if not cuda_available():
                return "needs a CUDA device; none is available"
        return None


@dataclass(frozen=True)
class Target:
    """One ``suite:name``: a single benchmark, or a baseline/optimized pair."""

    name: str
    impls: dict[str | None, type[Benchmark]]

    @property
    def first(self) -> type[Benchmark]:
        return next(iter(self.impls.values()))

    @property
    def is_pair(self) -> bool:
        return None not in self.impls

    @property
    def params(self) -> Mapping[str, Sequence[Any]]:
        return self.first.params

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for cls in self.impls.values() for t in cls.tags))

    @property
    def description(self) -> str:
        return next((c.description for c in self.impls.values() if c.description), "")

    def cases(self) -> list[Case]:
        keys = list(self.params)
        grid = itertools.product(*(self.params[k] for k in keys))
        return [Case(self, dict(zip(keys, values, strict=True))) for values in grid]


@dataclass(frozen=True)
class Case:
    """One target with one combination of parameter values."""

    target: Target
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """``suite:name[k=v,...]``: the case's name in tables, NVTX ranges and artifacts."""
        if not self.params:
            return self.target.name
        inner = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.target.name}[{inner}]"


_REGISTRY: dict[str, Target] = {}


def register(cls: type[Benchmark]) -> type[Benchmark]:
    """Class decorator adding a benchmark (or one side of a pair) to the registry."""
    for attr in ("suite", "name"):
        value = getattr(cls, attr, None)
        if not isinstance(value, str) or not _NAME.match(value):
            raise BenchmarkError(f"{cls.__qualname__}.{attr} must be a lowercase name "
                                 f"([a-z0-9_.-]), got {value!r}")
    if cls.role not in (None, *ROLES):
        raise BenchmarkError(f"{cls.__qualname__}.role must be one of {', '.join(ROLES)} "
                             f"or None, got {cls.role!r}")
    if cls.device not in DEVICES:
        raise BenchmarkError(f"{cls.__qualname__}.device must be one of {', '.join(DEVICES)}, "
                             f"got {cls.device!r}")
    _check_grid(cls)
    name = f"{cls.suite}:{cls.name}"
    impls = dict(_REGISTRY[name].impls) if name in _REGISTRY else {}
    existing = impls.get(cls.role)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise BenchmarkError(f"{name} already has a {cls.role or 'single'} benchmark "
                             f"({existing.__qualname__})")
    if impls and (cls.role is None) != (None in impls):
        raise BenchmarkError(f"{name}: a target is either one benchmark or a "
                             "baseline/optimized pair, not both")
    if impls and dict(next(iter(impls.values())).params) != dict(cls.params):
        raise BenchmarkError(f"{name}: baseline and optimized must share one params grid")
    impls[cls.role] = cls
    _REGISTRY[name] = Target(name, dict(sorted(impls.items(), key=lambda kv: str(kv[0]))))
    return cls


def _check_grid(cls: type[Benchmark]) -> None:
    for key, values in cls.params.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise BenchmarkError(f"{cls.__qualname__}.params key {key!r} is not an identifier")
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise BenchmarkError(f"{cls.__qualname__}.params[{key!r}] must be a non-empty "
                                 f"list of values, got {values!r}")


def load_builtin_suites() -> None:
    """Import the built-in suites so they register themselves."""
    for suite in BUILTIN_SUITES:
        importlib.import_module(f"perfcast.bench.suites.{suite}")


def load_path(path: Path) -> None:
    """Import a user benchmark file (or every ``*.py`` in a directory) so it registers."""
    files = sorted(path.glob("*.py")) if path.is_dir() else [path]
    if not path.exists():
        raise BenchmarkError(f"benchmark path {str(path)!r} does not exist")
    for file in files:
        if file.suffix != ".py":
            raise BenchmarkError(f"benchmark file {str(file)!r} is not a .py file")
        try:
            import_file(file, f"perfcast_bench_user_{file.stem}")
        except BenchmarkError:
            raise
        except Exception as exc:  # user code: one short message instead of a deep traceback
            raise BenchmarkError(f"importing {file} failed: {type(exc).__name__}: {exc}") from exc


def targets() -> dict[str, Target]:
    """Every registered target by name."""
    return dict(sorted(_REGISTRY.items()))


def select(patterns: Iterable[str], *, params: Mapping[str, Sequence[str]] | None = None,
           tags: Iterable[str] = ()) -> list[Case]:
    """The cases named by ``patterns`` (``suite``, ``suite:name``, globs), filtered.

    ``params`` keeps only cases whose value of each key prints as one of the given strings;
    ``tags`` keeps targets carrying every tag. Unknown names, keys and values raise
    :class:`BenchmarkError` listing the closest or allowed choices.
    """
    chosen = _match_targets(list(patterns))
    wanted = set(tags)
    if wanted:
        chosen = [t for t in chosen if wanted <= set(t.tags)]
        if not chosen:
            raise BenchmarkError(f"no selected target has tags {', '.join(sorted(wanted))}")
    for target in chosen:
        missing = [r for r in ROLES if target.is_pair and r not in target.impls]
        if missing:
            raise BenchmarkError(f"pair {target.name} has no {missing[0]} benchmark; register "
                                 "both a baseline and an optimized class")
    cases = [case for target in chosen for case in target.cases()]
    return _filter_params(cases, params or {})


def _match_targets(patterns: list[str]) -> list[Target]:
    registry = targets()
    if not patterns:
        return list(registry.values())
    chosen: dict[str, Target] = {}
    for pattern in patterns:
        glob = pattern if ":" in pattern else f"{pattern}:*"
        hits = [t for n, t in registry.items() if fnmatch.fnmatchcase(n, glob)]
        if not hits:
            close = difflib.get_close_matches(pattern, [*registry, *_suites(registry)], n=4,
                                              cutoff=0.5)
            hint = f"closest: {', '.join(close)}" if close else \
                f"suites: {', '.join(_suites(registry))}"
            raise BenchmarkError(f"unknown benchmark target {pattern!r}; {hint} "
                                 "(perfcast bench list shows all)")
        chosen.update((t.name, t) for t in hits)
    return list(chosen.values())


def _suites(registry: Mapping[str, Target]) -> list[str]:
    return sorted({name.split(":", 1)[0] for name in registry})


def _filter_params(cases: list[Case], wanted: Mapping[str, Sequence[str]]) -> list[Case]:
    for key, values in wanted.items():
        having = [c for c in cases if key in c.params]
        if not having:
            keys = sorted({k for c in cases for k in c.params})
            raise BenchmarkError(f"parameter {key!r} is not used by the selected targets; "
                                 f"their parameters: {', '.join(keys) or 'none'}")
        allowed = sorted({str(c.params[key]) for c in having})
        bad = [v for v in values if v not in allowed]
        if bad:
            raise BenchmarkError(f"parameter {key}={bad[0]!r} is not in the grid; "
                                 f"allowed values: {', '.join(allowed)}")
        cases = [c for c in cases if key not in c.params or str(c.params[key]) in values]
    return cases


def parse_param_filters(items: Iterable[str]) -> dict[str, list[str]]:
    """``["n=512", "dtype=float32,bfloat16"]`` → ``{"n": ["512"], "dtype": [...]}``."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise BenchmarkError(f"--param {item!r} is not KEY=VALUE[,VALUE...]")
        out.setdefault(key.strip(), []).extend(v.strip() for v in value.split(",") if v.strip())
    return out
