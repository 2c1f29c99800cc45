"""Word edits (words.py): the diff and its refusals, the splice on the fake engine, real speech on the lite engine."""
from __future__ import annotations

import numpy as np
import pytest

from stepedit_core import checks, regions, words
from stepedit_core.errors import InvalidInputError, UnsupportedEditError
from stepedit_core.interface import AudioClip, CloneRequest
from stepedit_core.words import WordEditTooLarge
from tests.audio_clips import EN_TEXT, SAMPLE_RATE, en_speech  # noqa: F401 (fixture)
from tests.fake_engine import SR, FakeEngine

TEXT = "Good morning everyone we meet on Tuesday at noon"


def test_diff_finds_one_span_of_each_kind():
    c = words.diff(TEXT, TEXT.replace("Tuesday", "Thursday"))
    assert (c.kind, c.first, c.last, c.describe()) == ("replace", 6, 7, "'Tuesday' -> 'Thursday'")
    c = words.diff(TEXT, TEXT.replace("on Tuesday ", ""))
    assert (c.kind, c.first, c.last, c.new_first, c.new_last) == ("delete", 5, 7, 5, 5)
    c = words.diff(TEXT, TEXT.replace("meet", "meet again"))
    assert (c.kind, c.first, c.last) == ("insert", 5, 5) and c.new_span(TEXT.replace("meet", "meet again")) == "again"
    c = words.diff("我们周二见面", "我们周四见面")
    assert (c.kind, c.first, c.last) == ("replace", 3, 4)
    # punctuation and case alone are not a change
    with pytest.raises(InvalidInputError, match="did not change"):
        words.diff(TEXT, TEXT.lower() + ".")


def test_refusals_name_the_limit():
    with pytest.raises(WordEditTooLarge, match=r"at most 8 words.*use clone instead"):
        words.diff(TEXT + " and then we go home for a long dinner", "Completely different words here now please")
    with pytest.raises(WordEditTooLarge, match="50%"):
        words.diff("one two three four", "one five six seven")
    with pytest.raises(InvalidInputError, match="paralinguistic"):
        words.diff(TEXT, TEXT + " [laugh]")
    with pytest.raises(InvalidInputError, match="no words"):
        words.diff(TEXT, " ... ")


@pytest.fixture()
def fake_take():
    engine = FakeEngine()
    prompt = AudioClip.from_array((0.3 * np.sin(np.arange(SR) / 5)).astype(np.float32), SR)
    take = engine.clone(CloneRequest(prompt, "a prompt", TEXT, seed=7))
    return engine, take


@pytest.mark.parametrize("new", [TEXT.replace("Tuesday", "Thursday"), TEXT.replace("on Tuesday ", ""),
                                 TEXT.replace("meet", "meet again"), "Hello " + TEXT, TEXT + " sharp"])
def test_fake_engine_edit_keeps_every_sample_outside_the_window(fake_take, new):
    engine, take = fake_take
    x = take.audio.samples
    out = words.word_edit(engine, take.audio, take.text, new, seed=4)
    y, info = out.audio.samples, out.metadata["word_edit"]
    head, tail = info["identical_head"], info["identical_tail"]
    assert out.text == new and out.edit_type == words.WORDS and out.edit_info == words.diff(TEXT, new).kind
    assert np.array_equal(y[:head], x[:head]) and np.array_equal(y[len(y) - tail:], x[len(x) - tail:])
    start, end = info["window_samples"]
    fade = int(regions.FADE_S * SR)
    assert head == max(0, start - fade) and tail == len(x) - min(len(x), end + fade)
    assert head + tail < len(x)
    if info["kind"] == "delete":          # a natural pause, not the words and not nothing
        pause = (len(y) - head - tail) - 2 * fade
        assert words.MIN_PAUSE_S * SR - 2 <= pause <= words.MAX_PAUSE_S * SR + 2
        assert len(y) < len(x)
    else:                                 # the new words were cloned from the take itself, with context
        assert engine.calls[-1] == "clone" and len(y) != len(x)
    assert words.verify(take.audio, out, TEXT, checks.checker_for(engine))["outside_identical"]


def test_an_engine_that_cannot_clone_still_deletes(fake_take):
    engine, take = fake_take
    engine.unsupported = ("clone",)
    with pytest.raises(UnsupportedEditError, match="cannot speak new words"):
        words.word_edit(engine, take.audio, take.text, TEXT.replace("noon", "night"), seed=4)
    assert words.word_edit(engine, take.audio, take.text, TEXT.replace(" at noon", ""), seed=4).text == \
        TEXT.replace(" at noon", "")


@pytest.mark.parametrize("old,new", [("brown", "black"), ("went", "walked"), ("fresh ", "")])
def test_lite_engine_edits_real_speech(en_speech, old, new):
    """Kokoro speech, the lite engine and its whisper: the check hears the new words in place, nothing else
    changed, and the speaker stays the same."""
    from stepedit_core.lite import LiteEngine
    engine = LiteEngine()
    checker = checks.checker_for(engine)
    clip = AudioClip.from_array(en_speech, SAMPLE_RATE)
    out = words.word_edit(engine, clip, EN_TEXT, EN_TEXT.replace(old, new), checker=checker, seed=3)
    report = words.verify(clip, out, EN_TEXT, checker)
    assert report["outside_identical"] and report["span_error_rate"] == 0.0, report
    assert checker.similarity(out.audio, clip) >= checks.SPECTRAL_SIM_AMBER


