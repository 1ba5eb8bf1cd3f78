"""Op definitions; importing this package fills the registry."""

from perfcast.ir.ops import (  # noqa: F401
    attention,
    collective,
    conv,
    einsum,
    elementwise,
    embedding,
    fused,
    gemm,
    llm,
    movement,
    norm,
    reduction,
    resample,
)
