"""Frontends: turn models (PyTorch, Hugging Face configs, ONNX, TFLite, LLM configs) into IR."""

from perfcast.frontends.errors import CaptureError
from perfcast.frontends.targets import LoadedTarget, TargetError, load_target

__all__ = ["CaptureError", "LoadedTarget", "TargetError", "load_target"]
