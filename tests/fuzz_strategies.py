"""Hypothesis strategies for every external input kind, seeded from real files.

Each strategy starts from something perfcast accepts (a catalog config.json, a hardware
YAML, a small ONNX model, the bundled TFLite models, a valid API body) and mutates it:
wrong types, booleans for numbers, zero, negative, huge and non-finite values, missing
keys, flipped and truncated bytes.
"""

from __future__ import annotations

import copy
import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
HF_CONFIGS = ROOT / "tests" / "data" / "hf_configs"
HW_CATALOG = ROOT / "src" / "perfcast" / "hardware" / "catalog"
TFLITE_ZOO = ROOT / "src" / "perfcast" / "zoo" / "tflite"
MODELS = ["llama-3.1-8b", "llama-3.1-405b", "deepseek-v3", "qwen3-30b-a3b", "gpt-oss-20b",
          "gemma-3-27b", "mixtral-8x7b"]
HARDWARE = ["h100-sxm", "h200", "b200", "mi300x", "a100-sxm-80gb"]

# Values a careless user or an attacker puts where a number, a flag or a list belongs.
NASTY = st.one_of(
    st.sampled_from([0, -1, 1, 2, True, False, None, 2.0, 0.5, -0.0, math.nan, math.inf,
                     -math.inf, 2**31, 2**53 + 1, 2**63, 10**18, 10**400, "", "7", "nan",
                     [], [1], {}, {"a": 1}]),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
).map(copy.deepcopy)  # a fresh [] or {} each time: mutations must not share them


def names() -> st.SearchStrategy[str]:
    """Model and hardware names: catalog names, near misses, odd and overlong text."""
    near = st.sampled_from(MODELS + HARDWARE).flatmap(
        lambda n: st.builds(lambda i, c: n[:i] + c + n[i + 1:], st.integers(0, len(n)),
                            st.characters()))
    return st.one_of(st.sampled_from(MODELS + HARDWARE), near, st.text(max_size=400),
                     st.integers(250, 5000).map(lambda n: "a" * n)).filter(
        lambda s: s.strip().lower() not in {"local", "this"})


@cache
def _hf_seeds() -> list[dict[str, Any]]:
    return [json.loads((d / "config.json").read_text()) for d in sorted(HF_CONFIGS.iterdir())]


HF_KEYS = ["model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
           "num_key_value_heads", "head_dim", "vocab_size", "intermediate_size",
           "max_position_embeddings", "sliding_window", "sliding_window_pattern",
           "layer_types", "hidden_act", "tie_word_embeddings", "attention_bias",
           "n_routed_experts", "num_local_experts", "num_experts", "num_experts_per_tok",
           "moe_intermediate_size", "n_shared_experts", "first_k_dense_replace",
           "kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
           "v_head_dim", "mlp_only_layers", "use_sliding_window", "text_config"]
MODEL_TYPES = ["llama", "mistral", "qwen2", "qwen3", "qwen3_moe", "mixtral", "deepseek_v3",
               "deepseek_v2", "gpt_oss", "gemma3", "gemma3_text", "bert", "t5", "whisper",
               "phi3", "", "lama"]


@st.composite
def hf_configs(draw: st.DrawFn) -> Any:
    """A real config.json dict with one to four keys replaced, deleted or re-typed."""
    cfg = copy.deepcopy(draw(st.sampled_from(_hf_seeds())))
    target = cfg["text_config"] if isinstance(cfg.get("text_config"), dict) and draw(
        st.booleans()) else cfg
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(HF_KEYS))
        action = draw(st.sampled_from(["set", "set", "set", "delete", "family"]))
        if action == "delete":
            target.pop(key, None)
        elif action == "family":
            target["model_type"] = draw(st.sampled_from(MODEL_TYPES))
        else:
            target[key] = draw(NASTY)
    return draw(st.sampled_from([cfg, cfg, cfg, [cfg], None, "config"]))


