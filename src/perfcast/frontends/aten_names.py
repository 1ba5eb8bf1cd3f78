"""How ATen op names map onto IR op kinds.

Most ATen ops keep their name (``aten.linear`` -> ``linear``). The tables here cover
the rest: in-place variants, ops whose meaning depends on arguments (a cast to the
same dtype is an alias), and ops that do no work at all.
"""

from __future__ import annotations

# Ops that produce nothing to compute (runtime assertions, shape guards).
NO_WORK = frozenset({
    "_assert_tensor_metadata", "_assert_scalar", "_assert_async", "sym_constrain_range",
    "sym_constrain_range_for_size", "_functional_assert_async", "_functional_assert_scalar",
    "_check_is_size", "set_grad_enabled", "_enter_autocast", "_exit_autocast",
})

# Higher-order ops whose body is a submodule to inline: name -> index of the submodule arg.
INLINED_HOPS = {"wrap_with_set_grad_enabled": 1, "wrap_with_autocast": 4}

CASTS = frozenset({"to", "_to_copy", "type_as", "_to_dtype"})
DROPOUTS = frozenset({"dropout", "feature_dropout", "alpha_dropout", "native_dropout"})
AS_OUTPUT_SHAPE = {"expand_as": "expand", "view_as": "reshape", "reshape_as": "reshape"}
RENAMES = {"norm": "linalg_vector_norm", "silu_": "silu"}

# Non-tensor arguments that say where or how memory lives, not what is computed.
IGNORED_ARGS = frozenset({"device", "layout", "pin_memory", "memory_format", "non_blocking",
                          "copy", "generator", "out"})


def ir_kind(packet_name: str) -> str:
    """IR kind for an ATen overload packet name (in-place variants lose the underscore)."""
    name = RENAMES.get(packet_name, packet_name)
    if name.endswith("_") and not name.endswith("__") and not name.startswith("_"):
        name = name[:-1]
    return name
