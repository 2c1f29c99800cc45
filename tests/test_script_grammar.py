"""Script grammar and master assembly without a model: parsing, every error naming its line and column,
sentence splitting of long text, pauses, subtitles, and the take-tree operations on the fake engine."""
from __future__ import annotations

import numpy as np
import pytest

from stepedit_core.errors import InvalidInputError
from stepedit_core.interface import MAX_TEXT_CHARS, AudioClip
from stepedit_core.script import (DEFAULT_GAP_S, Directive, ScriptError, edit_line, load_recipe, parse_script,
                                  recipe_json, render_script, replay_recipe, reroll_line, select_take, to_srt,
                                  to_vtt)
from stepedit_core.script.master import Cue, parse_srt_times
from stepedit_core.voices import VoiceLibrary
from tests.fake_engine import FakeEngine

VOICES = ["Alice", "Bob", "Narrator"]


def test_lines_tags_directives_and_pauses():
    script = parse_script("""# a comment
Alice: {happy} Hello Bob! [laughter] It has been a while.

Bob：{whisper}{slower x2} Shh... [pause 0.8s] they are listening. [pause 1s]
[pause 500ms]
narrator: [Cantonese] 今日天气好好。
and the narrator goes on.
""", voices=VOICES)
    segs = script.segments
    assert [(s.line, s.speaker) for s in segs] == [(2, "Alice"), (4, "Bob"), (4, "Bob"), (6, "Narrator"),
                                                   (7, "Narrator")]
    assert segs[0].text == "Hello Bob! [Laughter] It has been a while."          # tag names are canonical
    assert segs[0].directives == (Directive("emotion", "happy"),)
    assert segs[1].directives == (Directive("style", "whisper"), Directive("speed", "slower", 2))
    assert [s.text for s in segs[1:3]] == ["Shh...", "they are listening."]
    assert [s.pause_before for s in segs] == [None, None, 0.8, 1.5, None]       # 1 s tail + 0.5 s line
    assert segs[3].text == "[Cantonese]今日天气好好。"
    assert script.speakers == ["Alice", "Bob", "Narrator"] and script.trailing_pause == 0.0


def test_qualified_and_repeated_directives():
    segs = parse_script("A: {emotion: remove}{style:remove}{more faster x3}{denoise}{vad} hi").segments
    assert segs[0].directives == (Directive("emotion", "remove"), Directive("style", "remove"),
                                  Directive("speed", "more faster", 3), Directive("denoise"), Directive("vad"))


@pytest.mark.parametrize("text, line, column, words", [
    ("Alice: hi\nCarol: hello", 2, 1, "unknown voice 'Carol'"),
    ("Alice: hi\nBob: {happyy} hi", 2, 6, "unknown directive {happyy}"),
    ("Alice: hi\n\nBob: {style: loud} hi", 3, 6, "unknown style 'loud'"),
    ("Alice: {remove} hi", 1, 8, "ambiguous"),
    ("Alice: {faster x9} hi", 1, 8, "x1 to x5"),
    ("Alice: hi [Laughter", 1, 11, "never closed"),
    ("Alice: {happy hi", 1, 8, "never closed"),
    ("Alice: hi [Sigh [Uhm]]", 1, 11, "never closed"),
    ("Alice: hi } there", 1, 11, "closes nothing"),
    ("Alice: hi ]", 1, 11, "closes nothing"),
    ("Alice: hi [Yawn]", 1, 11, "unknown tag [Yawn]"),
    ("Alice: hi [pause 2 minutes]", 1, 11, "not a pause"),
    ("Alice: hi [pause 99s]", 1, 11, "longer than 30 s"),
    ("Alice: hi\nBob:  {happy} ", 2, 14, "empty line of text"),
    ("Alice: hi\nBob: [pause 1s]", 2, 16, "empty line of text"),
    ("Hello there", 1, 1, "no speaker"),
    ("Alice: hi [Cantonese] there", 1, 11, "at the start"),
])
def test_errors_name_the_line_and_column(text, line, column, words):
    with pytest.raises(ScriptError) as info:
        parse_script(text, voices=VOICES)
    assert (info.value.line, info.value.column) == (line, column)
    assert str(info.value).startswith(f"Script line {line}, column {column}: ") and words in str(info.value)
    assert isinstance(info.value, InvalidInputError)


def test_script_level_errors():
    for bad in ("", "   \n# only a comment\n", "[pause 1s]"):
        with pytest.raises(InvalidInputError):
            parse_script(bad)
    with pytest.raises(InvalidInputError, match="characters; the limit"):
        parse_script("A: " + "x " * 150_000)


