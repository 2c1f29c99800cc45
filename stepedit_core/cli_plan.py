"""CLI commands of the plain-language plans (plans.py) and word edits (words.py); used by cli.py.

``plan "a bit happier, laugh after 'morning'"`` prints the plan, one step a line (the format ``--plan`` reads
back, so a plan can be shown, edited and then run); with ``INPUT -o OUT`` it runs the plan on a recording.
"""
from __future__ import annotations

import argparse
from typing import Callable, NamedTuple

from . import catalog, plans
from .errors import InvalidInputError


class CliIO(NamedTuple):
    """The helpers of cli.py these commands use (passed in: cli imports this module, not the other way)."""
    read_clip: Callable
    write: Callable
    take_record: Callable
    ok: int


def configure_plan(p: argparse.ArgumentParser) -> None:
    p.add_argument("instructions", nargs="?", help="what to change, in English or Mandarin")
    p.add_argument("--plan", help="the plan itself, one step a line or ';'-separated (as printed by this command)")
    p.add_argument("--input", help="a recording to run the plan on (without it the plan is only printed)")
    p.add_argument("--text", help="transcript of --input (transcribed when omitted and possible)")
    p.add_argument("--seed", type=int)
    p.add_argument("-o", "--output", help="output file of the last step (with --input)")


def run_plan(args: argparse.Namespace, ctx, io: CliIO) -> int:
    from . import audio_formats  # noqa: PLC0415
    if bool(args.instructions) == bool(args.plan):
        raise InvalidInputError("give the instructions or --plan (one of them)")
    plan = plans.parse_plan_text(args.plan) if args.plan else plans.parse_plan(args.instructions)
    lines = plans.describe(plan)
    if not args.input:
        ctx.emit({"plan": lines}, "\n".join(lines))
        return io.ok
    if not args.output:
        raise InvalidInputError("--input needs -o OUTPUT")
    audio_formats.format_for_path(args.output)
    clip = io.read_clip(args.input, ctx.service.capabilities().max_input_seconds)
    text = ctx.service.fill_transcript(clip, args.text, catalog.EMOTION)
    progress = ctx.progress("plan")
    try:
        takes = plans.run_plan(ctx.engine, clip, text or "", plan, seed=args.seed, progress=progress)
    finally:
        progress.close()
    last = takes[-1]
    path = io.write(last, args.output)
    ctx.emit(io.take_record(last, path, ctx.engine) | {"plan": lines},
             f"{path}  ({last.audio.duration:.2f} s, {len(plan)} step(s): {'; '.join(lines)})")
    return io.ok


def run_words(args: argparse.Namespace, ctx, io: CliIO) -> int:
    """``edit --type words``: only the changed words regenerated (words.edit_take), checked with --check."""
    clip = io.read_clip(args.input, ctx.service.capabilities().max_input_seconds)
    progress = ctx.progress("words")
    try:
        take = ctx.service.word_edit(clip, args.text, args.new_text, seed=args.seed, check=args.check,
                                     progress=progress)
    finally:
        progress.close()
    path = io.write(take, args.output)
    info = take.metadata["word_edit"]
    check = info.get("check")
    line = f"{path}  ({take.audio.duration:.2f} s, {info['change']}, seed {take.seed}"
    if check:
        line += f"; span error {check['span_error_rate']:.2f}, rest identical: {check['outside_identical']}"
    ctx.emit(io.take_record(take, path, ctx.engine) | {"word_edit": info}, line + ")")
    return io.ok
