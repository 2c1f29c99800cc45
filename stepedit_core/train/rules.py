"""Rule rewards computed from audio: generated tokens are decoded by the engine's own decoder (flow + HiFT, in
the source voice) and the take check (:mod:`stepedit_core.checks`: its ASR, WER / CER and speaker embedder)
scores the audio. The same scores serve GRPO (:func:`grpo_rewards`) and the large-margin pair miner
(:func:`checks_judge`). No TRL import.

Three rewards, higher is better, each bounded so that one broken sample cannot dominate a group:

- ``wer``: ``-min(WER or CER, 1)`` of the ASR transcript against the text the output should say (tags removed),
  in [-1, 0];
- ``speaker``: cosine similarity of the output's speaker embedding to the source voice's, in [-1, 1];
- ``duration``: ``-min(|ln(duration / expected)|, DURATION_FLOOR)``, in [-ln 4, 0]: 0 at the expected length,
  symmetric in "twice too long" and "half as long"; 0 for every output when no length is expected (silence
  removal).

An output without one whole 2+3 group cannot be decoded; it gets the floor of every reward.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from .. import catalog, checks
from ..audio import OUTPUT_SAMPLE_RATE
from ..errors import InvalidInputError
from ..interface import AudioClip
from .grpo import PROMPT_KEY, tokens_reward

RULES = ("wer", "speaker", "duration")
DURATION_FLOOR = math.log(4.0)       # 4x too long or too short scores as badly as no audio at all
FLOORS = {"wer": -1.0, "speaker": -1.0, "duration": -DURATION_FLOOR}
CHECK_CACHE = 256                    # decoded + checked completions kept (the three rewards share one check)


def _check_rules(rules: Sequence[str], available: Sequence[str] = RULES) -> list[str]:
    bad = [r for r in rules if r not in available]
    if bad or not rules:
        raise InvalidInputError(f"unknown rule reward(s) {', '.join(bad) or '(none)'}; expected some of "
                                f"{', '.join(available)}")
    return list(rules)


@dataclass(frozen=True)
class RewardTarget:
    """What one prompt's output should be: the ``text`` it says, the ``source`` voice (clone: the speaker
    prompt; edit: the audio edited, which is also the decoder's prompt) and its ``expected_seconds``."""
    text: str
    source: AudioClip
    expected_seconds: float | None = None

    @classmethod
    def for_edit(cls, edit_type: str, edit_info: str | None, source: AudioClip, source_text: str,
                 new_text: str | None = None, target_seconds: float | None = None) -> "RewardTarget":
        """The target of one request; ``target_seconds`` (e.g. the reference target's length) overrides the
        length the take check would expect (checks.expected_clone_seconds / expected_edit_seconds)."""
        clone = edit_type == catalog.CLONE
        text = new_text if clone or edit_type == catalog.PARALINGUISTIC else source_text
        if not (text or "").strip():
            raise InvalidInputError(f"a {edit_type} reward target needs the text the output should say")
        if target_seconds is None:
            target_seconds = (checks.expected_clone_seconds(text) if clone
                              else checks.expected_edit_seconds(source.duration, edit_type, edit_info))
        return cls(text, source, target_seconds)


def rule_scores(check: checks.TakeCheck | None) -> dict[str, float]:
    """The three rewards of one checked take (module docstring); the floors for ``None`` (no audio)."""
    if check is None:
        return dict(FLOORS)
    duration = 0.0
    if check.duration_ratio is not None:
        duration = -min(abs(math.log(max(check.duration_ratio, 1e-9))), DURATION_FLOOR)
    speaker = check.speaker_similarity if check.speaker_similarity is not None else 0.0
    return {"wer": -min(float(check.error_rate), 1.0), "speaker": float(speaker), "duration": duration}