def test_long_text_is_split_into_sentences_without_a_script_limit():
    chapter = " ".join(f"This is sentence number {i} of a rather long chapter." for i in range(120))
    assert len(chapter) > 5 * MAX_TEXT_CHARS
    script = parse_script(chapter, default_voice="Narrator")
    segs = script.segments
    assert len(segs) > 5 and all(len(s.text) <= MAX_TEXT_CHARS and s.speaker == "Narrator" for s in segs)
    assert " ".join(s.text for s in segs) == chapter                               # nothing lost or reordered
    assert all(s.text.endswith(".") for s in segs) and all(s.pause_before is None for s in segs)


def _library(tmp_path) -> VoiceLibrary:
    lib = VoiceLibrary(tmp_path / "voices")
    t = np.arange(16000) / 16000
    for name, f in (("Alice", 220.0), ("Bob", 120.0)):
        lib.save(name, AudioClip.from_array((0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), 16000), "a b c")
    return lib


def test_fake_engine_render_reroll_edit_select_and_replay(tmp_path):
    lib, engine = _library(tmp_path), FakeEngine()
    script = parse_script("Alice: one two\nBob: {sad} three four [pause 0.25s] five\nAlice: six", voices=lib.names())
    finished = []
    render = render_script(engine, script, lib, seed=7, on_line=finished.append)
    assert [ln.index for ln in finished] == [0, 1, 2, 3]
    assert render.cues[2].start - render.cues[1].end == pytest.approx(0.25, abs=1e-4)
    assert render.cues[1].start - render.cues[0].end == pytest.approx(DEFAULT_GAP_S, abs=1e-4)
    rolled = reroll_line(engine, render, 1, lib, seed=5)
    assert not np.array_equal(rolled.lines[1].audio, render.lines[1].audio)        # the fake engine is seeded
    assert [t.op for t in rolled.lines[1].takes] == ["clone", "emotion", "clone", "emotion"]
    for k in (0, 2, 3):
        assert rolled.lines[k].audio.tobytes() == render.lines[k].audio.tobytes()
    edited = edit_line(engine, rolled, 1, "speed", "faster", base="L2.T2")         # a branch off the first chain
    assert edited.lines[1].take(edited.lines[1].current).parent == "L2.T2"
    with pytest.raises(InvalidInputError, match="no take"):
        select_take(edited, 1, "L2.T9")
    with pytest.raises(InvalidInputError, match="not in this script"):
        reroll_line(engine, edited, 4, lib)
    replayed, report = replay_recipe(engine, recipe_json(edited, lib))
    assert report.master_matches and report.takes == report.takes_matching == 9
    assert replayed.master.tobytes() == edited.master.tobytes()
    assert [t.id for t in replayed.lines[1].takes] == [t.id for t in edited.lines[1].takes]


def test_unknown_voice_at_render_time_fails_before_any_work(tmp_path):
    lib, engine = _library(tmp_path), FakeEngine()
    with pytest.raises(InvalidInputError, match="No voice named 'Zed'"):
        render_script(engine, parse_script("Alice: hi\nZed: hello"), lib, seed=1)
    assert engine.calls == []
    limited = FakeEngine(unsupported=("vad",))
    with pytest.raises(InvalidInputError, match=r"Script line 2: Fake engine \(tests\) does not support the \{vad\}"):
        render_script(limited, parse_script("Alice: hi\nBob: {vad} hello"), lib, seed=1)
    assert limited.calls == []


def test_bad_recipes_get_a_message():
    for bad, words in (("{", "not valid JSON"), ('{"format": "x"}', "Not a script recipe"),
                       ('{"format": "stepedit-script-recipe", "version": 9}', "version 9"),
                       ('{"format": "stepedit-script-recipe", "version": 1, "script": "A: hi"}', "'seed'")):
        with pytest.raises(InvalidInputError, match=words):
            load_recipe(bad)


def test_srt_and_vtt_format():
    cues = [Cue(0, 1, "Alice", "Hello <there> & you", 0.0, 1.2345), Cue(1, 2, "Bob", "Hi", 3661.5, 3662.0)]
    srt = to_srt(cues)
    assert srt.splitlines()[:3] == ["1", "00:00:00,000 --> 00:00:01,234", "Alice: Hello <there> & you"]
    assert "01:01:01,500 --> 01:01:02,000" in srt
    assert parse_srt_times(srt) == [(0.0, 1.234), (3661.5, 3662.0)]
    vtt = to_vtt(cues)
    assert vtt.startswith("WEBVTT\n") and "<v Alice>Hello &lt;there> &amp; you" in vtt
    assert "01:01:01.500 --> 01:01:02.000" in vtt
