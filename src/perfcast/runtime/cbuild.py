"""Build the C kernel library (and generated programs) on first use into a cache directory.

The kernels in ``csrc/`` are compiled with the system compiler (``$CC``, else ``cc``,
``gcc`` or ``clang``) and linked against the BLAS of the ``scipy-openblas32`` wheel. The
first flag set that compiles wins: ``-O3 -march=native -fopenmp``, then the same without
``-march`` (portable), then without OpenMP (``$PERFCAST_KERNEL_FLAGS`` names one set to
use only that). The shared library lands in
``$PERFCAST_CACHE/kernels/<hash>/`` (default ``~/.cache/perfcast``), the hash covering the
sources, the flag sets, the compiler and the host CPU; it is written to a temporary name
and renamed into place, so concurrent processes never see a partial file.

Importing this module never compiles anything: :func:`kernel_library` does, once per
process. Without a compiler it raises :class:`CompilerUnavailable` (unless a library built
earlier from the same sources is in the cache); :func:`available` says whether the kernels
can be used at all.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CSRC = Path(__file__).parent / "csrc"
LIB_NAME = "libperfcast_kernels.so"
COMMON_FLAGS = ("-fPIC", "-std=gnu11", "-fno-math-errno", "-fno-trapping-math",
                "-Wno-unknown-pragmas")
# Tried in order; the first that compiles and links is used.
FLAG_SETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("native", ("-O3", "-march=native", "-fopenmp")),
    ("portable", ("-O3", "-fopenmp")),
    ("portable-serial", ("-O3",)),
)


class CompilerUnavailable(RuntimeError):
    """No working C compiler (or BLAS) to build the kernels: use the NumPy backend."""


class BuildError(RuntimeError):
    """The compiler ran but every flag set failed; the message holds its output."""


@dataclass(frozen=True)
class Blas:
    """The CBLAS the kernels link against."""

    lib_path: Path
    prefix: str  # symbol prefix, e.g. "scipy_" for scipy_cblas_sgemm

    @property
    def lib_dir(self) -> Path:
        return self.lib_path.parent


@dataclass(frozen=True)
class Compiler:
    argv: tuple[str, ...]  # the command (CC may carry arguments, e.g. "ccache gcc")
    version: str           # first line of --version

    @property
    def ident(self) -> str:
        return f"{' '.join(self.argv)} | {self.version}"


def cache_root() -> Path:
    """``$PERFCAST_CACHE``, else ``$XDG_CACHE_HOME/perfcast``, else ``~/.cache/perfcast``."""
    env = os.environ.get("PERFCAST_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "perfcast"


def find_compiler() -> Compiler | None:
    """``$CC`` if set (and runnable), else the first of cc, gcc, clang on PATH."""
    env = os.environ.get("CC")
    candidates = [shlex.split(env)] if env else [["cc"], ["gcc"], ["clang"]]
    for argv in candidates:
        if not argv:
            continue
        exe = shutil.which(argv[0])
        if exe is None:
            continue
        version = _compiler_version((exe, *argv[1:]))
        if version is not None:
            return Compiler((exe, *argv[1:]), version)
    return None


@functools.lru_cache(maxsize=8)
def _compiler_version(argv: tuple[str, ...]) -> str | None:
    try:
        proc = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return (proc.stdout.strip().splitlines() or ["unknown"])[0]


def find_blas() -> Blas | None:
    """The ``scipy-openblas32`` wheel's library (a declared dependency)."""
    try:
        import scipy_openblas32 as sob
    except ImportError:
        return None
    lib_dir = Path(sob.get_lib_dir())
    name = sob.get_library()
    for cand in (lib_dir / f"lib{name}.so", lib_dir / f"lib{name}.dylib",
                 *sorted(lib_dir.glob(f"lib{name}*.so*"))):
        if cand.exists():
            prefix = sob.get_prefix() if hasattr(sob, "get_prefix") else "scipy_"
            return Blas(cand, prefix)
    return None


def load_blas(blas: Blas) -> None:
    """Load the BLAS globally first, so the kernel library resolves it even without rpath."""
    ctypes.CDLL(str(blas.lib_path), mode=ctypes.RTLD_GLOBAL)


