"""Rule rewards from audio (stepedit_core.train.rules) on the tiny checkpoint: completions are decoded by the
engine's own flow + HiFT and scored by the take check (the lite whisper, the engine's CAM++); the rewards are
finite, bounded and point the documented way, and the checks judge makes the pair miner keep only pairs whose
score gap reaches the margin."""
from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

import stepedit_core as sc
from stepedit_core import checks
from stepedit_core.interface import AudioClip
from stepedit_core.tokens import EOT_ID, GROUP_SIZE, TOKEN_RATE_HZ, to_llm_ids
from stepedit_core.train import pairs, rules
from tests.train.conftest import random_tokens

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WANTED_S = 2.0
FULL_GROUPS = round(WANTED_S * TOKEN_RATE_HZ / GROUP_SIZE)       # 17 groups = 2.04 s
SHORT_GROUPS = 6                                                # 0.72 s: a truncated output
MARGIN = 0.8
_rng = random.Random(3)
FULL, SHORT = random_tokens(_rng, FULL_GROUPS), random_tokens(_rng, SHORT_GROUPS)   # shared: checks are cached


@pytest.fixture(scope="module")
def scorer(ckpt):
    return rules.AudioScorer(sc.load_engine("stepaudio", model_path=ckpt))


@pytest.fixture(scope="module")
def target():
    """The voice: the first 2 s of the English example (the decoder's flow cost grows with the prompt)."""
    clip = AudioClip.from_file(EXAMPLES / "prompt_en.wav")
    return rules.RewardTarget((EXAMPLES / "prompt_en.txt").read_text().strip(),
                              AudioClip(clip.samples[:2 * clip.sample_rate], clip.sample_rate), WANTED_S)


def test_grpo_rule_rewards_decode_check_and_rank(scorer, target):
    full, short = FULL, SHORT
    completions = [to_llm_ids(full) + [EOT_ID], to_llm_ids(short) + [EOT_ID], [EOT_ID]]   # the last: no audio
    fns = rules.grpo_rewards(scorer, [target])
    assert [f.__name__ for f in fns] == ["wer", "speaker", "duration"]
    got = {f.__name__: f(["p0"] * 3, completion_ids=completions) for f in fns}
    print({k: [round(x, 3) for x in v] for k, v in got.items()})
    assert all(math.isfinite(x) for v in got.values() for x in v)
    assert all(-1.0 <= x <= 0.0 for x in got["wer"]) and all(-1.0 <= x <= 1.0 for x in got["speaker"])
    full_d, short_d, empty_d = got["duration"]
    assert full_d == pytest.approx(-abs(math.log(FULL_GROUPS * 0.12 / WANTED_S)), abs=1e-6)   # 0.12 s a group
    assert full_d > -0.05 and short_d == pytest.approx(-abs(math.log(SHORT_GROUPS * 0.12 / WANTED_S)), abs=1e-6)
    assert full_d > short_d > empty_d == -rules.DURATION_FLOOR
    assert [v[2] for v in got.values()] == [-1.0, -1.0, -rules.DURATION_FLOOR]   # floors for no audio
    check = scorer.check(full, target)
    assert check.speaker_model == "campplus" and check.duration_ratio == pytest.approx(FULL_GROUPS * 0.12 / 2)
    assert scorer.check(full, target) is check                                  # one decode + ASR per output
    with pytest.raises(sc.InvalidInputError, match="no reward target"):
        fns[0](["p1"], completion_ids=completions[:1])
    with pytest.raises(sc.InvalidInputError, match="unknown rule"):
        rules.grpo_rewards(scorer, [target], rules=["mos"])


def test_wer_and_speaker_rewards_point_the_documented_way():
    """On real speech, with the lite checker (whisper + the lite speaker embedder; the tiny checkpoint's random
    CAM++ maps every clip to nearly the same x-vector, so it cannot tell voices apart): the right text and the
    same voice score higher than a wrong text and another voice."""
    from stepedit_core.listen import speaker_embedding
    clip = AudioClip.from_file(EXAMPLES / "prompt_en.wav")
    text = (EXAMPLES / "prompt_en.txt").read_text().strip()
    checker = checks.Checker(checks.whisper_transcriber(), *speaker_embedding.default_embedder())
    same = rules.rule_scores(checker.check(clip, text, source=clip))
    wrong = rules.rule_scores(checker.check(clip, "Seven green bottles stand on the kitchen wall.",
                                            source=AudioClip.from_file(EXAMPLES / "prompt_zh.wav")))
    print(f"right text, same voice {same}; wrong text, other voice {wrong}")
    assert same["wer"] > -0.1 and wrong["wer"] < -0.5
    assert same["speaker"] == pytest.approx(1.0, abs=1e-6) and wrong["speaker"] < same["speaker"] - 0.05


def test_checks_judge_keeps_only_pairs_above_the_margin(scorer, target):
    rng, full, short = random.Random(4), FULL, SHORT
    alike = [random_tokens(rng, FULL_GROUPS) for _ in range(2)]
    judge = rules.checks_judge(scorer)
    cands = lambda *ts: [pairs.Candidate(t, key=f"c{i}") for i, t in enumerate(ts)]   # noqa: E731
    scores = {name: judge(target, pairs.Candidate(t)) for name, t in
              (("full", full), ("short", short), ("alike0", alike[0]), ("alike1", alike[1]))}
    print({k: round(v, 3) for k, v in scores.items()})
    assert scores["full"] - scores["short"] >= MARGIN > abs(scores["alike0"] - scores["alike1"])
    mined = pairs.mine_pairs([(target, [1, 2], cands(short, full)), (target, [3, 4], cands(*alike))], judge,
                             margin=MARGIN)
    assert len(mined) == 1 and mined[0].chosen == full and mined[0].rejected == short
    assert mined[0].prompt == (1, 2) and mined[0].margin == pytest.approx(scores["full"] - scores["short"])
    only_duration = rules.checks_judge(scorer, {"duration": 1.0})
    assert only_duration(target, pairs.Candidate(full)) == scorer.scores(full, target)["duration"]
    with pytest.raises(sc.InvalidInputError, match="RewardTarget"):
        judge(None, pairs.Candidate(full))
    no_asr = rules.AudioScorer(scorer.engine, rules=["duration"])          # no whisper without the wer rule
    assert no_asr.scores(full, target) == {"duration": scorer.scores(full, target)["duration"]}
    with pytest.raises(sc.InvalidInputError, match="unknown rule"):
        rules.checks_judge(no_asr, {"wer": 1.0})


def test_reward_targets_of_requests():
    clip = AudioClip.from_file(EXAMPLES / "prompt_en.wav")
    clone = rules.RewardTarget.for_edit("clone", None, clip, "the voice", "one two three four five six")
    assert clone.text == "one two three four five six" and clone.expected_seconds == pytest.approx(6 / 2.7)
    slower = rules.RewardTarget.for_edit("speed", "slower", clip, "good morning")
    assert slower.text == "good morning" and slower.expected_seconds == pytest.approx(clip.duration / 0.83)
    para = rules.RewardTarget.for_edit("paralinguistic", None, clip, "hi", "hi [Laughter] there", target_seconds=3)
    assert para.text == "hi [Laughter] there" and para.expected_seconds == 3
    assert rules.RewardTarget.for_edit("vad", None, clip, "good morning").expected_seconds is None
    with pytest.raises(sc.InvalidInputError, match="needs the text"):
        rules.RewardTarget.for_edit("emotion", "happy", clip, "")
