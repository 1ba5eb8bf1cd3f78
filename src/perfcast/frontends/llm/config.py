"""Architecture facts of a decoder-only LLM, as a validated pydantic model.

Field names follow Hugging Face ``config.json`` where one exists, so a catalog
entry reads like the config it was copied from. Every catalog file names its
source (the model's public config.json) and the published parameter count.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from perfcast.sources import Frozen, Source

NAME_PATTERN = r"^[a-z0-9]+([.-][a-z0-9]+)*$"
LayerType = Literal["full_attention", "sliding_attention"]
Activation = Literal["silu", "gelu", "gelu_tanh", "relu"]


class PublishedParams(Frozen):
    """A parameter count announced by the model's authors (model card, paper)."""

    total: float = Field(gt=0)
    active: float | None = Field(default=None, gt=0)
    source: Source


class MLAConfig(Frozen):
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank Q and a compressed KV cache."""

    q_lora_rank: int | None = Field(default=None, ge=1)
    kv_lora_rank: int = Field(ge=1)
    qk_nope_head_dim: int = Field(ge=1)
    qk_rope_head_dim: int = Field(ge=1)
    v_head_dim: int = Field(ge=1)

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def cache_dim(self) -> int:
        """Elements cached per token and layer: the latent plus the shared RoPE key."""
        return self.kv_lora_rank + self.qk_rope_head_dim


class MoEConfig(Frozen):
    """Mixture of experts: routed experts (top-k per token), optional shared experts."""

    num_experts: int = Field(ge=1)
    experts_per_token: int = Field(ge=1)
    expert_intermediate_size: int = Field(ge=1)
    num_shared_experts: int = Field(default=0, ge=0)
    shared_intermediate_size: int | None = Field(default=None, ge=1)
    first_dense_layers: int = Field(default=0, ge=0)
    expert_bias: bool = False

    @model_validator(mode="after")
    def _top_k_within_experts(self) -> MoEConfig:
        if self.experts_per_token > self.num_experts:
            raise ValueError(
                f"experts_per_token ({self.experts_per_token}) exceeds num_experts "
                f"({self.num_experts})"
            )
        return self

    @property
    def shared_size(self) -> int:
        """Intermediate width of all shared experts together."""
        width = self.shared_intermediate_size or self.expert_intermediate_size
        return self.num_shared_experts * width


class ModelConfig(Frozen):
    """A decoder-only transformer: enough to build its prefill and decode graphs."""

    name: str = Field(pattern=NAME_PATTERN)
    display_name: str
    family: str
    aliases: list[str] = Field(default_factory=list)
    source: Source
    published_params: PublishedParams | None = None

    hidden_size: int = Field(ge=1)
    num_hidden_layers: int = Field(ge=1)
    vocab_size: int = Field(ge=1)
    num_attention_heads: int = Field(ge=1)
    num_key_value_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    intermediate_size: int = Field(ge=1, description="dense MLP width (dense layers)")
    hidden_act: Activation = "silu"
    gated_mlp: bool = True
    attention_bias: bool = False
    attention_output_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    tie_word_embeddings: bool = False
    max_position_embeddings: int = Field(default=131072, ge=1)

    mla: MLAConfig | None = None
    moe: MoEConfig | None = None
    sliding_window: int | None = Field(default=None, ge=1)
    layer_types: list[LayerType] | None = None
    attention_sinks: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        problems = []
        if self.num_attention_heads % self.num_key_value_heads:
            problems.append(
                f"num_attention_heads ({self.num_attention_heads}) is not a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.layer_types is not None:
            if len(self.layer_types) != self.num_hidden_layers:
                problems.append(
                    f"layer_types has {len(self.layer_types)} entries for "
                    f"{self.num_hidden_layers} layers"
                )
            if "sliding_attention" in self.layer_types and self.sliding_window is None:
                problems.append("layer_types has sliding_attention but sliding_window is unset")
        if self.moe is not None and self.moe.first_dense_layers > self.num_hidden_layers:
            problems.append("moe.first_dense_layers exceeds num_hidden_layers")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def kv_heads(self) -> int:
        """Distinct key/value heads stored per layer (1 for MLA's shared latent)."""
        return 1 if self.mla else self.num_key_value_heads

    @property
    def kv_elements_per_token_layer(self) -> int:
        """KV-cache elements per token per full layer (K and V, or MLA's latent + rope key)."""
        if self.mla:
            return self.mla.cache_dim
        return 2 * self.num_key_value_heads * self.head_dim

    def layer_kinds(self) -> list[tuple[str, bool]]:
        """Per layer: (attention type, has routed experts)."""
        types = self.layer_types or ["full_attention"] * self.num_hidden_layers
        first_dense = self.moe.first_dense_layers if self.moe else 0
        return [(t, self.moe is not None and i >= first_dense) for i, t in enumerate(types)]
