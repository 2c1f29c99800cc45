"""Script mode on the lite engine: a 3-speaker, 12-line script rendered once (module fixture), then re-rolled,
subtitled, exported, replayed from its recipe, and rendered from a voice library that went through a zip."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stepedit_core.interface import AudioClip
from stepedit_core.lite import LiteEngine
from stepedit_core.script import (edit_line, export_files, parse_script, recipe_json, render_script,
                                  replay_recipe, reroll_line, select_take, to_srt, to_vtt)
from stepedit_core.script.master import TARGET_DBFS, parse_srt_times, voiced_rms
from stepedit_core.script.render import segment_seed
from stepedit_core.voices import VoiceLibrary

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPT = """# three speakers, twelve lines
Alice: Good morning, everyone.
Bob: {happy} Hello Alice!
Carol: Nice to see you.
Alice: [pause 0.6s] How was the trip?
Bob: It was long. [Laughter]
Carol: {faster x2} Tell us more.
Alice: We took the train.
Bob: {whisper} It was quiet.
[pause 1s]
Carol: Then what happened?
Alice: {sad} We missed the stop.
Bob: Everyone laughed.
Carol: Good story. [pause 0.5s]
"""
SEED = 1234
SILENT_DB = 40.0     # what counts as silence when the test looks for speech in the master


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    lib = VoiceLibrary(tmp_path_factory.mktemp("voices"))
    en, zh = (AudioClip.from_file(str(EXAMPLES / f"prompt_{k}.wav")) for k in ("en", "zh"))
    text = {k: (EXAMPLES / f"prompt_{k}.txt").read_text(encoding="utf-8").strip() for k in ("en", "zh")}
    lib.save("Alice", en, text["en"])
    lib.save("Bob", zh, text["zh"])
    # Carol: the English prompt played 15 % faster (higher pitch, another speaker for the clone)
    lib.save("Carol", AudioClip.from_array(en.samples, int(en.sample_rate * 1.15)), text["en"])
    return lib


@pytest.fixture(scope="module")
def engine():
    return LiteEngine()


@pytest.fixture(scope="module")
def rendered(engine, library):
    script = parse_script(SCRIPT, voices=library.names())
    seen = []
    render = render_script(engine, script, library, seed=SEED, progress=lambda f, d: seen.append((f, d)))
    return render, seen


def test_twelve_lines_three_speakers_with_progress_per_line(rendered):
    render, seen = rendered
    assert len(render.lines) == 12 and len(render.cues) == 12
    assert sorted(render.script.speakers) == ["Alice", "Bob", "Carol"]
    assert [ln.segment.line for ln in render.lines][:3] == [2, 3, 4]
    # one take per clone plus one per directive; directive takes are children of the clone
    carol = render.lines[5]
    assert [(t.op, t.option, t.iterations) for t in carol.takes] == [("clone", None, 1), ("speed", "faster", 2)]
    assert carol.takes[1].parent == carol.takes[0].id and carol.current == carol.takes[1].id
    for k in range(12):
        assert any(d.startswith(f"line {k + 1}/12") for _, d in seen), k
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert render.duration > 12 * 0.5


def test_pauses_and_loudness_in_the_master(rendered):
    render, _ = rendered
    cues = render.cues
    assert cues[0].start == 0.0
    assert cues[3].start - cues[2].end == pytest.approx(0.6, abs=1e-4)          # [pause 0.6s] at line start
    assert cues[8].start - cues[7].end == pytest.approx(1.0, abs=1e-4)          # a line that is a pause
    assert cues[1].start - cues[0].end == pytest.approx(0.35, abs=1e-4)         # the default gap
    assert render.duration - cues[-1].end == pytest.approx(0.5, abs=1e-4)       # trailing pause
    sr = render.sample_rate
    levels = [20 * np.log10(voiced_rms(render.master[int(c.start * sr):int(c.end * sr)], sr)) for c in cues]
    assert max(levels) - min(levels) < 1.5 and abs(np.median(levels) - TARGET_DBFS) < 1.5, levels


def speech_bounds(window: np.ndarray, sr: int) -> tuple[float, float]:
    """First and last sample louder than SILENT_DB below the window's peak, in seconds from its start."""
    loud = np.flatnonzero(np.abs(window) > np.max(np.abs(window)) * 10 ** (-SILENT_DB / 20))
    return loud[0] / sr, (loud[-1] + 1) / sr


