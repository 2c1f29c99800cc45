"""App pieces without a server: take tree, recipes, runner (GPU island, fallback, errors), pictures, views."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from app_ui import history, plots, views
from app_ui.history import Take, TakeTree
from app_ui.runner import MAX_GPU_SECONDS, MIN_GPU_SECONDS, CloneJob, EditJob, EngineError, EngineRunner
from app_ui.studio import PRUNE_EVERY_S, Studio
from stepedit_core.errors import UnsupportedEditError
from stepedit_core.interface import AudioClip, CloneRequest, EditRequest
from tests.fake_engine import FakeEngine

ROOT = Path(__file__).resolve().parent.parent


def _take(i: int) -> dict:
    return {"op": "clone", "option": None, "seed": i, "index": i, "text": "t", "audio": f"/x/T{i}.wav",
            "duration": 1.0}


def _edit_take(op="emotion", option="happy") -> dict:
    return {**_take(0), "op": op, "option": option}


def _prompt(tmp_path: Path) -> str:
    sr = 16000
    t = np.arange(sr) / sr
    path = tmp_path / "p.wav"
    swing = 0.55 + 0.45 * np.sin(2 * np.pi * 3 * t)          # speech-like loudness swings (steady tones are refused)
    sf.write(path, (0.3 * np.sin(2 * np.pi * 200 * t) * swing).astype(np.float32), sr)
    return str(path)


# ---------------------------------------------------------------------------- take tree
def test_tree_branches_walks_and_undoes():
    tree, ids = TakeTree().add(history.CLONE, None, {}, (1, 2), [_take(1), _take(2)])
    assert ids == ["T1", "T2"] and tree.focus == "T1"
    tree, ids = tree.add(history.EDIT, "T1", {}, (5,), [_edit_take(), _edit_take()])   # 2 rounds stack
    assert [tree.get(i).parent for i in ids] == ["T1", "T3"] and tree.focus == "T4"
    tree, _ = tree.add(history.EDIT, "T1", {}, (6,), [_edit_take("speed", "faster")])   # branch from T1
    assert [t.id for t in tree.lineage("T5")] == ["T1", "T5"]
    assert [(t.id, d) for t, d, _ in tree.walk()] == [("T1", 0), ("T3", 1), ("T4", 2), ("T5", 1), ("T2", 0)]
    labels = [label for label, _ in views.timeline_choices(tree)]
    assert labels[1].startswith("├─ T3") and labels[2].startswith("│  └─ T4") and labels[3].startswith("└─ T5")
    tree, undone = tree.undo()
    assert undone.takes == ("T5",) and tree.focus == "T1" and not tree.has("T5")
    tree, _ = tree.add(history.EDIT, "T4", {}, (7,), [_edit_take()])
    assert tree.takes[-1].id == "T6"                                                      # ids never reused
    with pytest.raises(KeyError):
        tree.add(history.EDIT, "T99", {}, (1,), [_edit_take()])
    assert TakeTree().undo() == (TakeTree(), None)


def test_recipe_round_trip_and_errors(tmp_path):
    src = Path(_prompt(tmp_path))
    tree, _ = TakeTree().add(history.CLONE, None, {"prompt_text": "p", "target_text": "t", "source": str(src)},
                             (3,), [_take(1)])
    tree, _ = tree.add(history.EDIT, "T1", {"edit_type": "emotion", "edit_info": "sad", "n_iterations": 1},
                       (4,), [_edit_take()])
    recipe = history.to_recipe(tree, engine="fake")
    parsed = history.parse_recipe(json.dumps(recipe))
    key = parsed["actions"][0]["params"]["source"]
    assert history.recipe_source_bytes(parsed, key)[1] == src.read_bytes()
    with pytest.raises(ValueError, match="not valid JSON"):
        history.parse_recipe("{")
    with pytest.raises(ValueError, match="not a stepedit-recipe"):
        history.parse_recipe(json.dumps({"format": "other"}))
    broken = json.loads(json.dumps(recipe))
    broken["actions"][1]["parent"] = "T42"
    with pytest.raises(ValueError, match="T42"):
        history.parse_recipe(json.dumps(broken))
    broken = json.loads(json.dumps(recipe))
    broken["sources"][key]["data"] = broken["sources"][key]["data"][:-8] + "AAAAAAA="
    with pytest.raises(ValueError, match="corrupt"):
        history.recipe_source_bytes(broken, key)


# ---------------------------------------------------------------------------- runner
def test_gpu_duration_follows_the_input():
    runner = EngineRunner(FakeEngine())
    short = AudioClip(np.zeros(24000, np.float32), 24000)
    long = AudioClip(np.zeros(24000 * 30, np.float32), 24000)
    small = runner.gpu_seconds(EditJob(EditRequest(short, "x", "emotion", "happy")))
    big = runner.gpu_seconds(EditJob(EditRequest(long, "x", "emotion", "happy", n_iterations=5)))
    many = runner.gpu_seconds(CloneJob(tuple(CloneRequest(long, "p", "t" * 900) for _ in range(20))))
    assert MIN_GPU_SECONDS == small < big < many == MAX_GPU_SECONDS


def test_gpu_decorator_gets_a_duration_callable_with_the_island_signature(tmp_path):
    seen = {}

    def fake_gpu(duration=None, **_kw):
        def wrap(fn):
            def call(job):
                seen["duration"] = duration(job)        # spaces calls duration(*args) like the function
                return fn(job)
            return call
        return wrap

    runner = EngineRunner(FakeEngine(), gpu=fake_gpu, zero_gpu=True)
    clip = AudioClip.from_file(_prompt(tmp_path))
    assert runner.transcribe(clip).startswith("a fake transcript")
    assert seen["duration"] == MIN_GPU_SECONDS


def test_typed_errors_become_gr_errors_and_gpu_failures_fall_back_to_cpu(tmp_path):
    clip = AudioClip.from_file(_prompt(tmp_path))
    engine = FakeEngine(unsupported=("style",))
    with pytest.raises(EngineError, match="does not support the style edit"):
        EngineRunner(engine).edit(EditRequest(clip, "x", "style", "whisper"))

    def quota_gpu(duration=None, **_kw):
        def wrap(fn):
            def call(job):
                raise gr.Error("ZeroGPU quota exceeded", title="ZeroGPU quota exceeded")
            return call
        return wrap

    results = EngineRunner(engine, gpu=quota_gpu, zero_gpu=True).edit(EditRequest(clip, "x", "emotion", "sad", seed=3))
    assert len(results) == 1 and results[0].seed == 3          # ran on the CPU path instead
    gpu_engine = FakeEngine(device="cuda")                        # a model on (emulated) cuda cannot fall back
    with pytest.raises(gr.Error, match="needs a GPU"):
        EngineRunner(gpu_engine, gpu=quota_gpu, zero_gpu=True).edit(EditRequest(clip, "x", "emotion", "sad"))
    assert gpu_engine.calls == []
    with pytest.raises(gr.Error, match="ZeroGPU quota"):           # off ZeroGPU there is nothing to fall back to
        EngineRunner(engine, gpu=quota_gpu, zero_gpu=False).edit(EditRequest(clip, "x", "emotion", "sad"))
    engine.fail_with = RuntimeError("CUDA out of memory")
    with pytest.raises(gr.Error, match="RuntimeError: CUDA out of memory"):
        EngineRunner(engine).edit(EditRequest(clip, "x", "emotion", "sad"))


def test_studio_never_touches_the_tree_on_failure(tmp_path):
    engine = FakeEngine()
    studio = Studio(EngineRunner(engine), tmp_path / "root")
    tree = studio.ensure_workdir(TakeTree(), "abc")
    tree, ids = studio.clone(tree, _prompt(tmp_path), "p", "hello", [1, 2])
    before = tree
    engine.fail_with = UnsupportedEditError("nope")
    with pytest.raises(EngineError):
        studio.edit(tree, ids[0], "emotion", "happy", None, 1, 5)
    assert tree == before and len(tree) == 2
    assert studio.candidate_seeds(7, 3) == [7, 8, 9]
    assert len(set(studio.candidate_seeds(-1, 4))) == 4
    studio.remove_workdir(tree)
    assert not Path(tree.workdir).exists()
    old, fresh = studio.session_dir("old"), studio.session_dir("fresh")
    os.utime(old, (1.0, 1.0))
    assert studio.prune(now=time.time() + PRUNE_EVERY_S) == 1 and not old.exists() and fresh.exists()


# ---------------------------------------------------------------------------- pictures and views
def test_take_image_shares_the_time_scale(tmp_path):
    sr = 24000
    wav = (0.5 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32)
    img = Image.open(plots.take_image(wav, sr, tmp_path / "a.png", span_seconds=2.0)).convert("RGB")
    assert img.size == (plots.WIDTH, plots.WAVE_H + plots.SPEC_H + plots.RULER_H + 2)
    row = np.asarray(img)[plots.WAVE_H + 2 + plots.SPEC_H // 2]
    assert tuple(row[-5]) == plots.PAD and tuple(row[5]) != plots.PAD   # 1 s of 2 s drawn, the rest padded
    spec = np.asarray(img)[plots.WAVE_H + 2:plots.WAVE_H + 2 + plots.SPEC_H, : plots.WIDTH // 2 - 5].mean(axis=(1, 2))
    f_rows = np.geomspace(min(plots.F_MAX, sr / 2), plots.F_MIN, plots.SPEC_H)
    assert abs(f_rows[int(np.argmax(spec))] - 440) < 60                  # brightest row sits at 440 Hz


def test_tag_preview_marks_known_and_unknown_tags():
    html = views.tag_preview("Hello [Laughter] world [Yawns]", duration=2.0)
    assert "tag-chip'>Laughter" in html and "tag-chip unknown'>Yawns" in html
    assert "Unknown tag(s): Yawns" in html and "≈0.9s" in html          # 6 of 13 plain characters of 2 s
    assert "empty" in views.tag_preview("  ")


def test_engine_note_says_what_is_active():
    note = views.engine_note(FakeEngine(unsupported=("vad",)).capabilities())
    assert "Fake engine (tests)" in note and "approximate" in note and "not available here: Remove silence" in note


# ---------------------------------------------------------------------------- app module
def test_importing_app_loads_nothing_and_builds_with_the_lite_engine():
    code = ("import sys, app, stepedit_core.loader as L\n"
            "assert 'stepedit_core.lite.engine' not in sys.modules\n"
            "a = app.parse_args([])\n"
            "assert (a.engine, a.server_name, a.port, a.share, a.mcp) == ('auto', '127.0.0.1', 7860, False, False)\n"
            "from stepedit_core import load_engine\n"
            "demo = app.build_demo(load_engine('lite'))\n"
            "print(type(demo).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("Blocks")


def test_main_reports_missing_weights_without_a_traceback(tmp_path):
    import app
    with pytest.raises(SystemExit) as info:
        app.main(["--engine", "stepaudio", "--model-path", str(tmp_path)])
    message = str(info.value)
    assert message.startswith("error:") and "Step-Audio-EditX" in message and "--engine lite" in message


def test_check_badges_and_the_best_candidate():
    from app_ui import views
    from stepedit_core import checks

    def take(i, heard):
        c = checks.Checker(lambda clip, lang: checks.Heard(heard, lang), None).check(
            AudioClip(np.zeros(2400, np.float32), 24000), "the cat sat on the mat")
        return Take(id=f"T{i}", parent=None, action="A1", op="clone", option=None, seed=i, index=i,
                    text="the cat sat on the mat", audio="x.wav", duration=0.1, check=c.to_dict())
    good, bad = take(1, "the cat sat on the mat"), take(2, "the cat sat")
    assert views.check_short(good.check) == "🟢 WER 0%" and views.check_short(bad.check) == "🔴 WER 50%"
    html = views.check_badges(bad.check)
    assert "check-badge red" in html and "3 missing" in html and "heard: the cat sat" in html
    assert views.check_badges(None).count("not checked") == 1
    assert views.best_candidate([bad, good]) == "T1" and views.best_candidate([bad]) is None


def test_waveform_span_fills_the_time_range_and_refuses_bad_spans(tmp_path):
    from app_ui.selection_ui import _ticked_span, span_from_plot, take_envelope   # noqa: PLC0415
    assert _ticked_span([2, 1]) == (1, 2, None, None)                   # ticked words clear the time range
    assert _ticked_span([])[:2] == (-1, -1)
    sr = 24000
    wav = np.zeros(sr * 2, np.float32)
    wav[sr // 2:sr] = 0.5                                        # loud from 0.5 s to 1.0 s
    sf.write(tmp_path / "T1.wav", wav, sr)
    tree, ids = TakeTree().add(history.CLONE, None, {}, (1,), [{**_take(1), "audio": str(tmp_path / "T1.wav"),
                                                                "duration": 2.0}])
    env = take_envelope(tree.get(ids[0]))
    assert list(env.columns) == ["seconds", "level"] and env["seconds"].iloc[-1] == pytest.approx(2.0)
    loud = env[env["level"] > 0.4]["seconds"]
    assert loud.min() == pytest.approx(0.5) and loud.max() == pytest.approx(0.98)
    assert len(env) == int(2.0 / plots.ENVELOPE_FRAME_S) + 1

    def brush(a, b):
        return span_from_plot(ids[0], tree, gr.SelectData(None, {"index": [a, b], "value": [a, b], "selected": True}))

    start, end, words = brush(0.4512, 1.2)
    assert (start, end) == (0.451, 1.2) and words.value == []     # a brushed range replaces ticked words
    for (a, b), message in (((1.5, 2.6), "outside the clip, which is 2.00 s long"), ((1.0, 1.0), "is empty"),
                            ((1.0, 1.05), "inside a single sound")):
        with pytest.raises(gr.Error, match=message):
            brush(a, b)
    with pytest.raises(gr.Error, match="Select the take"):
        span_from_plot(None, tree, gr.SelectData(None, {"index": [0.1, 0.5], "value": [0.1, 0.5]}))


def test_take_file_names_say_which_take():
    from app_ui.names import take_filename
    from stepedit_core.interface import AudioClip, EngineResult
    clip = AudioClip(np.zeros(10, np.float32), 24000)
    assert take_filename(3, EngineResult(clip, "x", 7, "emotion", edit_info="happy")) == "T3-happy-seed7.wav"
    assert take_filename(1, EngineResult(clip, "x", 42, "clone")) == "T1-clone-seed42.wav"
    assert take_filename(4, EngineResult(clip, "x", 5, "denoise")) == "T4-denoise-seed5.wav"
    assert take_filename(2, EngineResult(clip, "x", 0, "upload")) == "T2-recording.wav"


def test_plan_table_reads_back_the_plan_and_names_what_is_wrong():
    """The edit tab's plan box: an instruction's plan as table rows, edited cells read back through the plan
    parser (one check, one message), and the words a plan does not understand named."""
    import gradio as gr  # noqa: PLC0415
    from app_ui.tabs import plan_box  # noqa: PLC0415
    from stepedit_core import plans  # noqa: PLC0415
    instruction = "remove the noise, a bit happier, laugh after 'morning'"
    rows = plan_box.show_plan(instruction)
    assert [r[0] for r in rows] == ["Denoise / 降噪", "Emotion / 情感: Happy / 开心 ×1",
                                    "Paralinguistic / 副语言: [laugh] after 'morning'"]
    assert plan_box.table_plan(rows) == plans.parse_plan(instruction)
    rows[1][2], rows[1][3] = "sad", 2.0                   # cells as the browser sends them back
    assert plan_box.table_plan(rows)[1] == plans.PlanStep("emotion", "sad", 2)
    rows[1][2] = "purple"
    with pytest.raises(gr.Error, match=r"Unknown emotion option; use one of happy, .* \(got 'purple'\)\."):
        plan_box.table_plan(rows)
    with pytest.raises(gr.Error, match="Did not understand 'purple'"):
        plan_box.show_plan("make it purple")
    with pytest.raises(gr.Error, match="Show a plan first"):
        plan_box.table_plan([])


def test_script_tab_handlers_receive_their_session_and_progress(tmp_path, monkeypatch):
    """Gradio passes gr.Request and gr.Progress by a handler's signature: the Script tab's handlers (wrapped to turn
    core errors into toasts) keep theirs, so on a Space a saved voice lands in this session's library and a render
    reports its lines; the public ``script`` endpoint's parameters carry their documented names."""
    import inspect  # noqa: PLC0415
    from gradio.helpers import special_args  # noqa: PLC0415
    import app  # noqa: PLC0415
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STEPEDIT_DATA_DIR", str(tmp_path / "data"))
    demo = app.build_demo(FakeEngine())
    fns = {f.api_name: f.fn for f in demo.fns.values()}
    for name in ("session_script", "script", "voice_save", "voice_use", "voice_import"):
        assert "request" in inspect.signature(fns[name]).parameters, name
    for name, inputs in (("session_script", ["A: hi", None, -1]), ("script", ["A: hi", -1, "", None])):
        assert special_args(fns[name], list(inputs))[1] == len(inputs) + 1, name   # progress, after request
    named = demo.get_api_info()["named_endpoints"]["/script"]["parameters"]
    assert [p["parameter_name"] for p in named] == ["script", "seed", "default_voice", "voices_zip"]
