"""Golden outputs: perfcast's JSON for a fixed set of models and serving configurations.

``analyze-<model>-<device>-<target>.json`` for 5 models x 3 devices x 3 fusion targets and
``llm-<n>.json`` for 10 serving configurations. ``data/golden_outputs.json`` holds the
SHA-256 of each; ``tests/test_golden_outputs.py`` fails when one changes, so a refactor
that means to change no number proves it, and one that does lists what changed and why.

    python tests/golden_outputs.py OUT_DIR        # write the files (diff two checkouts)
    python tests/golden_outputs.py --manifest     # rewrite data/golden_outputs.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

MODELS = {  # example -> (batch, seq_len)
    "gpt2": (1, 128), "bert": (8, 128), "qwen3-0.6b": (1, 256), "resnet50": (8, 1),
    "convmix": (1, 1),
}
DEVICES = ("h100-sxm", "mi300x", "l4")
TARGETS = ("eager", "compile", "perfcast")
LLM_CONFIGS = [
    dict(model="llama-3.1-8b", hardware="h100-sxm", tp=1, isl=1024, osl=1024, concurrency=16),
    dict(model="llama-3.1-70b", hardware="h100-sxm", tp=4, isl=1024, osl=1024, concurrency=64,
         precision="fp8"),
    dict(model="llama-3.1-70b", hardware="mi300x", tp=8, isl=8192, osl=1024, concurrency=32),
    dict(model="gpt-oss-120b", hardware="b200", tp=2, isl=1024, osl=8192, concurrency=128,
         precision="fp4-w4a16"),
    dict(model="deepseek-r1", hardware="h200", tp=8, isl=1024, osl=1024, concurrency=64,
         precision="fp8"),
    dict(model="qwen3-235b-a22b", hardware="h100-sxm", tp=8, ep=8, isl=1024, osl=1024,
         concurrency=32, precision="fp8"),
    dict(model="mixtral-8x7b", hardware="a100", tp=2, isl=2048, osl=512, concurrency=8),
    dict(model="llama-3.1-405b", hardware="b200", tp=8, isl=1024, osl=1024, concurrency=256,
         precision="fp8"),
    dict(model="gemma-3-27b", hardware="l40s", tp=2, isl=512, osl=256, concurrency=4),
    dict(model="llama-3.1-8b", hardware="h100-sxm", tp=1, isl=128, osl=128, concurrency=1,
         requests=10),
]


MANIFEST = Path(__file__).parent / "data" / "golden_outputs.json"


def outputs() -> Iterator[tuple[str, str]]:
    """(file name, JSON text) of every golden output."""
    import perfcast.llm
    from perfcast.estimate.analyze import estimate_prepared, prepare
    from perfcast.frontends import load_target

    for name, (batch, seq_len) in MODELS.items():
        loaded = load_target(f"examples:{name}", batch=batch, seq_len=seq_len)
        prepared = prepare(loaded.model, loaded.example_inputs, name=loaded.name)
        for device in DEVICES:
            for target in TARGETS:
                result = estimate_prepared(prepared, device, target=target).to_dict()
                yield f"analyze-{name}-{device}-{target}.json", _text(result)
    for n, config in enumerate(LLM_CONFIGS):
        yield f"llm-{n}.json", _text(perfcast.llm.estimate(**config).to_dict())


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _text(payload: dict) -> str:
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: golden_outputs.py OUT_DIR | --manifest")
    if sys.argv[1] == "--manifest":
        MANIFEST.write_text(json.dumps({n: digest(t) for n, t in outputs()}, indent=1,
                                       sort_keys=True) + "\n")
    else:
        folder = Path(sys.argv[1])
        folder.mkdir(parents=True, exist_ok=True)
        for file_name, text in outputs():
            (folder / file_name).write_text(text)
