"""KV-cache decoding of GPT-2 small: perfcast (prefill + one program call per token) against
PyTorch eager with the model's own DynamicCache, greedy, batch 1, 1 thread.

Both generate the same tokens (checked). Times come from perfcast.bench.measure over whole
generations of 1 and of N tokens: prefill = t(1), per token = (t(N) - t(1)) / (N - 1).

    .venv/bin/python benchmarks/runtime_decode.py [--prompt 32] [--new 32] [--capacity 128]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def torch_generate(model, ids, n: int) -> list[int]:
    """Greedy decoding with transformers' DynamicCache, eager PyTorch."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache()
    tokens: list[int] = []
    with torch.inference_mode():
        out = model(input_ids=ids, past_key_values=cache, use_cache=True)
        for _ in range(n):
            tokens.append(int(out.logits[0, -1].argmax()))
            if len(tokens) == n:
                break
            out = model(input_ids=torch.tensor([[tokens[-1]]]), past_key_values=cache,
                        use_cache=True)
    return tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--new", type=int, default=32)
    parser.add_argument("--capacity", type=int, default=128)
    parser.add_argument("--budget", type=float, default=8.0)
    args = parser.parse_args(argv)

    import torch

    from perfcast.bench import StopRule, measure
    from perfcast.examples import build_example
    from perfcast.runtime.decode import KVDecoder

    torch.manual_seed(0)
    torch.set_num_threads(1)
    wrapper, (ids,) = build_example("gpt2", batch=1, seq_len=args.prompt, device="cpu")
    model = wrapper.model
    decoder = KVDecoder(model, prompt_len=args.prompt, capacity=args.capacity, backend="c",
                        threads=1)
    prompt = ids.numpy()
    mine = decoder.generate(prompt, args.new).tokens
    theirs = torch_generate(model, ids, args.new)
    if mine != theirs:
        raise SystemExit(f"token mismatch: perfcast {mine} vs torch {theirs}")
    rule = StopRule(budget_s=args.budget, min_samples=5)
    rows = {}
    for name, run in (("perfcast-c", lambda n: decoder.generate(prompt, n)),
                      ("eager + DynamicCache", lambda n: torch_generate(model, ids, n))):
        one = measure(run, 1, threads=1, rule=rule).median_s
        full = measure(run, args.new, threads=1, rule=rule).median_s
        rows[name] = (one, (full - one) / (args.new - 1))
    print(f"GPT-2 small, prompt {args.prompt}, {args.new} new tokens (greedy, identical), "
          f"cache capacity {args.capacity} (perfcast), 1 thread")
    print(f"{'engine':<22}{'prefill ms':>12}{'per token ms':>14}{'tokens/s':>10}")
    for name, (prefill, per_token) in rows.items():
        print(f"{name:<22}{prefill * 1e3:>12.1f}{per_token * 1e3:>14.2f}{1 / per_token:>10.1f}")
    base = rows["eager + DynamicCache"]
    ratio = np.array(base) / np.array(rows["perfcast-c"])
    print(f"perfcast-c speedup: prefill {ratio[0]:.2f}x, per token {ratio[1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
