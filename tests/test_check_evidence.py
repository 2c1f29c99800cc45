"""Per-word acoustic evidence of the take check (stepedit_core.check_evidence), the second decode, and the voice
badge of an embedder that cannot judge."""
from __future__ import annotations

import numpy as np
import pytest

from stepedit_core import check_evidence as ev
from stepedit_core import checks
from stepedit_core.interface import AudioClip

SR = 16000


def _voiced(seconds: float, f0: float = 140.0) -> np.ndarray:
    """A vowel-like signal: 8 harmonics of f0 under a 4 Hz syllable envelope."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 9))
    return (0.1 * x * (0.55 - 0.45 * np.cos(2 * np.pi * 4 * t))).astype(np.float32)


def _take() -> AudioClip:
    """1 s of speech, 0.5 s of pause (room noise), 1 s of speech."""
    rng = np.random.default_rng(0)
    pause = (0.0005 * rng.standard_normal(SR // 2)).astype(np.float32)
    return AudioClip(np.concatenate([_voiced(1.0), pause, _voiced(1.0)]), SR)


def _checker(words, second=None, model="ge2e"):
    heard = " ".join(w.text for w in words)
    return checks.Checker(lambda clip, lang: checks.Heard(heard, lang, tuple(words)),
                          lambda clip: np.array([1.0, 0.0]), model, second_opinion=second)


def test_a_word_heard_in_a_pause_has_no_audio_under_it():
    restored = [checks.Word("for", 0.6, 0.9), checks.Word("you", 1.1, 1.3), checks.Word("ask", 1.6, 1.9)]
    c = _checker(restored).check(_take(), "for you, ask")
    assert c.error_rate == 0.0 and c.deleted == 0 and c.unsupported == ("you",)
    assert c.levels["error_rate"] == "amber" and "no audio under: you" in c.summary()
    you = c.evidence[1]
    assert you.word == "you" and you.missing and you.reason == "no speech" and you.speech < ev.MIN_SPEECH
    assert not c.evidence[0].missing and c.evidence[0].speech > 0.9 and c.evidence[0].voiced > 0.5
    said = [checks.Word("for", 0.3, 0.5), checks.Word("you", 0.6, 0.9), checks.Word("ask", 1.6, 1.9)]
    ok = _checker(said).check(_take(), "for you, ask")
    assert ok.levels["error_rate"] == "green" and not any(e.missing for e in ok.evidence)
    d = c.to_dict()          # the JSON gains the per-word evidence, the old fields stay
    assert d["unsupported"] == ["you"] and d["evidence"][1]["reason"] == "no speech"
    assert {"error_rate", "deleted", "substituted", "rushed", "words", "levels", "verdict"} <= set(d)
    back = checks.TakeCheck.from_dict(d)
    assert [(e.word, e.missing, e.reason) for e in back.evidence] == [(e.word, e.missing, e.reason)
                                                                      for e in c.evidence]
    assert back.evidence[1].speech == pytest.approx(c.evidence[1].speech, abs=1e-3) and back.unsupported == ("you",)


def test_deleted_and_too_short_words():
    words = [checks.Word("an", 0.1, 0.3), checks.Word("old", 0.3, 0.5), checks.Word("extraordinary", 0.5, 0.6),
             checks.Word("morning", 1.6, 1.95)]          # 5 syllables in 0.1 s, at a pace of ~0.1 s per syllable
    c = _checker(words).check(_take(), "an old extraordinary morning today")
    reasons = [e.reason for e in c.evidence]
    assert reasons == ["", "", "too short", "", "deleted"] and c.deleted == 1
    assert c.evidence[2].relative < ev.MIN_RELATIVE_DURATION < c.evidence[0].relative
    assert [ev.syllables(w) for w in ("extraordinary", "the", "make", "table", "23", "一")] == [5, 1, 1, 2, 3, 1]
    assert ev.align_pairs("a b c d".split(), "a x d".split()) in ([0, 1, None, 2], [0, None, 1, 2])
    assert ev.align_pairs("a b c d".split(), "a b d".split()) == [0, 1, None, 2]


def test_frames_of_a_constant_signal_count_as_speech():
    speech, voiced = ev.frame_measures(_voiced(1.0, 200.0) * 0 + 0.2 * np.sin(
        2 * np.pi * 200 * np.arange(SR) / SR).astype(np.float32), SR)
    assert speech.mean() > 0.9 and voiced.mean() > 0.9
    noise = np.random.default_rng(1).standard_normal(SR).astype(np.float32) * 0.1
    assert ev.frame_measures(noise, SR)[1].mean() < 0.1          # loud but aperiodic: not voiced


def test_a_second_decode_is_asked_only_when_the_first_is_not_green_and_the_better_one_is_kept():
    asked = []

    def second(clip, lang):
        asked.append(lang)
        return checks.Heard("达摩院的模型", lang, ())
    wrong = checks.Checker(lambda clip, lang: checks.Heard("达摩运的模型", lang, ()), None, None, second_opinion=second)
    c = wrong.check(_take(), "达摩院的模型")
    assert asked == ["zh"] and c.decodes == 2 and c.heard == "达摩院的模型" and c.levels["error_rate"] == "green"
    right = checks.Checker(lambda clip, lang: checks.Heard("达摩院的模型", lang, ()), None, None, second_opinion=second)
    assert right.check(_take(), "达摩院的模型").decodes == 1 and asked == ["zh"]
    # a second transcript that is no better does not replace the first
    worse = checks.Checker(lambda clip, lang: checks.Heard("达摩运的模型", lang, ()), None, None,
                           second_opinion=lambda clip, lang: checks.Heard("大", lang, ()))
    assert worse.check(_take(), "达摩院的模型").heard == "达摩运的模型"
    english = checks.Checker(lambda clip, lang: checks.Heard("the cat", lang, ()), None, None, second_opinion=second)
    assert english.check(_take(), "the cat sat").decodes == 1 and asked == ["zh"]     # Mandarin only


@pytest.mark.parametrize("model, judged", [("spectral", False), ("ge2e", True)])
def test_an_embedder_that_cannot_tell_voices_apart_gives_no_voice_level(model, judged):
    from app_ui import views
    c = _checker([checks.Word("hi", 0.1, 0.4)], model=model).check(_take(), "hi", source=_take())
    assert c.speaker_similarity == pytest.approx(1.0) and c.speaker_judged is judged
    assert ("speaker_similarity" in c.levels) is judged
    badges = views.check_badges(c.to_dict())
    assert ("voice not judged (spectral)" in badges) is not judged and ("voice 1.00" in badges) is judged
    assert (checks.NOT_JUDGED in c.summary()) is not judged


def test_ge2e_weights_are_found_in_an_installed_resemblyzer_package_and_sha256_checked(tmp_path, monkeypatch):
    import importlib
    import sys

    from stepedit_core.errors import ModelUnavailableError
    from stepedit_core.listen import models, speaker_embedding
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(speaker_embedding.GE2E_ENV, raising=False)
    monkeypatch.setattr(sys, "path", [str(tmp_path / "site")] + [p for p in sys.path if "site-packages" not in p])
    assert speaker_embedding.ge2e_path() is None                      # no package, no cache file: spectral
    assert speaker_embedding.default_embedder()[1] == "spectral"
    package = tmp_path / "site" / "resemblyzer"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    (package / "pretrained.pt").write_bytes(b"not the GE2E weights")
    importlib.invalidate_caches()                                      # the folder appeared after the first look
    with pytest.raises(ModelUnavailableError, match="sha256"):
        speaker_embedding.ge2e_path()
