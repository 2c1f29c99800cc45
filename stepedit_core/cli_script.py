"""The CLI's ``script`` command (stepedit_core.script): a script file -> master WAV, SRT, VTT and recipe."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import validation


def configure_script(p: argparse.ArgumentParser) -> None:
    p.add_argument("script", help="the script file, UTF-8 (grammar: README, 'Script mode')")
    p.add_argument("-o", "--output-dir", required=True,
                   help="folder for STEM.wav (master), STEM.srt, STEM.vtt and STEM.recipe.json")
    p.add_argument("--stem", help="file name stem (default: the script file's name)")
    p.add_argument("--default-voice", help="the library voice for lines before the first 'Name:'")
    p.add_argument("--seed", type=int, help="fix the seeds of every line (reproducible master)")


def run_script(args: argparse.Namespace, ctx, ok: int) -> int:
    """``script``: render a script file with the library's voices; ``ok`` is the CLI's success code."""
    from . import script as script_mod  # noqa: PLC0415  (loaded only for this command)
    path = Path(args.script)
    if not path.is_file():
        raise FileNotFoundError(f"no such script file: {args.script}")
    lib = ctx.library
    source = validation.read_text_file(path, "the script", script_mod.MAX_SCRIPT_CHARS)
    parsed = script_mod.parse_script(source, voices=lib.names(),
                                     default_voice=args.default_voice)
    progress = ctx.progress("script")
    try:
        render = script_mod.render_script(ctx.engine, parsed, lib, seed=args.seed, progress=progress)
    finally:
        progress.close()
    files = script_mod.export_files(render, lib, args.output_dir, args.stem or path.stem)
    record = {"files": files, "engine": render.engine, "seed": render.seed, "lines": len(render.lines),
              "seconds": round(render.duration, 3),
              "cues": [{"start": c.start, "end": c.end, "speaker": c.speaker, "text": c.text} for c in render.cues]}
    ctx.emit(record, f"{files['wav']}  ({render.duration:.2f} s, {len(render.lines)} lines, seed {render.seed})")
    return ok