@cache
def _hw_seeds() -> list[tuple[str, dict[str, Any]]]:
    return [(p.stem, yaml.safe_load(p.read_text())) for p in sorted(HW_CATALOG.glob("*.yaml"))]


def _leaves(node: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [q for k, v in node.items() for q in _leaves(v, (*path, k))] or [path]
    if isinstance(node, list):
        return [q for i, v in enumerate(node) for q in _leaves(v, (*path, i))] or [path]
    return [path]


@st.composite
def hardware_yaml(draw: st.DrawFn) -> tuple[str, Any]:
    """(stem, spec dict): a catalog hardware YAML with one to three leaves mutated."""
    stem, spec = draw(st.sampled_from(_hw_seeds()))
    spec = copy.deepcopy(spec)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_leaves(spec)))
        if not path:
            return stem, draw(NASTY)
        parent = spec
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.integers(0, 5)) == 0 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(NASTY)
    return stem, spec


@cache
def onnx_seed() -> bytes:
    """A small MLP (MatMul, Add, Relu, MatMul) with a symbolic batch, as ONNX bytes."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w1 = numpy_helper.from_array(np.ones((16, 32), np.float32), "w1")
    b1 = numpy_helper.from_array(np.zeros(32, np.float32), "b1")
    w2 = numpy_helper.from_array(np.ones((32, 8), np.float32), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]),
             helper.make_node("Add", ["h", "b1"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])], [w1, b1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


@st.composite
def onnx_models(draw: st.DrawFn) -> bytes:
    """The seed model with its input shape, op types or element type changed, or its bytes
    flipped, inserted, deleted or truncated."""
    import onnx

    if draw(st.booleans()):
        return draw(mutated_bytes(onnx_seed()))
    model = onnx.load_model_from_string(onnx_seed())
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["dim", "op", "elem", "init"]))
        if what == "dim":
            d = dims[draw(st.integers(0, len(dims) - 1))]
            d.dim_value = draw(st.integers(-(2**40), 2**40))
        elif what == "op":
            node = model.graph.node[draw(st.integers(0, len(model.graph.node) - 1))]
            node.op_type = draw(st.sampled_from(["Conv", "Gemm", "Softmax", "Nope", "Add",
                                                 "Reshape", "Transpose", ""]))
        elif what == "elem":
            model.graph.input[0].type.tensor_type.elem_type = draw(st.integers(0, 30))
        else:
            init = model.graph.initializer[draw(st.integers(0, 2))]
            init.dims[0] = draw(st.integers(-(2**40), 2**40))
    return model.SerializeToString()


@cache
def tflite_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted(TFLITE_ZOO.glob("*.tflite"))]


def mutated_bytes(seed: bytes) -> st.SearchStrategy[bytes]:
    """``seed`` with a few bytes flipped, inserted or deleted, or cut short."""
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, max(len(data) - 1, 0)))
            kind = draw(st.sampled_from(["flip", "flip", "set", "insert", "delete", "cut"]))
            if kind == "flip" and data:
                data[at] ^= 1 << draw(st.integers(0, 7))
            elif kind == "set" and data:
                data[at] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]))
            elif kind == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=8))
            elif kind == "delete":
                del data[at:at + draw(st.integers(1, 8))]
            else:
                del data[at:]
        return bytes(data)
    return build()


def tflite_models() -> st.SearchStrategy[bytes]:
    return st.sampled_from(tflite_seeds()).flatmap(mutated_bytes)


LLM_FIELDS = ["model", "hardware", "tp", "pp", "ep", "dp", "dp_attention", "isl", "osl",
              "concurrency", "precision", "kv_cache", "requests", "extra"]
RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "9" * 400, "-0", "2.0", "true",
               '"1"', "1e-400", "[]"]


@st.composite
def api_bodies(draw: st.DrawFn) -> str:
    """JSON text for POST /api/llm/estimate: a valid body with fields mutated, or raw
    numbers JSON parsers disagree on (NaN, Infinity, 1e400, 400 digits)."""
    body: dict[str, Any] = {"model": draw(st.sampled_from(MODELS)), "hardware": "h100-sxm",
                            "isl": draw(st.integers(1, 4096)),
                            "concurrency": draw(st.integers(1, 64))}
    raw: dict[str, str] = {}
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(LLM_FIELDS))
        if draw(st.booleans()):
            raw[key] = draw(st.sampled_from(RAW_NUMBERS))
            body.pop(key, None)
        else:
            value = draw(NASTY)
            body[key] = None if isinstance(value, float) and not math.isfinite(value) else value
    text = json.dumps(body)
    extra = "".join(f', "{k}": {v}' for k, v in raw.items())
    text = text[:-1] + extra + "}" if body else "{" + extra[2:] + "}"
    return draw(st.one_of(st.just(text), st.just(text), mutated_bytes(text.encode()).map(
        lambda b: b.decode("utf-8", "replace"))))


@st.composite
def llm_arguments(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments of ``perfcast.llm.estimate``: mostly in range, log-spread up to
    beyond the limits (isl/osl 10^9, concurrency 10^8), sometimes of the wrong type."""
    def size(top: int) -> st.SearchStrategy[Any]:
        return st.one_of(st.integers(0, 9).map(lambda e: 10**e),
                         st.integers(1, top), st.integers(1, 4096), NASTY)
    return {
        "model": draw(st.sampled_from(MODELS)),
        "hardware": draw(st.sampled_from(HARDWARE)),
        "tp": draw(st.one_of(st.sampled_from([1, 2, 4, 8, 16]), NASTY)),
        "pp": draw(st.one_of(st.sampled_from([1, 2, 4]), st.integers(-2, 2**17))),
        "ep": draw(st.sampled_from([1, 2, 4, 8])),
        "dp": draw(st.one_of(st.sampled_from([1, 2]), st.integers(-2, 2**17))),
        "dp_attention": draw(st.booleans()),
        "isl": draw(size(10**9)),
        "osl": draw(size(10**9)),
        "concurrency": draw(size(10**8)),
        "precision": draw(st.sampled_from(["bf16", "fp8", "fp4", "w4a16", "weights=fp8",
                                           "kv=fp8", "nope", ""])),
    }


