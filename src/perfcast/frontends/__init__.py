"""Frontends: turn models (PyTorch now; ONNX and LLM configs later) into IR graphs."""

from perfcast.frontends.errors import CaptureError
from perfcast.frontends.targets import LoadedTarget, TargetError, load_target

__all__ = ["CaptureError", "LoadedTarget", "TargetError", "load_target"]