def test_http_and_cli_doors(fake_take, tmp_path, capsys):
    import io
    import json

    import soundfile as sf
    from fastapi.testclient import TestClient

    from stepedit_core import cli
    from stepedit_core.server import TAKE_HEADER, create_server
    from stepedit_core.voices import VoiceLibrary
    engine, take = fake_take
    src = tmp_path / "take.wav"
    sf.write(src, take.audio.samples, SR, subtype="FLOAT")
    client = TestClient(create_server(engine, VoiceLibrary(tmp_path / "voices")), raise_server_exceptions=False)
    new = TEXT.replace("Tuesday", "Thursday")
    form = {"edit_type": "words", "text": TEXT, "new_text": new, "seed": "4", "check": "true"}
    r = client.post("/v1/audio/edits", files={"file": ("t.wav", src.read_bytes(), "audio/wav")}, data=form)
    assert r.status_code == 200, r.text
    info = json.loads(r.headers[TAKE_HEADER])
    assert info["text"] == new and info["word_edit"]["kind"] == "replace"
    assert info["word_edit"]["check"]["outside_identical"] is True
    assert len(sf.read(io.BytesIO(r.content))[0]) > 0
    r = client.post("/v1/audio/edits", files={"file": ("t.wav", src.read_bytes(), "audio/wav")},
                    data={**form, "new_text": TEXT})
    assert r.status_code == 400 and r.json()["error"]["param"] == "new_text"
    assert "did not change" in r.json()["error"]["message"]
    out = tmp_path / "out.wav"
    code = cli.main(["edit", str(src), "--type", "words", "--text", TEXT, "--new-text", new, "--seed", "4",
                     "--check", "-o", str(out), "--json", "-q"], engine=engine)
    record = json.loads(capsys.readouterr().out)
    assert code == cli.EXIT_OK and out.exists() and record["word_edit"]["check"]["outside_identical"]
    code = cli.main(["edit", str(src), "--type", "words", "--text", TEXT, "--new-text", "A whole other sentence "
                     "that shares nothing at all with it", "-o", str(out)], engine=engine)
    assert code == cli.EXIT_USAGE and "use clone instead" in capsys.readouterr().err


def test_the_edit_tab_word_edit_is_a_replayable_take(tmp_path):
    """studio.edit with edit_type "words" (the edit tab's word box): a new take of the session whose recipe
    replays to the same audio."""
    import json
    from pathlib import Path

    import soundfile as sf

    from app_ui.history import TakeTree
    from app_ui.runner import EngineRunner
    from app_ui.studio import Studio
    prompt = tmp_path / "p.wav"
    sf.write(prompt, (0.3 * np.sin(np.arange(SR) / 5)).astype(np.float32), SR)
    studio = Studio(EngineRunner(FakeEngine(), zero_gpu=False), tmp_path / "root", check=False)
    tree = studio.ensure_workdir(TakeTree(), "w")
    tree, _ = studio.clone(tree, str(prompt), "a prompt", TEXT, [4])
    new = TEXT.replace("Tuesday", "Thursday")
    tree, ids = studio.edit(tree, "T1", words.WORDS, None, new, 1, 5)
    take = tree.get(ids[0])
    assert (take.op, take.option, take.text, take.parent) == ("words", "replace", new, "T1")
    recipe = Path(studio.export_recipe(tree))
    fresh = studio.ensure_workdir(TakeTree(), "w2")
    fresh, new_ids, report = studio.replay(fresh, str(recipe))
    assert fresh.get(new_ids[-1]).sha256 == take.sha256, report
    assert json.loads(recipe.read_text())["actions"][-1]["params"]["edit_type"] == "words"


def test_units_the_asr_misheard_get_the_time_of_the_words_it_heard_instead():
    """"park instead" heard as "parking state": each unit gets the word heard in its place (two for three: the
    span shared by letters), instead of collapsing onto a point between the neighbours (which left "park" in
    place and put the new word before it)."""
    heard = (checks.Word("in", 7.0, 7.1), checks.Word("the", 7.1, 7.2), checks.Word("parking", 7.2, 7.6),
             checks.Word("state.", 7.6, 8.3))
    t = words.unit_times(words.units("in the park instead."), heard, 9.0)
    assert t[2].tolist() == pytest.approx([7.2, 7.6]) and t[3].tolist() == pytest.approx([7.6, 8.3])
    t = words.unit_times(words.units("in the park instead."), heard[:2] + (checks.Word("parkinstate", 7.2, 8.3),),
                         9.0)
    assert t[2].tolist() == pytest.approx([7.2, 7.2 + 1.1 * 4 / 11]) and t[3, 1] == pytest.approx(8.3)


def test_verify_hears_the_new_words_by_sound(fake_take):
    """A take edited to say "ten" that the ASR writes "10" has its new word; so has 大 written with a homophone."""
    engine, take = fake_take
    new = TEXT.replace("noon", "ten")
    out = words.word_edit(engine, take.audio, TEXT, new, seed=4)
    said = checks.Checker(lambda clip, lang: checks.Heard(new.replace("ten", "10"), lang, ()), None, None)
    assert words.verify(take.audio, out, TEXT, said)["span_error_rate"] == 0.0
    wrong = checks.Checker(lambda clip, lang: checks.Heard(new.replace("ten", "11"), lang, ()), None, None)
    assert words.verify(take.audio, out, TEXT, wrong)["span_error_rate"] == 1.0
    zh, zh_new = "我们在小会议室开会", "我们在大会议室开会"
    clip = engine.clone(CloneRequest(take.audio, TEXT, zh, seed=2))
    out = words.word_edit(engine, clip.audio, zh, zh_new, seed=4)
    homophone = checks.Checker(lambda c, lang: checks.Heard("我们再大会意室开会", lang, ()), None, None)
    assert words.verify(clip.audio, out, zh, homophone)["span_error_rate"] == 0.0
    other = checks.Checker(lambda c, lang: checks.Heard("我们在到会议室开会", lang, ()), None, None)
    assert words.verify(clip.audio, out, zh, other)["span_error_rate"] == 1.0
