"""The dual-codebook token layout: 2 vq02 + 3 vq06 codes per 120 ms, offset into one audio-token range.

Three spaces are in use:
- raw codes: vq02 in [0, 1024), vq06 in [0, 4096);
- prompt-token space (the ``<audio_N>`` number and the flow input): vq02 -> N = code, vq06 -> N = 1024 + code;
- LLM ids: ``<audio_N>`` = 65536 + N.

A mixed stream is 2 vq02 then 3 vq06 per group (120 ms): [a0, a1, b0, b1, b2, a2, a3, b3, b4, b5, ...].
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import TokenStreamError

log = logging.getLogger(__name__)

AUDIO_TOKEN_OFFSET = 65536          # LLM id of <audio_0>
VQ02_SIZE = 1024                    # linguistic codebook (k-means centroids)
VQ06_SIZE = 4096                    # semantic codebook (S3 tokenizer v1)
PROMPT_TOKEN_SPACE = VQ02_SIZE + VQ06_SIZE   # 5120 <audio_N> tokens
VQ02_PER_GROUP, VQ06_PER_GROUP = 2, 3
GROUP_SIZE = VQ02_PER_GROUP + VQ06_PER_GROUP
EOT_ID = 3                          # <|EOT|>, Step1 eos_token_id
VQ02_RATE_HZ = 50 / 3               # 4 codes per 240 ms chunk
VQ06_RATE_HZ = 25.0
TOKEN_RATE_HZ = VQ02_RATE_HZ + VQ06_RATE_HZ  # 41.67 mixed tokens per second

# Flow input (GH:cli/cosyvoice.py ``_reshape``): one shared 5121-row table; vq02 ids 0..1023 with 1024 as
# pad, vq06 ids 1025..5120 (prompt-token N - 1024 + 1025).
FLOW_VQ02_PAD = 1024
FLOW_VQ06_SHIFT = 1               # flow vq06 id = prompt-token N + 1
_FLOW_TAIL_PAD = (0, 0, 0, 1024, 1024, 1024)   # official padding of a broken last group (prompt-token space)

_AUDIO_RE = re.compile(r"<audio_(\d+)>")


def interleave_vq0206(vq02: Sequence[int], vq06: Sequence[int]) -> list[int]:
    """Interleave raw codes 2:3 into prompt-token space; tail codes that fill no whole group are dropped."""
    groups = min(len(vq02) // VQ02_PER_GROUP, len(vq06) // VQ06_PER_GROUP)
    out: list[int] = []
    for g in range(groups):
        out += [int(c) for c in vq02[2 * g:2 * g + 2]]
        out += [VQ02_SIZE + int(c) for c in vq06[3 * g:3 * g + 3]]
    return out


def split_vq0206(mixed: Sequence[int]) -> tuple[list[int], list[int]]:
    """Inverse of :func:`interleave_vq0206` for whole groups: (vq02 codes, raw vq06 codes)."""
    check_groups(mixed)
    vq02 = [int(t) for i, t in enumerate(mixed) if i % GROUP_SIZE < VQ02_PER_GROUP]
    vq06 = [int(t) - VQ02_SIZE for i, t in enumerate(mixed) if i % GROUP_SIZE >= VQ02_PER_GROUP]
    return vq02, vq06


def to_llm_ids(mixed: Sequence[int]) -> list[int]:
    return [AUDIO_TOKEN_OFFSET + int(t) for t in mixed]


def from_llm_ids(ids: Sequence[int]) -> list[int]:
    """LLM ids -> prompt-token space, refusing anything that is not an ``<audio_N>`` id."""
    out = []
    for i, t in enumerate(ids):
        n = int(t) - AUDIO_TOKEN_OFFSET
        if not 0 <= n < PROMPT_TOKEN_SPACE:
            raise TokenStreamError(f"id {int(t)} at position {i} is not an <audio_N> token")
        out.append(n)
    return out


def tokens_to_str(mixed: Sequence[int]) -> str:
    """``[5, 1030]`` -> ``"<audio_5><audio_1030>"`` (the official ``merge_vq0206_to_token_str``)."""
    return "".join(f"<audio_{int(t)}>" for t in mixed)


def str_to_tokens(s: str) -> list[int]:
    return [int(m) for m in _AUDIO_RE.findall(s)]


def group_position_ok(position: int, token: int) -> bool:
    """Whether a prompt-space token fits its slot in the 2+3 pattern."""
    if position % GROUP_SIZE < VQ02_PER_GROUP:
        return 0 <= token < VQ02_SIZE
    return VQ02_SIZE <= token < PROMPT_TOKEN_SPACE


def check_groups(mixed: Sequence[int]) -> None:
    """Raise TokenStreamError unless ``mixed`` is whole 2+3 groups with every token in its slot's range."""
    if len(mixed) % GROUP_SIZE:
        raise TokenStreamError(f"{len(mixed)} tokens is not a whole number of {GROUP_SIZE}-token groups")
    for i, t in enumerate(mixed):
        if not group_position_ok(i, int(t)):
            raise TokenStreamError(f"token {int(t)} at position {i} does not fit the 2+3 group pattern")


