"""Script mode: long-form, multi-speaker audio from a text script and a voice library.

``parse_script`` (grammar.py) turns ``Speaker: text`` lines with [tags], {directives} and [pause 0.8s] into
segments; ``render_script`` (render.py) renders each segment as its own take tree and assembles the master
(master.py: loudness, pauses, SRT / VTT cues); ``to_recipe`` / ``replay_recipe`` (recipe.py) reproduce it.
"""
from __future__ import annotations

from pathlib import Path

from ..audio import write_wav
from .grammar import (DEFAULT_GAP_S, MAX_PAUSE_S, MAX_SCRIPT_CHARS, Directive, Script, ScriptError, Segment,
                      parse_script)
from .master import TARGET_DBFS, Cue, to_srt, to_vtt
from .recipe import ReplayReport, load_recipe, recipe_json, replay_recipe, samples_sha256, to_recipe
from .render import (LineRender, LineTake, ScriptRender, edit_line, iter_render_script, render_script, reroll_line,
                     segment_seed, select_take)


def export_files(render: ScriptRender, voices, folder: str | Path, stem: str = "script") -> dict[str, str]:
    """Write ``stem.wav`` (16-bit master), ``stem.srt``, ``stem.vtt`` and ``stem.recipe.json`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"wav": folder / f"{stem}.wav", "srt": folder / f"{stem}.srt", "vtt": folder / f"{stem}.vtt",
             "recipe": folder / f"{stem}.recipe.json"}
    write_wav(paths["wav"], render.master, render.sample_rate)
    paths["srt"].write_text(to_srt(render.cues), encoding="utf-8")
    paths["vtt"].write_text(to_vtt(render.cues), encoding="utf-8")
    paths["recipe"].write_text(recipe_json(render, voices), encoding="utf-8")
    return {k: str(v) for k, v in paths.items()}


__all__ = ["parse_script", "Script", "Segment", "Directive", "ScriptError", "render_script", "iter_render_script",
           "reroll_line",
           "edit_line", "select_take", "ScriptRender", "LineRender", "LineTake", "Cue", "to_srt", "to_vtt",
           "to_recipe", "recipe_json", "load_recipe", "replay_recipe", "ReplayReport", "samples_sha256",
           "segment_seed", "export_files", "DEFAULT_GAP_S", "MAX_PAUSE_S", "MAX_SCRIPT_CHARS", "TARGET_DBFS"]
