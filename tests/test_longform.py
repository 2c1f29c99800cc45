"""Long-form splitting: pauses, piece lengths, transcript shares, paralinguistic pairing, sentence packing,
and cross-fade joins."""
from __future__ import annotations

import numpy as np
import pytest

from stepedit_core import longform as lf

SR = 16000


def _speech_like(seconds: float, pauses: list[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """Noise bursts modulated at a syllable rate, with near-silent pauses at the given [start, end) seconds."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wav = (rng.standard_normal(t.size) * 0.2 * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    for a, b in pauses:
        wav[int(a * SR):int(b * SR)] *= 1e-3
    return wav


def test_short_audio_is_one_piece():
    wav = _speech_like(12.0, [])
    assert lf.split_at_pauses(wav, SR) == [lf.Span(0, wav.size)]


def test_cuts_fall_in_pauses_and_pieces_are_at_most_30s():
    pauses = [(8.0, 8.5), (24.0, 24.6), (41.0, 41.4), (63.0, 63.7)]
    wav = _speech_like(80.0, pauses)
    spans = lf.split_at_pauses(wav, SR)
    assert spans[0].start == 0 and spans[-1].end == wav.size
    assert all(a.end == b.start for a, b in zip(spans, spans[1:]))           # contiguous, nothing lost
    assert all(s.length <= 30 * SR for s in spans)
    for s in spans[:-1]:                                                    # every cut inside a pause
        assert any(a * SR <= s.end <= b * SR for a, b in pauses), s.end / SR
    # the 8 s pause is too early (pieces are at least 10 s), the later ones are used
    assert [round(s.end / SR) for s in spans[:-1]] == [24, 41, 63]


def test_no_pause_still_respects_the_limit():
    wav = _speech_like(70.0, [])
    spans = lf.split_at_pauses(wav, SR)
    assert 3 <= len(spans) <= 7                                            # ceil(70/30) .. 70/min piece
    assert all(s.length <= 30 * SR for s in spans)
    assert all(s.length >= lf.MIN_PIECE_S * SR for s in spans[:-1])


def test_transcript_split_follows_voiced_time_and_punctuation():
    text = "one two three four five, six seven eight nine ten. eleven twelve thirteen fourteen fifteen"
    parts = lf.split_text(text, [2.0, 1.0])
    assert " ".join(parts) == text
    assert parts[0].endswith("ten.")            # target after word 10 of 15 is exactly at the full stop
    parts = lf.split_text(text, [1.0, 2.0])
    assert parts[0].endswith("five,")           # nearest punctuation to word 5
    zh = "今天天气很好，我们去公园吧。然后去吃饭，好不好。"      # 20 characters; the middle is 10
    parts = lf.split_text(zh, [1.0, 1.0])
    assert "".join(parts) == zh and parts[0] == "今天天气很好，我们去公园吧。"


def test_paralinguistic_text_is_cut_at_the_same_words():
    a, n = lf.split_paired("I was so tired. Then I went home and slept",
                           "I was so tired [Sigh]. Then I went [Laughter] home and slept", [1.0, 1.0])
    assert a == ["I was so tired.", "Then I went home and slept"]
    assert n == ["I was so tired [Sigh].", "Then I went [Laughter] home and slept"]
    a, n = lf.split_paired("你好世界我们走吧", "你好[Laughter]世界我们[Sigh]走吧", [1.0, 1.0])
    assert a == ["你好世界", "我们走吧"] and n == ["你好[Laughter]世界", "我们[Sigh]走吧"]


def test_reworded_new_text_falls_back_to_its_own_split():
    a, n = lf.split_paired("one two three four", "uno dos [Sigh] tres cuatro", [1.0, 1.0])
    assert a == ["one two", "three four"] and len(n) == 2 and " ".join(n) == "uno dos [Sigh] tres cuatro"


def test_sentences_zh_and_en():
    assert lf.split_sentences("Hello there. How are you? 我很好。你呢？ Fine!") == \
        ["Hello there.", "How are you?", "我很好。", "你呢？", "Fine!"]
    assert lf.split_sentences("Version 2.5 is out. OK") == ["Version 2.5 is out.", "OK"]


@pytest.mark.parametrize("text", ["今天天气很好，我们去公园散步吧。然后去吃饭，好不好？" * 8,
                                  "This is a sentence that goes on for a while. " * 20])
def test_clone_text_packs_whole_sentences_under_the_limit(text):
    pieces = lf.split_target_text(text, max_s=10.0)
    assert len(pieces) > 1
    assert all(lf.speaking_seconds(p) <= 10.0 for p in pieces)
    assert all(p.endswith(("。", "？", ".")) for p in pieces)             # whole sentences only
    squash = lambda s: "".join(s.split())                                 # noqa: E731
    assert squash("".join(pieces)) == squash(text)


def test_overlong_sentence_is_cut_at_commas_then_words():
    text = ", ".join(["word"] * 60)
    pieces = lf.split_target_text(text, max_s=5.0)
    assert all(lf.speaking_seconds(p) <= 5.0 for p in pieces)
    no_commas = " ".join(["word"] * 60)
    pieces = lf.split_target_text(no_commas, max_s=5.0)
    assert all(lf.speaking_seconds(p) <= 5.0 for p in pieces) and len(pieces) == 5


def test_short_clone_text_is_untouched():
    assert lf.split_target_text("  Hello world.  ") == ["Hello world."]


def test_join_crossfades():
    sr = 24000
    a, b = np.ones(sr, np.float32), np.ones(sr, np.float32)
    out = lf.join_pieces([a, b], sr)
    n = int(lf.CROSSFADE_S * sr)
    assert out.size == 2 * sr - n
    assert np.all(np.isfinite(out)) and out.max() <= np.sqrt(2) + 1e-6
