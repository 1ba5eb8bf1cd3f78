"""Spatial resampling: nearest/bilinear/bicubic upsampling and pixel (un)shuffle.

The output size comes from ``output_size`` when the call has one, else from the input
size times ``scale_factors`` (floored, as ATen does). FLOPs per output element: 0 for
nearest (a gather), 7 for bilinear (four weighted taps: 4 multiplies, 3 adds per
element), 31 for bicubic (16 taps: 16 multiplies, 15 adds). Pixel (un)shuffle is a copy.
"""

from __future__ import annotations

from perfcast.ir.registry import Category, Family, define
from perfcast.ir.tensor import Dim

DM = Category.DATA_MOVEMENT
# ATen kind -> (spatial dimensions, FLOPs per output element)
RESAMPLE_KINDS = {
    "upsample_nearest1d": (1, 0), "upsample_nearest2d": (2, 0), "upsample_nearest3d": (3, 0),
    "_upsample_nearest_exact1d": (1, 0), "_upsample_nearest_exact2d": (2, 0),
    "_upsample_nearest_exact3d": (3, 0), "upsample_linear1d": (1, 3),
    "upsample_bilinear2d": (2, 7), "_upsample_bilinear2d_aa": (2, 7),
    "upsample_trilinear3d": (3, 15), "upsample_bicubic2d": (2, 31),
}

def _resample_infer(ins, attrs):
    x = ins[0]
    rank = int(attrs["_spatial"])
    size = attrs.get("output_size")
    if size:
        spatial = tuple(int(s) for s in size)
    else:
        scales = attrs.get("scale_factors") or attrs.get("scales") or [1.0] * rank
        scales = [float(s) for s in (scales if isinstance(scales, list) else [scales] * rank)]
        spatial = tuple(int(d * s) for d, s in zip(x.shape[-rank:], scales, strict=True))
    return [((*x.shape[:-rank], *spatial), x.dtype)]


def _resample_flops(per_element: int):
    def flops(ins, outs, attrs) -> Dim:
        return per_element * outs[0].numel

    return flops


def _resample_infer_for(rank: int):
    def infer(ins, attrs):
        return _resample_infer(ins, {**attrs, "_spatial": rank})

    return infer


for _kind, (_rank, _taps) in RESAMPLE_KINDS.items():
    define(_kind, DM, _resample_infer_for(_rank), _resample_flops(_taps),
           family=Family.MOVEMENT)

def _shuffle_infer(ins, attrs):
    x = ins[0]
    r = int(attrs.get("upscale_factor") or attrs["downscale_factor"])
    *lead, c, h, w = x.shape
    if "upscale_factor" in attrs:
        return [((*lead, c // (r * r), h * r, w * r), x.dtype)]
    return [((*lead, c * r * r, h // r, w // r), x.dtype)]


define(["pixel_shuffle", "pixel_unshuffle"], DM, _shuffle_infer, family=Family.MOVEMENT)
