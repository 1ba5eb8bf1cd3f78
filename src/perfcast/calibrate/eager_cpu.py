"""PyTorch eager on the CPU: the backend facts calibration models, in one place.

Pooling ops are timed by elements read, under one calibrated name per op family
(:data:`ELEMENT_COST_NAMES`). Convolutions: ATen sends a float32 CPU convolution either to
oneDNN or to its own im2col + GEMM kernels (``_slow_conv2d_forward``,
``slow_conv_dilated2d``), by a fixed rule on the call (``ConvParams::use_mkldnn`` in
ATen's Convolution.cpp, torch 2.x). oneDNN runs it when both hold:

- the call is strided or dilated, has at least 16 images, a window other than 1x1, or
  runs on more than one thread (ATen: a 1x1 kernel is faster in THNN single-threaded);
- it is grouped, both window sides exceed 3, it has more than one image, or its input
  holds more than NATIVE_MAX_INPUT elements.

The two implementations differ in speed and in shape behaviour (oneDNN computes whole
blocks of 16 channels; im2col + GEMM does not), so each gets a shape model of its own.
Measured here with torch.profiler: a 3x3 conv of 40 channels at 1x22x22 runs
``_slow_conv2d_forward``, at 1x23x23 ``mkldnn_convolution``; every 1x1 conv of ResNet-50
runs natively on one thread, up to batch 15.
"""

from __future__ import annotations

import numpy as np

from perfcast.passes.kernel_shape import ConvGeometry

# op kind -> the name its per-element cost is calibrated under (default: the kind itself)
ELEMENT_COST_NAMES = {"max_pool2d_with_indices": "max_pool2d"}
NATIVE_MAX_INPUT = 20480  # input elements (N x C x H x W) up to which ATen keeps a conv
MIN_ONEDNN_IMAGES = 16  # images from which a 1x1 conv goes to oneDNN on one thread
RULE_DTYPE = "float32"  # the dtype the rule is for; other dtypes are not split


def runs_native(call: ConvGeometry, threads: int, dtype: str) -> bool | np.ndarray:
    """Whether PyTorch eager runs this convolution with ATen's im2col + GEMM kernels
    rather than oneDNN (one flag per point when the batch is a sweep). False for dtypes
    other than RULE_DTYPE."""
    if dtype != RULE_DTYPE:
        return False
    images = np.asarray(call.images)
    pointwise = all(np.all(np.asarray(w) == 1) for w in call.window)
    large_window = len(call.window) >= 2 and all(np.all(np.asarray(w) > 3)
                                                for w in call.window[-2:])
    eligible = (call.strided or call.dilated or not pointwise or threads > 1) \
        | (images >= MIN_ONEDNN_IMAGES)
    worth_it = (call.groups > 1 or large_window) | (images > 1) \
        | (np.asarray(call.input_elements) > NATIVE_MAX_INPUT)
    native = ~(eligible & worth_it)
    return bool(native) if native.ndim == 0 else native