class AudioScorer:
    """Decodes audio tokens with ``engine`` (a StepAudioEngine) in the target's source voice and checks the take
    with ``checker`` (default ``checks.checker_for(engine)``: the lite whisper + the engine's CAM++; without the
    ``wer`` rule no ASR runs). ``seed`` fixes the decoder's flow / HiFT noise, so a completion always decodes
    to the same audio."""

    def __init__(self, engine, checker: checks.Checker | None = None, seed: int = 0,
                 rules: Sequence[str] = RULES):
        self.engine, self.seed, self.rules = engine, int(seed), tuple(_check_rules(rules))
        if checker is None and "wer" not in self.rules:      # no ASR needed: skip whisper entirely
            embed = engine.speaker_embedding if "speaker" in self.rules and engine.speaker_model else None
            checker = checks.Checker(_unheard, embed, engine.speaker_model)
        self.checker = checker if checker is not None else checks.checker_for(engine)
        self._cache: OrderedDict[tuple, checks.TakeCheck | None] = OrderedDict()

    def decode(self, tokens: Sequence[int], target: RewardTarget) -> AudioClip:
        prompt = self.engine.encode_prompt(target.source.samples, target.source.sample_rate, seed=self.seed)
        wav = self.engine.decode_tokens(list(tokens), prompt, seed=self.seed)
        return AudioClip.from_array(wav, OUTPUT_SAMPLE_RATE)

    def check(self, tokens: Sequence[int], target: RewardTarget) -> checks.TakeCheck | None:
        """The take check of the decoded tokens, or None when they hold no whole group (cached)."""
        tokens = tuple(int(t) for t in tokens)
        key = (id(target), tokens)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        result = None
        if tokens:
            result = self.checker.check(self.decode(tokens, target), target.text, source=target.source,
                                        expected_seconds=target.expected_seconds)
        self._cache[key] = result
        while len(self._cache) > CHECK_CACHE:
            self._cache.popitem(last=False)
        return result

    def scores(self, tokens: Sequence[int], target: RewardTarget) -> dict[str, float]:
        """The rewards of this scorer's ``rules`` for one output."""
        s = rule_scores(self.check(tokens, target))
        return {r: s[r] for r in self.rules}


def _unheard(clip: AudioClip, language: str | None = None) -> checks.Heard:
    """Transcriber of a scorer without the ``wer`` rule (its error rate is never read)."""
    return checks.Heard("", language)


def grpo_rewards(scorer: AudioScorer, targets: Sequence[RewardTarget] | Mapping[str, RewardTarget],
                 rules: Sequence[str] | None = None) -> list[Callable]:
    """TRL reward functions, one per rule, for :func:`stepedit_core.train.grpo.train_grpo`. ``targets`` are in
    the order of the GRPO prompts (or keyed by prompt key); ``rules`` default to the scorer's. One decode +
    check per completion serves all."""
    by_key = dict(targets) if isinstance(targets, Mapping) else {PROMPT_KEY.format(i): t
                                                                 for i, t in enumerate(targets)}

    def rule_fn(rule: str):
        def fn(key: str, tokens: tuple[int, ...], row: dict) -> float:
            if key not in by_key:
                raise InvalidInputError(f"no reward target for GRPO prompt {key!r}")
            return scorer.scores(tokens, by_key[key])[rule]
        return tokens_reward(fn, rule)

    return [rule_fn(r) for r in _check_rules(rules or scorer.rules, scorer.rules)]


def checks_judge(scorer: AudioScorer, weights: Mapping[str, float] | None = None):
    """A pair-miner judge (:mod:`.pairs`): ``judge(target, candidate)`` = the weighted sum of the rule rewards
    (default weight 1 each) of the candidate's decoded audio; the request of each group is its RewardTarget."""
    weights = dict(weights) if weights is not None else {r: 1.0 for r in scorer.rules}
    _check_rules(list(weights), scorer.rules)

    def judge(target, candidate) -> float:
        if not isinstance(target, RewardTarget):
            raise InvalidInputError("the checks judge needs a RewardTarget as the request of each group")
        s = scorer.scores(candidate.tokens, target)
        return sum(w * s[r] for r, w in weights.items())
    return judge
