"""Core streaming API (``Engine.stream_clone`` / ``stream_edit``): the default for any engine, the lite engine's
incremental synthesis, and cancellation through ``should_stop`` and ``close()``."""
from __future__ import annotations

import numpy as np
import pytest

from stepedit_core import catalog
from stepedit_core.errors import InvalidInputError
from stepedit_core.interface import STREAM_CHUNK_S, AudioClip, CloneRequest, EditRequest, chunk_audio
from stepedit_core.lite import LiteEngine
from stepedit_core.lite import streaming as lite_streaming
from stepedit_core.longform import STREAM_TAIL_S, speaking_seconds, split_for_streaming
from tests.audio_clips import EN_TEXT, SAMPLE_RATE, en_speech, with_pauses  # noqa: F401 (fixtures)
from tests.fake_engine import SR, FakeEngine

PROMPT = AudioClip.from_array((0.3 * np.sin(2 * np.pi * 150 * np.arange(SR) / SR)).astype(np.float32), SR)


def test_chunk_audio_partitions_the_samples():
    x = np.arange(int(2.3 * SR), dtype=np.float32)
    chunks = list(chunk_audio(x, SR))
    assert [len(c) for c in chunks[:-1]] == [int(STREAM_CHUNK_S * SR)] * (len(chunks) - 1)
    assert np.array_equal(np.concatenate(chunks), x)
    assert len(list(chunk_audio(x, SR, should_stop=lambda: True))) == 0


def test_default_stream_is_the_take_in_pieces():
    engine = FakeEngine()
    request = CloneRequest(PROMPT, "a prompt", "hello streaming world", seed=3)
    chunks = list(engine.stream_clone(request))
    assert len(chunks) >= 2
    assert np.array_equal(np.concatenate(chunks), engine.clone(request).audio.samples)
    edit = EditRequest(engine.clone(request).audio, "hello", "speed", "slower", seed=4)
    assert np.array_equal(np.concatenate(list(engine.stream_edit(edit))), engine.edit(edit)[0].audio.samples)


def test_stream_validation_and_stop():
    engine = FakeEngine()
    with pytest.raises(InvalidInputError, match="one round"):
        next(engine.stream_edit(EditRequest(PROMPT, "x", "speed", "slower", n_iterations=2)))
    with pytest.raises(InvalidInputError, match="target text"):
        next(engine.stream_clone(CloneRequest(PROMPT, "a prompt", "  ")))
    got: list = []
    for c in engine.stream_clone(CloneRequest(PROMPT, "p", "a long enough target text", seed=1),
                                 should_stop=lambda: len(got) >= 1):
        got.append(c)
    assert len(got) == 1


def _check_schedule(phrases, first_s, later_s, growth):
    spoken = 0.0
    for p in phrases:
        budget = min(later_s, max(first_s, growth * spoken))
        assert speaking_seconds(p) <= budget + STREAM_TAIL_S, (p, budget)
        spoken += speaking_seconds(p)


def test_streaming_phrases_grow_with_the_audio_already_streamed():
    text = "Good morning everyone, this is a test of streaming. It has two sentences, and a third clause here."
    en = split_for_streaming(text, 1.0, 8.0, 1.2)
    assert " ".join(en) == text
    assert speaking_seconds(en[0]) <= 1.0 and len(en) >= 4
    _check_schedule(en, 1.0, 8.0, 1.2)
    assert en[-1].endswith("here.") and any(p.endswith(",") for p in en)      # clause marks are preferred cuts
    # a larger growth gives fewer, longer phrases; a cap bounds them
    assert len(split_for_streaming(text, 1.0, 8.0, 4.0)) < len(en)
    assert all(speaking_seconds(p) <= 2.0 + STREAM_TAIL_S for p in split_for_streaming(text, 1.0, 2.0, 4.0))


def test_streaming_phrases_keep_chinese_words_whole():
    text = "现在编辑语音就像编辑文字一样简单。你输入想听的内容，声音就会跟着变化。"
    by_char = split_for_streaming(text, 1.0, 8.0, 1.2)
    by_word = split_for_streaming(text, 1.0, 8.0, 1.2, lite_streaming.words)
    for phrases in (by_char, by_word):
        assert "".join(phrases) == text
        _check_schedule(phrases, 1.0, 8.0, 1.2)
    joins = {p[-1] + q[0] for p, q in zip(by_word, by_word[1:])}
    assert not joins & {"编辑", "语音", "文字", "简单", "内容", "声音", "变化"}
    assert lite_streaming.words("你好，世界。Hello, world!") == ["你好，", "世界。", "Hello,", "world!"]


@pytest.fixture(scope="module")
def lite():
    return LiteEngine()


def test_lite_clone_streams_phrase_by_phrase_and_stops(lite, en_speech):
    prompt = AudioClip.from_array(en_speech[: 4 * SAMPLE_RATE], SAMPLE_RATE)
    request = CloneRequest(prompt, "the quick brown fox", "Hello there, my friend. [Laughter] Bye.", seed=1)
    chunks = list(lite.stream_clone(request))
    assert len(chunks) == 4                               # "Hello there," / "my friend." / laughter / "Bye."
    audio = np.concatenate(chunks)
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() <= 1.0
    calls: list[str] = []
    synthesize = lite._tts.synthesize
    lite._tts.synthesize = lambda text, **kw: calls.append(text) or synthesize(text, **kw)
    try:
        it = lite.stream_clone(request)
        first = next(it)
        it.close()                                        # the caller cancels: no more synthesis
    finally:
        lite._tts.synthesize = synthesize
    assert np.array_equal(first, chunks[0]) and calls == ["Hello there,"]


def test_lite_edit_streams_pieces_cut_at_pauses(lite, en_speech):
    x = with_pauses(en_speech, pause_s=0.6)
    spans = lite_streaming.edit_pieces(x, SAMPLE_RATE)
    assert spans[0].start == 0 and spans[-1].end == len(x)
    assert all(a.end == b.start for a, b in zip(spans, spans[1:]))
    assert spans[0].length <= lite_streaming.FIRST_EDIT_S * SAMPLE_RATE
    request = EditRequest(AudioClip.from_array(x, SAMPLE_RATE), EN_TEXT, catalog.SPEED, "slower", seed=1)
    chunks = list(lite.stream_edit(request))
    assert len(chunks) == len(spans) >= 3
    assert abs(sum(map(len, chunks)) / len(x) - 1 / 0.83) < 0.02     # "slower": speed x0.83 (SPEED_RATIOS)
    whole = EditRequest(AudioClip.from_array(x, SAMPLE_RATE), EN_TEXT, catalog.VAD, seed=1)
    assert np.array_equal(np.concatenate(list(lite.stream_edit(whole))), lite.edit(whole)[0].audio.samples)
