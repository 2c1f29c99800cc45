"""The official Step-Audio-EditX sampling as vLLM per-request logits processors.

Official call (``tts.py``): temperature 0.7, top-k 50 (transformers' default), top-p 1.0, eos ``<|EOT|>`` (3),
and ``RepetitionAwareLogitsProcessor``. Temperature / top-k / top-p are plain ``SamplingParams``
(:data:`OFFICIAL_SAMPLING`); the two processors here run before them, as in transformers (vLLM applies
processors that are not argmax-invariant on the fp32 logits before temperature and top-k):

- :class:`RepetitionGuard` (default on): with the last 10 ids, prompt included, as the window, ban the last
  id when it occurs at least twice there; a no-op while the sequence has fewer than 10 ids.
- :class:`AudioGroupConstraint` (default off, not official): only ids of the next slot of the 2+3 audio
  pattern may be drawn (vq02 ``<audio_0..1023>`` at slots 0-1, vq06 ``<audio_1024..5119>`` at slots 2-4),
  or ``<|EOT|>`` at a group boundary after at least one group.

Per request, through ``SamplingParams.extra_args`` (``vllm_xargs`` in the OpenAI API):
``{"step1_repetition_guard": 0 | 1, "step1_audio_groups": 0 | 1}`` (booleans work too).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

# Token layout of the Step1 vocabulary (the same numbers as stepedit_core.tokens; a test keeps them equal).
EOT_ID = 3                  # <|EOT|>
AUDIO_TOKEN_OFFSET = 65536  # LLM id of <audio_0>
VQ02_SIZE = 1024            # vq02 codebook: <audio_0..1023>
PROMPT_TOKEN_SPACE = 5120   # vq02 + vq06 (4096): <audio_0..5119>
GROUP_SIZE = 5              # one 2+3 group: 2 vq02 ids then 3 vq06 ids
VQ02_PER_GROUP = 2
REPETITION_WINDOW = 10      # RepetitionAwareLogitsProcessor window_size
REPETITION_THRESHOLD = 0.1  # ban when count / window > threshold, i.e. count >= 2

OFFICIAL_SAMPLING = {"temperature": 0.7, "top_k": 50, "top_p": 1.0}

GUARD_ARG = "step1_repetition_guard"
GROUPS_ARG = "step1_audio_groups"


def _flag(params: SamplingParams, name: str, default: bool) -> bool:
    value = (params.extra_args or {}).get(name, default)
    if value not in (True, False):                     # JSON true/false or 1/0 (vllm_xargs carries numbers)
        raise ValueError(f"{name} must be true or false (1 or 0), got {value!r}")
    return bool(value)


def banned_id(prompt_ids: Sequence[int], output_ids: Sequence[int]) -> int | None:
    """The id the official processor bans next, or None (window over prompt + output)."""
    n_out = len(output_ids)
    if n_out >= REPETITION_WINDOW:
        window = list(output_ids[-REPETITION_WINDOW:])
    else:
        need = REPETITION_WINDOW - n_out
        if len(prompt_ids) < need:
            return None
        window = list(prompt_ids[len(prompt_ids) - need:]) + list(output_ids)
    last = window[-1]
    count = sum(1 for t in window if t == last)
    return last if count / REPETITION_WINDOW > REPETITION_THRESHOLD else None


def _guard(prompt_ids: list[int], output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
    banned = banned_id(prompt_ids, output_ids)
    if banned is not None:
        logits[banned] = float("-inf")
    return logits


def slot_range(position: int) -> tuple[int, int]:
    """[lo, hi) LLM ids allowed at generated position ``position`` of the 2+3 pattern."""
    if position % GROUP_SIZE < VQ02_PER_GROUP:
        return AUDIO_TOKEN_OFFSET, AUDIO_TOKEN_OFFSET + VQ02_SIZE
    return AUDIO_TOKEN_OFFSET + VQ02_SIZE, AUDIO_TOKEN_OFFSET + PROMPT_TOKEN_SPACE


def _constrain(output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
    position = len(output_ids)
    lo, hi = slot_range(position)
    eot = logits[EOT_ID].clone()
    logits[:lo] = float("-inf")
    logits[hi:] = float("-inf")
    if position > 0 and position % GROUP_SIZE == 0:
        logits[EOT_ID] = eot
    return logits


class RepetitionGuard(AdapterLogitsProcessor):
    """The official RepetitionAwareLogitsProcessor, per request (on unless ``step1_repetition_guard`` is false)."""

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams):
        _flag(sampling_params, GUARD_ARG, True)

    def is_argmax_invariant(self) -> bool:
        return False

    def new_req_logits_processor(self, params: SamplingParams):
        return _guard if _flag(params, GUARD_ARG, True) else None


class AudioGroupConstraint(AdapterLogitsProcessor):
    """The 2+3 audio-group mask, per request (off unless ``step1_audio_groups`` is true)."""

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams):
        _flag(sampling_params, GROUPS_ARG, False)

    def is_argmax_invariant(self) -> bool:
        return False

    def new_req_logits_processor(self, params: SamplingParams):
        return _constrain if _flag(params, GROUPS_ARG, False) else None