EXAMPLE_NAMES = frozenset({"mlp", "resnet50", "convmix", "gpt2", "bert", "llama3-8b",
                           "llama3-70b", "qwen3-0.6b", "mixtral-8x7b", "llama-tiny",
                           "mixtral-tiny"})
_FUZZ_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.sampled_from(["llama-3.1-8b", "h100-sxm", "gpt2", "bf16", "fp8", "eager", "latest"]))


@st.composite
def mcp_calls(draw: st.DrawFn, tools: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
    """(tool name, arguments): the tool's own argument names, some extra, fuzzed values.

    ``analyze`` gets model names that are never examples (a real capture takes seconds)."""
    name = draw(st.sampled_from(sorted(tools)))
    keys = draw(st.lists(st.sampled_from(tools[name]), unique=True, max_size=6))
    if draw(st.booleans()):
        keys.append(draw(st.text(min_size=1, max_size=8)))
    arguments = {k: draw(_FUZZ_VALUES) for k in keys}
    if name == "analyze":
        arguments["model"] = draw(st.text(max_size=30).filter(lambda t: t.strip() not in
                                                             EXAMPLE_NAMES))
    return name, arguments


def db_paths() -> st.SearchStrategy[str]:
    """Store paths: file names with odd characters, folders, devices, long names."""
    return st.one_of(
        st.text(max_size=300),
        st.sampled_from(["/dev/null", "/dev/zero", "/", ".", "..", "x/", "a/b/c.db",
                         "store.db", "x" * 300, "nul\x00.db"]),
        st.builds(lambda a, b: f"{a}/{b}.db", st.text(max_size=20), st.text(max_size=20)))
