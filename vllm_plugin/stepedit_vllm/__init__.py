"""vLLM plugin for the Step1 LLM of Step-Audio-EditX (entry point ``vllm.general_plugins: step1``).

vLLM ships ``Step1ForCausalLM`` but cannot serve an official Step-Audio-EditX folder as it is:
- it has no config class for ``model_type: step1`` (it would ask for remote code);
- it ties ``lm_head`` to the embedding unless ``tie_word_embeddings`` is False (the official weights are untied,
  so the output would be silently wrong);
- only the Triton attention backend implements sqrt-ALiBi; CPU_ATTN refuses it.

:func:`register` fixes all three (``internals.py``, the only module touching vLLM internals, for one exact
vLLM version); ``sampling.py`` holds the official sampling as per-request logits processors (their own entry
point group, ``vllm.logits_processors``).
"""
from __future__ import annotations

from .internals import SUPPORTED_VLLM, register

__all__ = ["register", "SUPPORTED_VLLM"]
