"""Models the runtime must run end to end, small by default, with random weights.

Each factory returns ``(model, example_inputs)`` with the model in eval mode. The
transformer families come from `transformers` config classes (``use_cache=False`` so
they export); ``full=True`` gives the real architecture sizes.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def mlp(batch: int = 3):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 96), nn.ReLU(),
                          nn.Linear(96, 10), nn.SiLU())
    return model.eval(), (torch.randn(batch, 64),)


class Block(nn.Module):
    """A pre-norm transformer block: causal SDPA self-attention and a GELU MLP."""

    def __init__(self, dim: int = 64, heads: int = 4, manual: bool = False) -> None:
        super().__init__()
        self.heads, self.manual = heads, manual
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.up, self.down = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        if self.manual:  # matmul -> scale -> mask -> softmax -> matmul, written out
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            keep = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            scores = scores.masked_fill(~keep, float("-inf"))
            att = torch.softmax(scores, dim=-1) @ v
        else:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


def block(batch: int = 2, seq: int = 16, dim: int = 64, manual: bool = False):
    torch.manual_seed(0)
    return Block(dim, manual=manual).eval(), (torch.randn(batch, seq, dim),)


def block_manual(batch: int = 2, seq: int = 16, dim: int = 64):
    return block(batch, seq, dim, manual=True)


def _ids(vocab: int, batch: int, seq: int) -> tuple[torch.Tensor]:
    return (torch.randint(0, vocab, (batch, seq)),)


def gpt2(full: bool = False, seq: int = 16, batch: int = 1):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    size = {} if full else {"n_layer": 2, "n_embd": 128, "n_head": 4, "vocab_size": 1000,
                            "n_positions": 128}
    cfg = GPT2Config(**size, use_cache=False)
    return GPT2LMHeadModel(cfg).eval(), _ids(cfg.vocab_size, batch, seq)


def bert(full: bool = False, seq: int = 16, batch: int = 1):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    size = {} if full else {"num_hidden_layers": 2, "hidden_size": 128,
                            "num_attention_heads": 4, "intermediate_size": 256,
                            "vocab_size": 1000}
    cfg = BertConfig(**size, use_cache=False)
    return BertModel(cfg).eval(), _ids(cfg.vocab_size, batch, seq)


def qwen3(full: bool = False, seq: int = 16, batch: int = 1):
    """Qwen3-0.6B architecture (RoPE, GQA, SwiGLU, RMSNorm, q/k norms, tied embeddings)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    full_size = {"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
                 "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
                 "vocab_size": 151936, "max_position_embeddings": 40960}
    small = {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
             "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 32,
             "vocab_size": 1000, "max_position_embeddings": 128}
    cfg = Qwen3Config(**(full_size if full else small), rope_theta=1000000.0,
                      rms_norm_eps=1e-6, tie_word_embeddings=True, use_cache=False)
    return Qwen3ForCausalLM(cfg).eval(), _ids(cfg.vocab_size, batch, seq)


MODELS = {"mlp": mlp, "block": block, "block_manual": block_manual, "gpt2": gpt2,
          "bert": bert, "qwen3": qwen3}
