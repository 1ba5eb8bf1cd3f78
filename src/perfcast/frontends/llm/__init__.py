"""LLM configs (catalog or Hugging Face config.json) and their prefill/decode graphs."""

from perfcast.frontends.llm.catalog import list_models, load_model, model_names
from perfcast.frontends.llm.config import MLAConfig, ModelConfig, MoEConfig
from perfcast.frontends.llm.errors import ModelConfigError, UnknownModelError
from perfcast.frontends.llm.hf import config_from_hf, load_hf_config

__all__ = [
    "MLAConfig",
    "MoEConfig",
    "ModelConfig",
    "ModelConfigError",
    "UnknownModelError",
    "config_from_hf",
    "list_models",
    "load_hf_config",
    "load_model",
    "model_names",
]