def test_subtitles_match_the_master_within_10_ms(rendered):
    render, _ = rendered
    sr, cues = render.sample_rate, render.cues
    srt_times = parse_srt_times(to_srt(cues))
    vtt = to_vtt(cues)
    assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == 12 and "<v Alice>Good morning, everyone." in vtt
    assert len(srt_times) == 12
    bounds = [0.0] + [(a.end + b.start) / 2 for a, b in zip(cues, cues[1:])] + [render.duration]
    for k, (start, end) in enumerate(srt_times):
        lo, hi = int(bounds[k] * sr), int(bounds[k + 1] * sr)      # from mid-gap to mid-gap around line k
        onset, offset = speech_bounds(render.master[lo:hi], sr)
        assert abs(lo / sr + onset - start) <= 0.010, (k, lo / sr + onset, start)
        assert abs(lo / sr + offset - end) <= 0.010, (k, lo / sr + offset, end)


def test_rerolling_or_editing_one_line_leaves_every_other_line_bit_identical(engine, library, rendered):
    render, _ = rendered
    again = reroll_line(engine, render, 6, library, seed=99)
    line = again.lines[6]
    assert [(t.op, t.parent, t.seed) for t in line.takes] == [("clone", None, segment_seed(SEED, 6)),
                                                               ("clone", None, 99)]
    again = edit_line(engine, again, 6, "speed", "more slower")            # a visible change on the new root
    line = again.lines[6]
    assert line.current == "L7.T3" and line.take("L7.T3").parent == "L7.T2"
    assert len(line.audio) > 1.3 * len(render.lines[6].audio)
    assert again.cues[6].end - again.cues[6].start > render.cues[6].end - render.cues[6].start + 0.2
    sr = render.sample_rate
    for k in range(12):
        if k == 6:
            continue
        assert again.lines[k].audio.tobytes() == render.lines[k].audio.tobytes(), k
        old = render.master[int(round(render.cues[k].start * sr)):int(round(render.cues[k].end * sr))]
        new = again.master[int(round(again.cues[k].start * sr)):int(round(again.cues[k].end * sr))]
        assert old.tobytes() == new.tobytes(), k
    back = select_take(again, 6, "L7.T1")                 # branching back to the first take restores the master
    assert back.master.tobytes() == render.master.tobytes()


def test_recipe_replay_reproduces_the_master_bit_identically(engine, library, rendered, tmp_path):
    render, _ = rendered
    paths = export_files(render, library, tmp_path)
    wav, sr = sf.read(paths["wav"], dtype="float32")
    assert sr == render.sample_rate and len(wav) == len(render.master)
    assert np.max(np.abs(wav - render.master)) < 1 / 32767 + 1e-6              # 16-bit export of the master
    replayed, report = replay_recipe(engine, Path(paths["recipe"]).read_text(encoding="utf-8"))
    assert report.master_matches and report.takes == report.takes_matching == 16, report
    assert replayed.master.tobytes() == render.master.tobytes()
    assert [c.start for c in replayed.cues] == [c.start for c in render.cues]


def test_voice_library_survives_export_import(engine, library, rendered, tmp_path):
    render, _ = rendered
    other = VoiceLibrary(tmp_path / "imported")
    imported = other.import_zip(library.export_zip())
    assert [v.name for v in imported] == ["Alice", "Bob", "Carol"]
    for name in other.names():
        a, b = library.get(name), other.get(name)
        assert a.text == b.text and a.clip().samples.tobytes() == b.clip().samples.tobytes()
    # the imported voices render line 1 exactly as the originals did
    again = reroll_line(engine, render, 0, other, seed=segment_seed(SEED, 0))
    assert again.lines[0].audio.tobytes() == render.lines[0].audio.tobytes()
    a, b = (json.loads(recipe_json(render, lib)) for lib in (library, other))
    assert {k: v["text"] for k, v in a["voices"].items()} == {k: v["text"] for k, v in b["voices"].items()}
    assert (a["lines"], a["expected"]) == (b["lines"], b["expected"])
