"""Replay of malformed or hostile recipe files: a readable refusal each time, and the session is untouched."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf

from app_ui.history import TakeTree
from app_ui.runner import EngineRunner
from app_ui.studio import MAX_RECIPE_ACTIONS, Studio
from tests.fake_engine import FakeEngine


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recipes")
    sr = 16000
    t = np.arange(sr) / sr
    prompt = tmp / "p.wav"
    sf.write(prompt, (0.3 * np.sin(2 * np.pi * 200 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 3 * t)))
             .astype(np.float32), sr)
    studio = Studio(EngineRunner(FakeEngine()), tmp / "root")
    tree = studio.ensure_workdir(TakeTree(), "rec")
    tree, _ = studio.clone(tree, str(prompt), "a prompt", "hello", [4])
    tree, _ = studio.edit(tree, "T1", "emotion", "happy", None, 1, 5)
    recipe = json.loads(Path(studio.export_recipe(tree)).read_text())
    return studio, recipe, tmp


def _broken(recipe: dict, how: str) -> dict | str | list:
    r = copy.deepcopy(recipe)
    key = next(iter(r["sources"]))
    if how == "no_actions":
        del r["actions"]
    elif how == "actions_not_list":
        r["actions"] = {"a": 1}
    elif how == "actions_strings":
        r["actions"] = ["clone", "edit"]
    elif how == "empty_actions":
        r["actions"] = []
    elif how == "too_many":
        r["actions"] = r["actions"][:1] * (MAX_RECIPE_ACTIONS + 1)
    elif how == "hash_mismatch":
        r["sources"][key]["sha256"] = "0" * 64
    elif how == "bad_base64":
        r["sources"][key]["data"] = "!!!not base64!!!"
    elif how == "sources_list":
        r["sources"] = [1, 2]
    elif how == "seed_string":
        r["actions"][0]["seeds"] = ["four"]
    elif how == "seed_huge":
        r["actions"][1]["seeds"] = [2**40]
    elif how == "no_params":
        del r["actions"][0]["params"]["prompt_text"]
    elif how == "params_not_dict":
        r["actions"][1]["params"] = "emotion"
    elif how == "unknown_edit_type":
        r["actions"][1]["params"]["edit_type"] = "EMOTION"
    elif how == "iterations_text":
        r["actions"][1]["params"]["n_iterations"] = "many"
    elif how == "wrong_version":
        r["version"] = 99
    elif how == "not_a_recipe":
        return [1, 2, 3]
    elif how == "not_json":
        return "{this is not json"
    elif how == "source_not_audio":
        import base64, hashlib  # noqa: E401,PLC0415
        data = b"not audio at all"
        r["sources"][key].update(data=base64.b64encode(data).decode(), sha256=hashlib.sha256(data).hexdigest())
    return r


CASES = ["no_actions", "actions_not_list", "actions_strings", "empty_actions", "too_many", "hash_mismatch",
         "bad_base64", "sources_list", "seed_string", "seed_huge", "no_params", "params_not_dict",
         "unknown_edit_type", "iterations_text", "wrong_version", "not_a_recipe", "not_json", "source_not_audio"]


@pytest.mark.parametrize("how", CASES)
def test_broken_recipe_is_refused_readably(recorded, how):
    studio, recipe, tmp = recorded
    data = _broken(recipe, how)
    path = tmp / f"{how}.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    tree = studio.ensure_workdir(TakeTree(), f"s-{how}")
    with pytest.raises(gr.Error) as err:
        studio.replay(tree, str(path))
    msg = err.value.message
    assert msg and "upstream" not in msg and "Traceback" not in msg and str(tmp) not in msg, msg
    assert len(msg) < 400, msg
    if how == "too_many":
        assert f"at most {MAX_RECIPE_ACTIONS}" in msg
    if how == "hash_mismatch":
        assert "corrupt" in msg
    if how == "unknown_edit_type":
        assert "Unknown edit type 'EMOTION'" in msg


def test_the_good_recipe_still_replays(recorded):
    studio, recipe, tmp = recorded
    path = tmp / "good.json"
    path.write_text(json.dumps(recipe))
    tree, ids, report = studio.replay(studio.ensure_workdir(TakeTree(), "good"), str(path))
    assert ids == ["T1", "T2"] and "2/2 are bit-identical" in report
