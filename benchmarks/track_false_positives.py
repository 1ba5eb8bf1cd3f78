"""False alarms and detection power of perfcast.track's change-point detector.

1. False-positive rate: N flat series (no change) of L runs, run-to-run noise drawn uniformly
   from 1-10%, half Gaussian and half heavy-tailed (Student t, 3 dof, scaled to the same
   standard deviation). A series with any reported change is a false positive.
2. Detection rate: N series with a 10% slowdown at a random run in [L/5, 4L/5], same noise
   mix. Detected = a confirmed step upwards within +-2 runs of the true index.

Both are broken down by noise level. Run: ``python benchmarks/track_false_positives.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from perfcast.track import DetectorConfig, detect

BUCKETS = ((0.01, 0.03), (0.03, 0.05), (0.05, 0.075), (0.075, 0.10))


def series(rng: np.random.Generator, length: int, noise: float, heavy: bool) -> np.ndarray:
    """Run medians around 1 ms with log-normal (or log-t3) noise of standard deviation noise."""
    e = rng.standard_t(3, length) / math.sqrt(3.0) if heavy else rng.normal(0.0, 1.0, length)
    return 1e-3 * np.exp(noise * e)


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n."""
    z = 1.959964
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def run(n_series: int, length: int, step: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    config = DetectorConfig()
    rows = []
    started = time.perf_counter()
    for i in range(n_series):
        noise = rng.uniform(0.01, 0.10)
        heavy = i % 2 == 1
        flat = series(rng, length, noise, heavy)
        stepped = series(rng, length, noise, heavy)
        at = int(rng.integers(length // 5, 4 * length // 5 + 1))
        stepped[at:] *= 1.0 + step
        found = detect(flat, config=config).changes
        hits = detect(stepped, config=config).changes
        rows.append({
            "noise": noise, "heavy": heavy,
            "false_any": bool(found),
            "false_confirmed": any(c.confirmed for c in found),
            "detected": any(c.kind == "step" and c.confirmed and c.effect > 0
                            and abs(c.index - at) <= 2 for c in hits),
        })
    seconds = time.perf_counter() - started
    return {"n_series": n_series, "length": length, "step": step, "seed": seed,
            "seconds_per_series": seconds / (2 * n_series),
            "false_positive": _rates(rows, "false_any"),
            "false_positive_confirmed_only": _rates(rows, "false_confirmed"),
            "detection": _rates(rows, "detected")}


def _rates(rows: list[dict], key: str) -> dict:
    def rate(subset: list[dict]) -> dict:
        k = sum(r[key] for r in subset)
        lo, hi = wilson(k, len(subset))
        return {"count": k, "n": len(subset), "rate": k / len(subset), "ci95": [lo, hi]}

    out = {"all": rate(rows),
           "gaussian": rate([r for r in rows if not r["heavy"]]),
           "heavy_tailed": rate([r for r in rows if r["heavy"]])}
    for lo, hi in BUCKETS:
        out[f"noise {lo:.1%}-{hi:.1%}"] = rate([r for r in rows if lo <= r["noise"] < hi])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--length", type=int, default=50, help="runs per series")
    parser.add_argument("--step", type=float, default=0.10, help="planted relative step")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(args.series, args.length, args.step, args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.series} series x {args.length} runs, noise 1-10% (half Student-t3), "
          f"seed {args.seed}; {result['seconds_per_series'] * 1e3:.1f} ms per series")
    print(f"{'':22} {'false pos.':>20} {'confirmed only':>20} {f'{args.step:.0%} step found':>20}")
    for group in result["detection"]:
        cells = [result[k][group] for k in ("false_positive", "false_positive_confirmed_only",
                                            "detection")]
        print(f"{group:22} " + " ".join(
            f"{c['rate']:7.1%} [{c['ci95'][0]:.1%}-{c['ci95'][1]:.1%}]".rjust(20)
            for c in cells))


if __name__ == "__main__":
    main()
