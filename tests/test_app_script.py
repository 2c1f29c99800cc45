"""The ④ Script tab's session handlers (app_ui.script_tab.ScriptService) on a lite-engine app: the render
streams one table update per line, then re-roll / edit / use-take / replay / exports, the voice-library panel,
and the per-session library on a Space (SPACE_ID set)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf

from app_ui.runner import EngineRunner
from app_ui.script_tab import PENDING, TABLE_HEADERS, ScriptService
from app_ui.studio import Studio
from stepedit_core.errors import StepEditError
from stepedit_core.interface import AudioClip
from stepedit_core.lite import LiteEngine
from stepedit_core.script import ScriptRender
from stepedit_core.script.master import parse_srt_times
from stepedit_core.voices import DATA_DIR_ENV

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPT = "Ann: Hello there.\nBen: {happy} Hi Ann.\nAnn: [pause 0.4s] Bye now."
SEED = 21
COLUMNS = {name: i for i, name in enumerate(TABLE_HEADERS)}


def _prompt(lang: str) -> tuple[str, str]:
    return str(EXAMPLES / f"prompt_{lang}.wav"), (EXAMPLES / f"prompt_{lang}.txt").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="module")
def engine():
    return LiteEngine()


@pytest.fixture()
def svc(engine, tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))        # the local library, never the user's
    monkeypatch.delenv("SPACE_ID", raising=False)
    return ScriptService(Studio(EngineRunner(engine, zero_gpu=False), tmp_path / "app", check=False))


def _save_voices(svc: ScriptService, session: str | None = None) -> None:
    for name, lang in (("Ann", "en"), ("Ben", "zh")):
        svc.voice_save(name, *_prompt(lang), session)


@pytest.fixture(scope="module")
def rendered(engine, tmp_path_factory):
    """The updates of one render of SCRIPT (shared: a lite render takes seconds)."""
    tmp = tmp_path_factory.mktemp("script_app")
    mp = pytest.MonkeyPatch()
    mp.setenv(DATA_DIR_ENV, str(tmp / "data"))
    mp.delenv("SPACE_ID", raising=False)
    service = ScriptService(Studio(EngineRunner(engine, zero_gpu=False), tmp / "app", check=False))
    _save_voices(service)
    seen = []
    updates = list(service.render(SCRIPT, None, SEED, "s1", lambda f, desc=None: seen.append((f, desc))))
    yield service, updates, seen
    mp.undo()


def test_render_streams_one_table_update_per_line(rendered):
    _, updates, seen = rendered
    assert len(updates) == 1 + 3 + 1                      # all lines queued, each finished line, the result
    for k, (state, master, files, table, report) in enumerate(updates[:-1]):
        assert state == master == files == gr.update()        # the session's render is untouched meanwhile
        assert [row[COLUMNS["#"]] for row in table] == [1, 2, 3]
        takes = [row[COLUMNS["take"]] for row in table]
        assert takes == [f"L{i + 1}.T{1 if i == 0 else 2 if i == 1 else 1}" for i in range(k)] + [PENDING] * (3 - k)
        assert report == ("Rendering 3 lines…" if k == 0 else f"Rendered line {k} of 3.")
    assert [row[COLUMNS["speaker"]] for row in updates[0][3]] == ["Ann", "Ben", "Ann"]
    render, master, files, table, report = updates[-1]
    assert isinstance(render, ScriptRender) and len(render.lines) == 3 and render.seed == SEED
    assert Path(master).is_file() and [Path(f).suffix for f in files] == [".wav", ".srt", ".vtt", ".json"]
    assert [row[COLUMNS["take"]] for row in table] == ["L1.T1", "L2.T2", "L3.T1"]
    assert report.startswith("3 lines") and f"seed {SEED}" in report
    for k in range(3):                                       # gr.Progress saw every line
        assert any(d and d.startswith(f"line {k + 1}/3") for _, d in seen), k


def test_exports_match_the_table_and_the_master(rendered):
    _, updates, _ = rendered
    render, master, files, table, _ = updates[-1]
    wav, sr = sf.read(master, dtype="float32")
    assert sr == render.sample_rate and len(wav) == len(render.master)
    times = parse_srt_times(Path(files[1]).read_text(encoding="utf-8"))
    assert [(row[COLUMNS["start (s)"]], row[COLUMNS["end (s)"]]) for row in table] == \
        [(pytest.approx(a, abs=0.001), pytest.approx(b, abs=0.001)) for a, b in times]
    assert times[2][0] - times[1][1] == pytest.approx(0.4, abs=0.002)
    vtt = Path(files[2]).read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == 3 and "<v Ben>Hi Ann." in vtt
    recipe = json.loads(Path(files[3]).read_text(encoding="utf-8"))
    assert recipe["seed"] == SEED and sorted(recipe["voices"]) == ["Ann", "Ben"] and len(recipe["lines"]) == 3


def test_reroll_edit_use_take_and_replay(rendered):
    svc, updates, _ = rendered
    render = updates[-1][0]
    rolled, master, _, table, report = svc.reroll(render, 3, "s1")
    assert report.endswith("Line 3 re-rolled; the other lines are unchanged.") and Path(master).is_file()
    assert table[2][COLUMNS["take"]] == "L3.T2" and table[2][COLUMNS["takes"]] == 2
    for k in (0, 1):
        assert rolled.lines[k].audio.tobytes() == render.lines[k].audio.tobytes()
    edited, _, _, table, report = svc.edit(rolled, 1, "emotion", "sad", 2, "s1")
    assert table[0][COLUMNS["take"]] == "L1.T2" and "Line 1 edited (emotion sad)" in report
    assert edited.lines[0].take("L1.T2").parent == "L1.T1" and edited.lines[0].take("L1.T2").iterations == 2
    back, *_ = svc.use_take(edited, 3, "L3.T1", "s1")
    back, *_ = svc.use_take(back, 1, " L1.T1 ", "s1")
    assert back.master.tobytes() == render.master.tobytes()          # branching back restores the master
    replayed, _, _, _, report = svc.replay(updates[-1][2][3], "s1")
    assert "master bit-identical" in report and replayed.master.tobytes() == render.master.tobytes()


def test_bad_requests_name_the_problem(rendered):
    service, updates, _ = rendered
    render = updates[-1][0]
    with pytest.raises(gr.Error, match="Render a script first"):
        service.reroll(None, 1, "s1")
    with pytest.raises(gr.Error, match=r"Pick a line between 1 and 3 \(got 4\)"):
        service.edit(render, 4, "emotion", "happy", 1, "s1")
    with pytest.raises(StepEditError, match="no take 'L1.T9'"):
        service.use_take(render, 1, "L1.T9", "s1")
    with pytest.raises(gr.Error, match="recipe"):
        service.replay(None, "s1")
    with pytest.raises(StepEditError, match="Script line 2, column 1: unknown voice 'Cat'"):
        list(service.render("Ann: hi\nCat: hello", None, 1, "s1"))
    with pytest.raises(StepEditError, match=r"line 1, column 12: unknown directive"):
        list(service.render("Ann: hello {shouty}", None, 1, "s1"))


def test_voice_panel_save_rename_delete_export_import_use(svc, tmp_path):
    assert "No voices yet." in svc.voice_view(None)[0] and "还没有保存的声音" in svc.voice_view(None)[0]
    with pytest.raises(gr.Error, match="Load a prompt recording"):
        svc.voice_save("Ann", None, "text", None)
    _save_voices(svc)
    md, sel, default, pick = svc.voice_view(None)
    assert "**Ann**" in md and "**Ben**" in md and sel == default == pick == gr.update(choices=["Ann", "Ben"])
    with pytest.raises(StepEditError, match="already exists"):
        svc.voice_save("ann", *_prompt("en"), None)
    path, text = svc.voice_use("Ann", None)
    assert AudioClip.from_file(path).samples.tobytes() == AudioClip.from_file(_prompt("en")[0]).samples.tobytes()
    assert text == _prompt("en")[1]
    svc.voice_rename("Ann", "Anna", None)
    svc.voice_delete("Ben", None)
    assert svc.voices(None) == [{"name": "Anna", "text": text, "seconds": pytest.approx(
        AudioClip.from_file(_prompt("en")[0]).duration, abs=0.01)}]
    with pytest.raises(StepEditError, match="No voice named 'Ben'"):
        svc.voice_delete("Ben", None)
    zip_path = svc.voice_export(None)
    with zipfile.ZipFile(zip_path) as zf:
        assert json.loads(zf.read("manifest.json"))["voices"][0]["name"] == "Anna"
    svc.voice_delete("Anna", None)
    svc.voice_import(zip_path, None)
    assert [v["name"] for v in svc.voices(None)] == ["Anna"]
    with pytest.raises(StepEditError, match="voices.zip: the library already has voices named 'Anna'"):
        svc.voice_import(zip_path, None)
    assert svc.library(None).root == tmp_path / "data" / "voices"          # locally: the user's data dir


def test_space_library_is_per_session_and_travels_by_zip(svc, tmp_path, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/step-audio-editx")
    _save_voices(svc, "alice-session")
    assert [v["name"] for v in svc.voices("alice-session")] == ["Ann", "Ben"]
    assert svc.voices("bob-session") == []                              # another session sees none of them
    assert not (tmp_path / "data").exists()                              # nothing in the user data dir
    with pytest.raises(StepEditError, match="unknown voice 'Ann'"):
        list(svc.render("Ann: hi", None, 1, "bob-session"))
    zip_path = svc.voice_export("alice-session")
    svc.voice_import(zip_path, "bob-session")
    assert [v["name"] for v in svc.voices("bob-session")] == ["Ann", "Ben"]
    svc.voice_delete("Ann", "bob-session")                              # sessions stay independent
    assert [v["name"] for v in svc.voices("alice-session")] == ["Ann", "Ben"]
    final = list(svc.render("Ben: Good night.", None, 5, "bob-session"))[-1]
    assert isinstance(final[0], ScriptRender) and np.abs(final[0].master).max() > 0.01
    monkeypatch.delenv("SPACE_ID")
    assert svc.voices("alice-session") == []                           # locally the data dir is used


def test_clone_tab_prompt_from_the_library_clones_with_the_voices_tokens(tmp_path, monkeypatch):
    """A prompt the clone tab loaded from the library (its saved-voice picker) is recognised by its samples,
    so the clone request carries the voice's token store (the real engine then skips tokenizing it)."""
    from tests.fake_engine import FakeEngine  # noqa: PLC0415
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.delenv("SPACE_ID", raising=False)
    stores = []

    class Recording(FakeEngine):
        def _clone(self, request, progress):
            stores.append(request.prompt_store)
            return super()._clone(request, progress)

    studio = Studio(EngineRunner(Recording(), zero_gpu=False), tmp_path / "app", check=False, voice_library=True)
    svc = ScriptService(studio)
    _save_voices(svc)
    path, text = svc.voice_use("Ben", None)
    from app_ui.history import TakeTree  # noqa: PLC0415
    tree = studio.ensure_workdir(TakeTree(), "s1")
    tree, _ = studio.clone(tree, path, text, "hello there", [1, 2], session="s1")
    studio.clone_once(path, text, "hello there", 3, "s1")
    studio.clone(tree, _prompt("en")[0], "another prompt", "hello there", [4], session="s1")   # saved as Ann
    with sf.SoundFile(_prompt("zh")[0]) as f:                                  # same voice, other samples
        wav, sr = f.read(dtype="float32"), f.samplerate
    sf.write(tmp_path / "louder.wav", np.clip(wav * 1.5, -1, 1), sr, subtype="FLOAT")
    studio.clone(tree, str(tmp_path / "louder.wav"), text, "hello there", [6], session="s1")
    assert [s and s.name for s in stores] == ["Ben", "Ben", "Ben", "Ann", None]
    stores[0].store("tok/x", [7])
    assert svc.library(None).get("Ben").prompt_tokens == {"tok/x": [7]}