def host_signature() -> str:
    """What -march=native depends on: machine and CPU flags."""
    parts = [platform.machine(), platform.system()]
    with contextlib.suppress(OSError):
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        for line in text.splitlines():
            key = line.split(":", 1)[0].strip()
            if key in ("model name", "flags", "Features", "CPU part"):
                parts.append(line)
                if key in ("flags", "Features"):
                    break
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def sources_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(CSRC.iterdir()):
        if path.suffix in (".c", ".h"):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:20]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (no-op where fcntl is missing); the rename keeps it safe."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(argv: Sequence[str], cwd: Path) -> tuple[bool, str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd, timeout=600,
                              check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def compile_shared(cc: Compiler, sources: Sequence[Path], out: Path, flags: Sequence[str],
                   link: Sequence[str] = (), include: Sequence[Path] = ()) -> tuple[bool, str]:
    """Compile ``sources`` (in parallel, one object each) and link ``out`` atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as tmp:
        tmpdir = Path(tmp)
        incs = [f"-I{p}" for p in include]
        procs = []
        objs = []
        for i, src in enumerate(sources):
            obj = tmpdir / f"{i}_{src.stem}.o"
            objs.append(obj)
            argv = [*cc.argv, *flags, *COMMON_FLAGS, *incs, "-c", str(src), "-o", str(obj)]
            try:
                procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True, cwd=tmpdir))
            except OSError as exc:
                for p in procs:
                    p.wait()
                return False, str(exc)
        logs, ok = [], True
        for p in procs:
            text, _ = p.communicate()
            logs.append(text or "")
            ok = ok and p.returncode == 0
        if not ok:
            return False, "\n".join(s for s in logs if s).strip()
        tmp_out = tmpdir / out.name
        good, log = _run([*cc.argv, *flags, *COMMON_FLAGS, "-shared", *map(str, objs), "-o",
                          str(tmp_out), *link], tmpdir)
        if not good:
            return False, log
        os.replace(tmp_out, out)  # atomic on the same filesystem
        return True, "\n".join([*logs, log]).strip()


@dataclass(frozen=True)
class KernelBuild:
    path: Path
    flag_set: str
    flags: tuple[str, ...]
    compiler: Compiler | None
    blas: Blas


_lock = threading.Lock()
_build: KernelBuild | None = None
_lib: ctypes.CDLL | None = None
_failure: Exception | None = None


def _cached_without_compiler(blas: Blas, root: Path) -> KernelBuild | None:
    """A library built earlier from these sources on this host, usable with no compiler."""
    want = {"sources": sources_digest(), "host": host_signature(), "blas": str(blas.lib_path)}
    for meta_path in sorted((root / "kernels").glob("*/build.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        lib = meta_path.parent / LIB_NAME
        if all(meta.get(k) == v for k, v in want.items()) and lib.exists():
            return KernelBuild(lib, meta.get("flag_set", "?"), tuple(meta.get("flags", ())),
                               None, blas)
    return None


def _flag_sets() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """FLAG_SETS, or only the one named by $PERFCAST_KERNEL_FLAGS (e.g. "portable")."""
    want = os.environ.get("PERFCAST_KERNEL_FLAGS")
    if not want:
        return FLAG_SETS
    chosen = tuple(fs for fs in FLAG_SETS if fs[0] == want)
    if not chosen:
        raise BuildError(f"PERFCAST_KERNEL_FLAGS={want!r} is not one of "
                         f"{', '.join(n for n, _ in FLAG_SETS)}")
    return chosen


def build_kernels() -> KernelBuild:
    """The kernel library for this host, compiled now unless already in the cache."""
    blas = find_blas()
    if blas is None:
        raise CompilerUnavailable(
            "perfcast C kernels need the scipy-openblas32 package (pip install "
            "scipy-openblas32); falling back to the NumPy backend")
    root = cache_root()
    cc = find_compiler()
    if cc is None:
        cached = _cached_without_compiler(blas, root)
        if cached is not None:
            return cached
        cc_env = os.environ.get("CC")
        where = f"CC={cc_env!r} is not a working compiler" if cc_env else \
            "no C compiler (cc, gcc or clang) on PATH"
        raise CompilerUnavailable(
            f"perfcast C kernels cannot be built: {where}. Install gcc or clang (or set CC) "
            "to use the C backend; the NumPy backend works without one.")
    flag_sets = _flag_sets()
    src_digest = sources_digest()
    host = host_signature()
    key = _digest(src_digest, flag_sets, COMMON_FLAGS, cc.ident, blas.lib_path, blas.prefix, host)
    out_dir = root / "kernels" / key
    lib = out_dir / LIB_NAME
    meta_path = out_dir / "build.json"
    with _locked(root / "kernels" / f"{key}.lock"):
        if lib.exists() and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            return KernelBuild(lib, meta["flag_set"], tuple(meta["flags"]), cc, blas)
        sources = sorted(CSRC.glob("*.c"))
        link = [str(blas.lib_path), f"-Wl,-rpath,{blas.lib_dir}", "-lm",
                f"-Wl,-soname,{LIB_NAME}"]
        if platform.system() == "Darwin":
            link = [str(blas.lib_path), f"-Wl,-rpath,{blas.lib_dir}", "-lm"]
        errors = []
        for name, flags in flag_sets:
            full = (*flags, f"-DPC_BLAS_PREFIX={blas.prefix}")
            ok, log = compile_shared(cc, sources, lib, full, link, include=[CSRC])
            if ok:
                meta = {"flag_set": name, "flags": list(full), "compiler": cc.ident,
                        "sources": src_digest, "host": host, "blas": str(blas.lib_path)}
                tmp_meta = meta_path.with_suffix(f".{os.getpid()}.tmp")
                tmp_meta.write_text(json.dumps(meta, indent=1))
                os.replace(tmp_meta, meta_path)
                return KernelBuild(lib, name, tuple(full), cc, blas)
            errors.append(f"[{name}] {' '.join(full)}\n{log[-2000:]}")
    raise BuildError("perfcast C kernels failed to compile with every flag set:\n" +
                     "\n".join(errors))


def kernel_library() -> ctypes.CDLL:
    """The loaded kernel library (built on first use). Raises CompilerUnavailable/BuildError."""
    global _build, _lib, _failure
    with _lock:
        if _lib is not None:
            return _lib
        if _failure is not None:
            raise _failure
        try:
            build = build_kernels()
            load_blas(build.blas)
            lib = ctypes.CDLL(str(build.path))
        except (CompilerUnavailable, BuildError) as exc:
            _failure = exc
            raise
        except OSError as exc:
            _failure = BuildError(f"perfcast C kernel library failed to load: {exc}")
            raise _failure from exc
        _build, _lib = build, lib
        return lib


def kernel_build() -> KernelBuild:
    """Facts about the loaded kernel library (loads it if needed)."""
    kernel_library()
    assert _build is not None
    return _build


def available() -> bool:
    """True when the C kernels can be used (built or loaded from the cache)."""
    try:
        kernel_library()
    except (CompilerUnavailable, BuildError):
        return False
    return True


def unavailable_reason() -> str | None:
    """Why :func:`available` is False (None when it is True)."""
    try:
        kernel_library()
    except (CompilerUnavailable, BuildError) as exc:
        return str(exc)
    return None


def reset() -> None:
    """Forget the loaded library and any failure (tests; a new CC or cache dir)."""
    global _build, _lib, _failure
    with _lock:
        _build, _lib, _failure = None, None, None


def build_program(source: str, name: str = "program") -> Path:
    """Compile generated C (one file) into a cached shared library linked to the kernels.

    Cached under ``<cache>/programs/<hash of source, flags, compiler, kernel lib>``.
    Needs a compiler even when the kernel library came from the cache.
    """
    build = kernel_build()
    cc = build.compiler or find_compiler()
    if cc is None:
        raise CompilerUnavailable(
            "perfcast codegen needs a C compiler (none found; set CC or install gcc/clang); "
            "the per-step C backend still works")
    flags = tuple(f for f in build.flags if not f.startswith("-DPC_BLAS_PREFIX"))
    key = _digest(source, flags, COMMON_FLAGS, cc.ident, build.path)
    out_dir = cache_root() / "programs" / key
    lib = out_dir / f"lib{name}.so"
    if lib.exists():
        return lib
    with _locked(cache_root() / "programs" / f"{key}.lock"):
        if lib.exists():
            return lib
        out_dir.mkdir(parents=True, exist_ok=True)
        src = out_dir / f"{name}.c"
        tmp_src = out_dir / f".{name}.{os.getpid()}.c"
        tmp_src.write_text(source)
        os.replace(tmp_src, src)
        kdir = build.path.parent
        link = [str(build.path), f"-Wl,-rpath,{kdir}", f"-Wl,-rpath,{build.blas.lib_dir}"]
        # generated code has no loops worth vectorizing: -O1 keeps compile time short
        opt = ("-O1", *tuple(f for f in flags if f not in ("-O3",)))
        ok, log = compile_shared(cc, [src], lib, opt, link, include=[CSRC])
        if not ok:
            raise BuildError(f"compiling generated program {src} failed:\n{log[-4000:]}")
    return lib