@dataclass(frozen=True)
class CheckedTokens:
    """Audio tokens recovered from an LLM output, in prompt-token space, whole groups only."""
    tokens: tuple[int, ...]
    had_eot: bool
    dropped: int          # tokens removed by the repair (0 for a clean stream)
    problem: str | None   # what was repaired, None for a clean stream

    @property
    def groups(self) -> int:
        return len(self.tokens) // GROUP_SIZE


def check_llm_output(ids: Sequence[int], *, repair: bool = True, eot_id: int = EOT_ID) -> CheckedTokens:
    """Validate generated LLM ids (prompt excluded) and convert them to prompt-token space.

    A clean stream is whole 2+3 groups of ``<audio_N>`` ids followed by ``<|EOT|>``. The official code
    instead drops the last id blindly and maps any non-audio id to a negative, then to code 0.

    Repair (``repair=True``, documented behaviour): cut at ``<|EOT|>``; cut at the first id that is not an
    audio id or does not fit its group slot; then drop the trailing incomplete group. A stream with nothing
    left raises TokenStreamError. With ``repair=False`` any defect except a missing EOT raises.
    """
    ids = [int(t) for t in ids]
    had_eot = eot_id in ids
    body = ids[:ids.index(eot_id)] if had_eot else ids
    problem = None if had_eot else "no <|EOT|> (length cap reached)"
    cut = len(body)
    for i, t in enumerate(body):
        n = t - AUDIO_TOKEN_OFFSET
        if not (0 <= n < PROMPT_TOKEN_SPACE and group_position_ok(i, n)):
            cut = i
            problem = (f"id {t} at position {i} is not an <audio_N> id" if not 0 <= n < PROMPT_TOKEN_SPACE
                       else f"<audio_{n}> at position {i} breaks the 2+3 group pattern")
            break
    whole = cut - cut % GROUP_SIZE
    if whole != len(body) and problem is None:
        problem = f"{len(body) % GROUP_SIZE} trailing tokens do not fill a group"
    if not repair and (cut != len(body) or whole != cut):
        raise TokenStreamError(problem or "broken token stream")
    if whole == 0:
        raise TokenStreamError(f"the model produced no whole audio group ({problem or 'empty output'})")
    tokens = tuple(t - AUDIO_TOKEN_OFFSET for t in body[:whole])
    return CheckedTokens(tokens=tokens, had_eot=had_eot, dropped=len(body) - whole, problem=problem)


def reshape_for_flow(mixed: Sequence[int]) -> np.ndarray:
    """Mixed prompt-space stream -> (T, 2) int64 rows at 25 Hz, exactly as the official ``_reshape``.

    Each group [a0, a1, b0, b1, b2] gives rows (a0, b0+1), (a1, b1+1), (1024, b2+1). A broken last group
    is padded with the tail of ``[0, 0, 0, 1024, 1024, 1024]`` as official (garbage, but faithful; callers
    should pass whole groups, see :func:`check_llm_output`).
    """
    seq = [int(t) for t in mixed]
    rem = len(seq) % GROUP_SIZE
    if rem:
        seq += list(_FLOW_TAIL_PAD[-(GROUP_SIZE - rem):])
    g = np.asarray(seq, dtype=np.int64).reshape(-1, GROUP_SIZE)
    vq02 = np.stack([g[:, 0], g[:, 1], np.full(len(g), FLOW_VQ02_PAD, np.int64)], axis=1)
    vq06 = g[:, 2:] + FLOW_VQ06_SHIFT
    return np.stack([vq02.reshape(-1), vq06.reshape(-1)], axis=1)


def tokens_for_seconds(seconds: float) -> int:
    """Mixed tokens that ``seconds`` of audio produce (whole groups of 120 ms)."""
    return int(seconds / 0.12) * GROUP_SIZE


def checked_llm_output(gen) -> CheckedTokens:
    """A generation's ids (model.generate.GenerationResult) as whole 2+3 groups, ``<|EOT|>`` appended when it
    stopped there; repaired, with a warning, when the model broke the pattern."""
    ids_out = list(gen.ids) + ([EOT_ID] if gen.stop_reason == "eot" else [])
    checked = check_llm_output(ids_out, repair=True)
    if checked.problem:
        log.warning("LLM output repaired: %s (%d tokens dropped)", checked.problem, checked.dropped)
    return checked
