"""Convolutions (1-3 spatial dims, groups, stride, padding, dilation, transposed).

FLOPs follow ``torch.utils.flop_counter``: 2 * N * C_out * (C_in / groups) * prod(kernel)
* prod(output spatial) (input spatial for transposed convolutions), plus 1 FLOP per
output element for the bias add, which the flop counter leaves out.
"""

from __future__ import annotations

from perfcast.ir.graph import schema_arg
from perfcast.ir.ops._util import as_list
from perfcast.ir.registry import Category, define
from perfcast.ir.tensor import Dim, numel


def _out_size(size: Dim, k: int, stride: int, pad: int, dil: int) -> Dim:
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


def _conv_geometry(ins, attrs):
    x, w = ins[0], ins[1]
    n_sp = len(w.shape) - 2
    stride = as_list(attrs.get("stride", 1), n_sp)
    dil = as_list(attrs.get("dilation", 1), n_sp)
    padding = attrs.get("padding", 0)
    spatial = x.shape[-n_sp:]
    ks = [int(k) for k in w.shape[2:]]
    if padding == "same":
        pads = [d * (k - 1) // 2 for k, d in zip(ks, dil, strict=True)]
    elif padding == "valid":
        pads = [0] * n_sp
    else:
        pads = as_list(padding, n_sp)
    return x, w, n_sp, stride, dil, pads, spatial, ks


def _conv_infer(ins, attrs):
    x, w, n_sp, stride, dil, pads, spatial, ks = _conv_geometry(ins, attrs)
    groups = int(attrs.get("groups", 1))
    if attrs.get("transposed", False):
        opad = as_list(attrs.get("output_padding", 0), n_sp)
        out_sp = [(s - 1) * st - 2 * p + d * (k - 1) + op + 1
                  for s, st, p, d, k, op in zip(spatial, stride, pads, dil, ks, opad, strict=True)]
        c_out = w.shape[1] * groups
    else:
        out_sp = [_out_size(s, k, st, p, d)
                  for s, k, st, p, d in zip(spatial, ks, stride, pads, dil, strict=True)]
        c_out = w.shape[0]
    batch = x.shape[:-n_sp - 1]
    return [((*batch, c_out, *out_sp), x.dtype)]


def _conv_flops(ins, outs, attrs) -> Dim:
    x, w = ins[0], ins[1]
    n_sp = len(w.shape) - 2
    out = outs[0]
    spatial = x.shape[-n_sp:] if attrs.get("transposed", False) else out.shape[-n_sp:]
    batch = numel(x.shape[:-n_sp - 1])
    flops = 2 * batch * numel(w.shape) * numel(spatial)
    return flops + (out.numel if schema_arg(ins, attrs, "bias", 2) is not None else 0)


define(["convolution", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
        "conv_transpose3d"], Category.CONV, _conv_infer, _conv_flops)
