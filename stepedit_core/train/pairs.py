"""Large-margin pair mining (pure: no TRL needed).

For one edit request the engine samples several candidate outputs (different seeds); a pluggable judge scores
each one; the best and the worst form a (chosen, rejected) pair only when their score gap is at least
``margin``, so that the reward model learns from clear preferences and not from judge noise.

A judge is any callable ``judge(request, candidate) -> float`` (higher is better): the take checks on the
decoded audio (:func:`stepedit_core.train.rules.checks_judge`: WER / CER, speaker similarity, duration), a
classifier's probability of the wanted emotion, or human labels (:func:`labels_judge`). :func:`duration_judge` is a rule judge usable without any model.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping, Sequence

from ..errors import InvalidInputError
from ..model.generate import SamplingOptions, generate, max_new_tokens_for_audio
from ..tokens import EOT_ID, TOKEN_RATE_HZ, check_llm_output, to_llm_ids

DEFAULT_MARGIN = 0.5          # score units of the judge; pick it from the judge's noise (e.g. 2 x its std)


@dataclass(frozen=True)
class Candidate:
    tokens: tuple[int, ...]            # prompt-token space, whole 2+3 groups
    seed: int | None = None
    key: str = ""                      # an identifier for human labels (e.g. "req3/seed7")
    meta: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class PreferencePair:
    prompt: tuple[int, ...]            # the inference prompt ids (data.prompt_ids)
    chosen: tuple[int, ...]            # prompt-token space
    rejected: tuple[int, ...]
    margin: float                      # judge score gap, >= the mining threshold

    def record(self, with_margin: bool = False) -> dict:
        """The pre-tokenized columns of TRL's RewardTrainer: prompt + completion + EOT for both sides.
        ``with_margin`` adds the gap as the Bradley-Terry margin term."""
        rec = {"chosen_ids": list(self.prompt) + to_llm_ids(self.chosen) + [EOT_ID],
               "rejected_ids": list(self.prompt) + to_llm_ids(self.rejected) + [EOT_ID]}
        if with_margin:
            rec["margin"] = float(self.margin)
        return rec


Judge = Callable[[object, Candidate], float]


def mine_pair(request, prompt: Sequence[int], candidates: Sequence[Candidate], judge: Judge,
              margin: float = DEFAULT_MARGIN) -> PreferencePair | None:
    """Best vs worst candidate of one request, or None when their score gap is below ``margin``."""
    if margin < 0:
        raise InvalidInputError(f"margin must be >= 0, got {margin}")
    if len(candidates) < 2:
        return None
    scored = sorted(((float(judge(request, c)), i) for i, c in enumerate(candidates)), reverse=True)
    (best, bi), (worst, wi) = scored[0], scored[-1]
    if best - worst < margin or candidates[bi].tokens == candidates[wi].tokens:
        return None
    return PreferencePair(tuple(prompt), candidates[bi].tokens, candidates[wi].tokens, best - worst)


def mine_pairs(groups: Iterable[tuple[object, Sequence[int], Sequence[Candidate]]], judge: Judge,
               margin: float = DEFAULT_MARGIN) -> list[PreferencePair]:
    """``groups`` yields (request, prompt ids, candidates); keeps the pairs whose gap reaches ``margin``."""
    return [p for request, prompt, cands in groups if (p := mine_pair(request, prompt, cands, judge, margin))]


def sample_candidates(llm, prompt: Sequence[int], seeds: Sequence[int], *, source_tokens: int,
                      options: SamplingOptions = SamplingOptions()) -> list[Candidate]:
    """Candidates for one prompt, one per seed, with the engine's sampler (official sampling by default) and
    the engine's bound on new tokens for a source of ``source_tokens`` mixed tokens; outputs are repaired to
    whole groups as the engine does, empty ones are dropped."""
    cap = options.max_new_tokens or max_new_tokens_for_audio(source_tokens)
    out = []
    for seed in seeds:
        opts = replace(options, seed=int(seed), max_new_tokens=cap)
        gen = generate(llm, list(prompt), opts)
        checked = check_llm_output(list(gen.ids) + ([EOT_ID] if gen.stop_reason == "eot" else []), repair=True)
        if checked.tokens:
            out.append(Candidate(checked.tokens, int(seed), key=f"seed{seed}",
                                 meta={"stop_reason": gen.stop_reason, "repair": checked.problem}))
    return out


def labels_judge(labels: Mapping[str, float]) -> Judge:
    """Human (or offline) scores by candidate key; an unlabelled candidate is an error, never a silent 0."""
    def judge(request, candidate: Candidate) -> float:
        if candidate.key not in labels:
            raise InvalidInputError(f"no label for candidate {candidate.key!r}")
        return float(labels[candidate.key])
    return judge


def duration_judge(target_seconds: Callable[[object], float]) -> Judge:
    """Rule judge: minus the relative error between the candidate's duration (41.67 tokens/s) and the wanted
    one, e.g. ``lambda req: 1.5 * req.source_seconds`` for "slower"."""
    def judge(request, candidate: Candidate) -> float:
        want = float(target_seconds(request))
        if want <= 0:
            raise InvalidInputError(f"target duration must be positive, got {want}")
        return -abs(len(candidate.tokens) / TOKEN_RATE_HZ - want) / want
    return judge
