"""Make ``import torchvision`` work beside a CPU-only torch build.

torchvision's Linux wheels on PyPI link their C extension (``_C.so``: NMS, RoI align,
deformable conv) against ``libtorch_cuda.so``. Beside a CPU-only torch that library is
missing, the extension does not load, and torchvision's own import then fails while it
registers fake kernels for ``torchvision::nms`` — taking every ``transformers`` model
class down with it, because ``transformers`` imports torchvision when it is present.

The model definitions (ResNet, MobileNet, ViT, ...) are plain Python and need none of
those ops. :func:`ensure_importable` declares the two op schemas torchvision's import
registers against, only when its extension cannot load, so the import succeeds; calling
one of those ops then fails with PyTorch's "no kernel" error instead of at import.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_KEEP: list[object] = []  # the schemas live as long as their Library object


@functools.cache
def ensure_importable() -> bool:
    """Prepare torch so torchvision imports; True when the fallback schemas were declared.

    Idempotent and cheap after the first call. Does nothing when torchvision is not
    installed, is already imported, or its C extension loads.
    """
    if "torchvision" in sys.modules:
        return False
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    import torch

    libs = sorted(Path(next(iter(spec.submodule_search_locations))).glob("_C*.so"))
    try:
        if libs:
            torch.ops.load_library(str(libs[0]))
            return False
    except OSError:
        pass
    lib = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        lib.define(schema)
    _KEEP.append(lib)
    return True
