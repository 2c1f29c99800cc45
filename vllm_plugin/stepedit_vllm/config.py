"""The Step1 config for ``model_type: step1`` without remote code.

Field names and defaults follow the official ``config.json`` (hidden 3072, 48 heads, 4 KV groups, 32 layers,
vocab 74752, eos ``<|EOT|>`` = 3). ``tie_word_embeddings`` is always False: the official ``lm_head`` has its own
weights, and vLLM ties them to the embedding when the flag is true or missing.
"""
from __future__ import annotations

from transformers import PretrainedConfig


class Step1VllmConfig(PretrainedConfig):
    model_type = "step1"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(self, hidden_size: int = 3072, intermediate_size: int = 8192, num_attention_heads: int = 48,
                 num_attention_groups: int = 4, num_hidden_layers: int = 32, max_seq_len: int = 32768,
                 vocab_size: int = 74752, rms_norm_eps: float = 1e-5, bos_token_id: int = 1,
                 pad_token_id: int = 0, eos_token_id: int = 3, **kwargs):
        kwargs.pop("tie_word_embeddings", None)            # the official lm_head is never tied
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_attention_heads = num_attention_heads
        self.num_attention_groups = num_attention_groups
        self.num_key_value_heads = num_attention_groups    # the name vLLM's KV-cache sizing reads
        self.num_hidden_layers = num_hidden_layers
        self.max_seq_len = max_seq_len
        self.max_position_embeddings = max_seq_len         # vLLM derives max_model_len from this
        self.vocab_size = vocab_size
        self.rms_norm_eps = rms_norm_eps
        super().__init__(bos_token_id=bos_token_id, pad_token_id=pad_token_id, eos_token_id=eos_token_id,
                         tie_word_embeddings=False, **kwargs)
