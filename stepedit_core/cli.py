"""``python -m stepedit_core``: clone, edit, transcribe, manage voices and serve the HTTP API from a shell.

Each subcommand is one :class:`Command` in :data:`COMMANDS` (``register`` adds one: a function that adds its
arguments and a function that runs it), so a new mode is one small function pair. Engine flags are the app's
(:mod:`~stepedit_core.flags`). ``--json`` prints the take's metadata on stdout; progress goes to stderr.

Exit codes: 0 done, 1 unexpected failure, 2 bad usage or input, 3 unsupported by this engine, 4 model or
weights unavailable, 5 the engine failed, 6 a file could not be read or written, 130 interrupted.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import audio_formats, catalog, cli_plan, cli_script, cli_stream, regions, validation
from . import words as word_edits
from .errors import (CheckpointError, InvalidInputError, ModelUnavailableError, StepEditError,
                     UnsupportedEditError)
from .flags import add_engine_arguments, engine_from_args
from .interface import MAX_ITERATIONS, AudioClip, EditRequest, Engine, EngineResult
from .service import FieldNames, Service, parse_selection, service_for, speech, user_message
from .voices import DATA_DIR_ENV, MAX_VOICE_SECONDS, VoiceLibrary

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNSUPPORTED, EXIT_MODEL, EXIT_ENGINE, EXIT_IO = 0, 1, 2, 3, 4, 5, 6
EXIT_INTERRUPTED = 130
PROG = "python -m stepedit_core"
DESCRIPTION = "Step-Audio-EditX from the shell: clone voices, edit speech, transcribe, manage voices, serve the API."
log = logging.getLogger("stepedit.cli")
CLI_FIELDS = FieldNames("--first-word", "--last-word", "--start-s", "--end-s")


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    examples: str                                           # shown under --help
    configure: Callable[[argparse.ArgumentParser], None]    # adds the subcommand's arguments
    run: Callable[[argparse.Namespace, "Context"], int]     # returns an exit code
    engine: bool = True                                     # takes the engine flags and loads an engine


COMMANDS: dict[str, Command] = {}


def register(command: Command) -> Command:
    COMMANDS[command.name] = command
    return command


class Context:
    """What a command needs: the engine (loaded on first use), the voice library, progress and output."""

    def __init__(self, args: argparse.Namespace, engine: Engine | None = None):
        self.args, self._engine = args, engine

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = engine_from_args(self.args)
        return self._engine

    @property
    def service(self) -> Service:
        """The engine's one service: every command's engine work goes through it."""
        return service_for(self.engine)

    @property
    def library(self) -> VoiceLibrary:
        return VoiceLibrary(self.args.voices_dir)

    def progress(self, total_desc: str):
        """A progress callback drawing a tqdm bar on stderr (nothing with --quiet); call ``.close()`` after."""
        from tqdm import tqdm  # noqa: PLC0415
        bar = tqdm(total=100, desc=total_desc, disable=self.args.quiet, file=sys.stderr, leave=False,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}")

        def update(fraction: float, desc: str) -> None:
            bar.set_description_str(f"{total_desc}: {desc}" if desc else total_desc, refresh=False)
            bar.update(max(0, int(round(100 * min(max(fraction, 0.0), 1.0))) - bar.n))

        update.close = bar.close
        return update

    def emit(self, record: dict, line: str) -> None:
        """The result line (or --json record) on stdout; on stderr when stdout carries the audio (``-o -``)."""
        out = sys.stderr if getattr(self.args, "output", None) == cli_stream.STDOUT else sys.stdout
        print(json.dumps(record, ensure_ascii=False, default=str) if self.args.json else line, file=out)


def take_record(take: EngineResult, output: str | None, engine: Engine) -> dict:
    """The JSON form of a take: what produced it, its checks and metadata."""
    return {"output": output, "engine": engine.capabilities().engine, "text": take.text, "seed": take.seed,
            "edit_type": take.edit_type, "edit_info": take.edit_info, "iteration": take.iteration,
            "seconds": round(take.audio.duration, 3), "sample_rate": take.audio.sample_rate,
            "timings": dict(take.timings), "check": take.metadata.get("check"), "metadata": dict(take.metadata)}


def _add_retry_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tries", type=int, default=1, help="re-roll with seeds SEED, SEED+1, ... until the take's "
                   "WER/CER <= --threshold, at most this many runs (implies --check; the best run is kept)")
    p.add_argument("--threshold", type=float, default=None, help="the WER/CER that stops --tries (default: the "
                   "check's green bound)")


def _takes(run, args: argparse.Namespace, ctx: "Context", source: AudioClip) -> tuple[list[EngineResult], list[int]]:
    """``run(seed) -> takes``. With --check or --tries the last take is scored (stepedit_core.checks); --tries
    re-rolls seeds s, s+1, ... until its WER/CER <= --threshold (checks.retry_until_ok). Returns the kept
    run's takes and, with --tries > 1, every seed tried."""
    tries, threshold = ctx.service.check_retry(args.tries, args.threshold)     # every door's limits and messages
    if not getattr(args, "check", False) and tries <= 1:
        return run(args.seed), []
    from .interface import resolve_seed  # noqa: PLC0415
    kept = ctx.service.best_of(run, source, resolve_seed(args.seed), tries, threshold)
    return kept.takes, kept.seeds if tries > 1 else []


def _check_line(take: EngineResult) -> str:
    c = take.metadata.get("check")
    if not c:
        return ""
    return f", {c['metric'].upper()} {c['error_rate']:.2f} heard {c['heard']!r}"


def _read_clip(path: str, max_seconds: float) -> AudioClip:
    """The clip in ``path``, its header checked against ``max_seconds`` before decoding."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such audio file: {path}")
    return AudioClip.from_file(path, None, max_seconds)


def _text_arg(value: str | None, file: str | None) -> str | None:
    return validation.read_text_file(file, "the text file") if file else value


def _write(take: EngineResult, output: str) -> str:
    audio_formats.format_for_path(output)                 # an unknown extension fails before writing
    return audio_formats.write(output, take.audio.samples, take.audio.sample_rate)


# ---- clone ----------------------------------------------------------------------------------------------
def _configure_clone(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--voice", help="a saved voice from the library (see `voices list`)")
    src.add_argument("--prompt", metavar="AUDIO", help="prompt audio file (3-30 s of the voice)")
    p.add_argument("--prompt-text", help="transcript of --prompt (transcribed when omitted and possible)")
    text = p.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="what the cloned voice says")
    text.add_argument("--text-file", metavar="FILE", help="read the text from a UTF-8 file")
    p.add_argument("--instructions", help="what to change after cloning, in plain words (see `plan`), "
                   "e.g. 'a bit happier, whisper'")
    p.add_argument("--speed", type=float, help="0.25-4.0; mapped to the nearest speed edit")
    p.add_argument("--seed", type=int, help="fix the sampling seed (reproducible takes)")
    p.add_argument("--check", action="store_true", help="transcribe the take and score it (WER/CER, voice, "
                   "duration, clipping); the scores go in --json under 'check'")
    _add_retry_arguments(p)
    cli_stream.add_argument(p)
    p.add_argument("-o", "--output", required=True, help="output file; the extension picks the format "
                   f"({', '.join(audio_formats.available_formats())}); `-` with --stream: a WAV stream on stdout")


def _run_clone(args: argparse.Namespace, ctx: Context) -> int:
    fmt = cli_stream.output_format(args.output, args.stream)
    if args.stream:
        cli_stream.refuse_whole_take_options({"--instructions": bool(args.instructions),
                                              "--speed": args.speed is not None, "--tries": args.tries != 1})
    if args.voice:
        voice = ctx.library.get(args.voice)
        clip, prompt_text = voice.clip(), voice.text
    else:
        clip = _read_clip(args.prompt, ctx.service.capabilities().max_input_seconds)
        prompt_text = ctx.service.fill_transcript(clip, args.prompt_text)
    text = _text_arg(args.text, args.text_file)
    plan = speech.plan_speech(clip, prompt_text or "", text, instructions=args.instructions, speed=args.speed,
                              seed=args.seed)
    if args.stream:
        take = cli_stream.stream_clone(ctx.service, plan.clone, args.output, fmt, args.check, clip)
        ctx.emit(take_record(take, args.output, ctx.engine) | {"edits": [], "streamed": True},
                 f"{args.output}  ({take.audio.duration:.2f} s streamed, seed {take.seed}{_check_line(take)})")
        return EXIT_OK
    progress = ctx.progress("clone")
    try:
        takes, tried = _takes(lambda seed: ctx.service.speak(dataclasses.replace(
            plan, clone=dataclasses.replace(plan.clone, seed=seed)), progress), args, ctx, clip)
    finally:
        progress.close()
    take = takes[-1]
    out = _write(take, args.output)
    record = take_record(take, out, ctx.engine) | {"edits": [f"{s.edit_type}={s.edit_info}" for s in plan.edits]}
    if tried:
        record["seeds_tried"] = tried
    ctx.emit(record, f"{out}  ({take.audio.duration:.2f} s, seed {take.seed}{_check_line(take)})")
    return EXIT_OK


def _plan_io() -> cli_plan.CliIO:
    return cli_plan.CliIO(_read_clip, _write, take_record, EXIT_OK)


# ---- edit -----------------------------------------------------------------------------------------------
def _configure_edit(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="audio file to edit")
    p.add_argument("--type", required=True, dest="edit_type", metavar="TYPE",
                   help="one of " + ", ".join(catalog.AUDIO_EDIT_TYPES + (word_edits.WORDS,)) + "; words: a word "
                   "edit (--text the take's transcript, --new-text the edited transcript)")
    p.add_argument("--option", help="emotion: " + ", ".join(catalog.EMOTIONS) + "; style: "
                   + ", ".join(catalog.STYLES) + "; speed: " + ", ".join(catalog.SPEEDS))
    p.add_argument("--text", help="transcript of the input (transcribed when omitted and possible)")
    p.add_argument("--new-text", help="paralinguistic: the text with [Laughter]-style tags where sounds go")
    p.add_argument("--iterations", type=int, default=1, help=f"rounds, 1-{MAX_ITERATIONS}; each edits the last")
    p.add_argument("--seed", type=int)
    p.add_argument("--keep-rounds", action="store_true", help="also write every round as OUTPUT.<k>.<ext>")
    p.add_argument("--first-word", type=int, help="with --last-word: edit only these words of the input "
                   "(0-based, inclusive, as the take check hears them); a window around them, cut at pauses")
    p.add_argument("--last-word", type=int, help="the last word of the selection")
    p.add_argument("--start-s", type=float, help="with --end-s: edit only this time range (seconds)")
    p.add_argument("--end-s", type=float, help="the end of the time range")
    p.add_argument("--check", action="store_true", help="score the last round (WER/CER, voice, duration, clipping)")
    _add_retry_arguments(p)
    cli_stream.add_argument(p)
    p.add_argument("-o", "--output", required=True, help="output file (`-` with --stream: a WAV stream on stdout)")


def _run_edit(args: argparse.Namespace, ctx: Context) -> int:
    fmt = cli_stream.output_format(args.output, args.stream)
    if args.stream:
        cli_stream.refuse_whole_take_options({
            "--type words": args.edit_type == word_edits.WORDS, "--iterations": args.iterations != 1,
            "--keep-rounds": args.keep_rounds, "--tries": args.tries != 1,
            "a region": any(v is not None for v in (args.first_word, args.last_word, args.start_s, args.end_s))})
    if args.edit_type == word_edits.WORDS:
        return cli_plan.run_words(args, ctx, _plan_io())
    clip = _read_clip(args.input, ctx.service.capabilities().max_input_seconds)
    ctx.service.check_edit_choice(args.edit_type, args.option)       # before a slow transcription
    selection = parse_selection(args.first_word, args.last_word, args.start_s, args.end_s, names=CLI_FIELDS,
                                duration=clip.duration)
    if selection is not None:
        regions.check_region_edit_type(args.edit_type)
    text = ctx.service.fill_transcript(clip, args.text, args.edit_type)
    request = EditRequest(audio=clip, audio_text=text, edit_type=args.edit_type, edit_info=args.option,
                          new_text=args.new_text, n_iterations=args.iterations, seed=args.seed)
    if args.stream:
        take = cli_stream.stream_edit(ctx.service, request, args.output, fmt, args.check)
        ctx.emit(take_record(take, args.output, ctx.engine) | {"rounds": [], "streamed": True},
                 f"{args.output}  ({take.audio.duration:.2f} s streamed, seed {take.seed}{_check_line(take)})")
        return EXIT_OK
    words = ctx.service.window_words(clip, text, selection) if selection is not None else ()
    progress = ctx.progress(args.edit_type)
    try:
        takes, tried = _takes(lambda seed: ctx.service.edit_selected(dataclasses.replace(request, seed=seed), words,
                                                                     selection, progress), args, ctx, clip)
    finally:
        progress.close()
    last = takes[-1]
    out = Path(args.output)
    rounds = []
    if args.keep_rounds:
        rounds = [_write(t, str(out.with_suffix(f".{k}{out.suffix}"))) for k, t in enumerate(takes, 1)]
    path = _write(last, args.output)
    record = take_record(last, path, ctx.engine) | {"rounds": rounds}
    if tried:
        record["seeds_tried"] = tried
    ctx.emit(record, f"{path}  ({last.audio.duration:.2f} s, {len(takes)} round(s), seed {last.seed}"
                     f"{_check_line(last)})")
    return EXIT_OK


# ---- transcribe -----------------------------------------------------------------------------------------
def _configure_transcribe(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="AUDIO")
    p.add_argument("--language", help="zh / en (auto-detected when omitted)")


def _run_transcribe(args: argparse.Namespace, ctx: Context) -> int:
    for path in args.inputs:
        text = ctx.service.transcribe(_read_clip(path, ctx.service.capabilities().max_input_seconds), args.language)
        ctx.emit({"input": path, "text": text}, text)
    return EXIT_OK


# ---- voices ---------------------------------------------------------------------------------------------
def _configure_voices(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="list saved voices")
    add = sub.add_parser("add", help="save a voice: NAME AUDIO --text TRANSCRIPT")
    add.add_argument("name")
    add.add_argument("audio")
    add.add_argument("--text", required=True, help="what is said in AUDIO")
    add.add_argument("--overwrite", action="store_true")
    ren = sub.add_parser("rename", help="rename a voice")
    ren.add_argument("name")
    ren.add_argument("new_name")
    rm = sub.add_parser("delete", help="delete a voice")
    rm.add_argument("name")
    exp = sub.add_parser("export", help="write voices to a zip")
    exp.add_argument("zip")
    exp.add_argument("names", nargs="*", help="only these voices (default: all)")
    imp = sub.add_parser("import", help="add the voices of an exported zip")
    imp.add_argument("zip")
    imp.add_argument("--overwrite", action="store_true")


def _run_voices(args: argparse.Namespace, ctx: Context) -> int:
    lib, action = ctx.library, args.action
    if action == "list":
        voices = lib.list()
        if args.json:
            print(json.dumps([v.to_json() for v in voices], ensure_ascii=False))
        for v in voices if not args.json else ():
            print(f"{v.name}\t{v.seconds:.1f} s\t{v.text}")
    elif action == "add":
        v = lib.save(args.name, _read_clip(args.audio, MAX_VOICE_SECONDS), args.text, overwrite=args.overwrite)
        ctx.emit(v.to_json(), f"saved {v.name!r} ({v.seconds:.1f} s)")
    elif action == "rename":
        v = lib.rename(args.name, args.new_name)
        ctx.emit(v.to_json(), f"renamed to {v.name!r}")
    elif action == "delete":
        lib.delete(args.name)
        ctx.emit({"name": args.name, "deleted": True}, f"deleted {args.name!r}")
    elif action == "export":
        Path(args.zip).write_bytes(lib.export_zip(args.names or None))
        ctx.emit({"output": args.zip}, args.zip)
    elif action == "import":
        voices = lib.import_zip(args.zip, overwrite=args.overwrite, label=args.zip)
        ctx.emit([v.to_json() for v in voices], f"imported {len(voices)} voice(s)")
    return EXIT_OK


# ---- serve ----------------------------------------------------------------------------------------------
def _configure_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 needs STEPEDIT_API_KEY)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-auth", action="store_true", help="allow binding beyond localhost without an API key")


def _run_serve(args: argparse.Namespace, ctx: Context) -> int:
    from .server import check_exposure, serve  # noqa: PLC0415
    check_exposure(args.host, os.environ.get("STEPEDIT_API_KEY"), allow_open=args.no_auth)
    serve(ctx.engine, host=args.host, port=args.port, library=ctx.library, allow_open=args.no_auth)
    return EXIT_OK


# ---- script ---------------------------------------------------------------------------------------------
register(Command("clone", "clone a voice: speak new text in the voice of a prompt", f"""\
  {PROG} clone --prompt examples/prompt_en.wav --prompt-text "$(cat examples/prompt_en.txt)" \\
      --text "Hello from the command line." -o hello.wav
  {PROG} clone --voice narrator --text "Once upon a time." --instructions "happy, story" -o story.mp3 --json
""", _configure_clone, _run_clone))
register(Command("edit", "edit a recording: emotion, style, speed, paralinguistic, denoise, vad", f"""\
  {PROG} edit hello.wav --type emotion --option happy --iterations 2 -o happy.wav
  {PROG} edit hello.wav --type paralinguistic --text "Hello there." --new-text "Hello [Laughter] there." -o l.wav
  {PROG} edit noisy.flac --type denoise -o clean.flac --json
  {PROG} edit take.wav --type words --text "See you on Tuesday." --new-text "See you on Thursday." -o t.wav
""", _configure_edit, _run_edit))
register(Command("plan", "plain-language edit plan: print it, or run it on a recording", f"""\
  {PROG} plan "a bit happier and slower, laugh after 'morning'"
  {PROG} plan "更开心一点，在'早上'后面笑一下" --input take.wav --text "早上好" -o out.wav
""", cli_plan.configure_plan, lambda args, ctx: cli_plan.run_plan(args, ctx, _plan_io())))
register(Command("transcribe", "print the transcript of audio files", f"""\
  {PROG} transcribe examples/prompt_en.wav
""", _configure_transcribe, _run_transcribe))
register(Command("script", "render a multi-speaker script with library voices: master WAV, SRT, VTT, recipe", f"""\
  {PROG} voices add Alice examples/prompt_en.wav --text "$(cat examples/prompt_en.txt)"
  {PROG} script dialogue.txt -o out/ --seed 7      # out/dialogue.wav .srt .vtt .recipe.json
""", cli_script.configure_script, lambda args, ctx: cli_script.run_script(args, ctx, EXIT_OK)))
register(Command("voices", "manage the voice library (list, add, rename, delete, export, import)", f"""\
  {PROG} voices add narrator examples/prompt_en.wav --text "$(cat examples/prompt_en.txt)"
  {PROG} voices list --json
  {PROG} voices export all-voices.zip
""", _configure_voices, _run_voices, engine=False))
register(Command("serve", "serve the OpenAI-compatible HTTP API (/v1/audio/speech, edits, voices)", f"""\
  {PROG} serve --port 8000                        # then POST http://127.0.0.1:8000/v1/audio/speech
  STEPEDIT_API_KEY=secret {PROG} serve --host 0.0.0.0 --engine stepaudio --model-path /models
""", _configure_serve, _run_serve))


# ---- parser and entry point -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    examples = "\n".join(c.examples for c in COMMANDS.values())
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=f"examples:\n{examples}\n{__doc__.split(chr(10) + chr(10))[2]}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        p = sub.add_parser(command.name, help=command.help, description=command.help,
                           epilog=f"examples:\n{command.examples}", formatter_class=argparse.RawDescriptionHelpFormatter)
        command.configure(p)
        nested = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        for leaf in ([*nested[0].choices.values()] if nested else [p]):    # `voices list` etc. take them too
            _add_common_arguments(leaf, engine=command.engine)
    return parser


def _add_common_arguments(p: argparse.ArgumentParser, *, engine: bool) -> None:
    common = p.add_argument_group("output")
    common.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar or log lines")
    common.add_argument("--voices-dir", default=None,
                        help=f"voice library folder (default: ${DATA_DIR_ENV}/voices or the user data dir)")
    if engine:
        add_engine_arguments(p)


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, UnsupportedEditError):
        return EXIT_UNSUPPORTED
    if isinstance(exc, InvalidInputError):
        return EXIT_USAGE
    if isinstance(exc, (ModelUnavailableError, CheckpointError)):
        return EXIT_MODEL
    if isinstance(exc, StepEditError):
        return EXIT_ENGINE
    if isinstance(exc, OSError):
        return EXIT_IO
    return EXIT_ERROR


def main(argv: list[str] | None = None, *, engine: Engine | None = None) -> int:
    """Run one command; returns its exit code (``engine`` replaces the flags' engine, for embedding and tests)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet or args.json else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx = Context(args, engine)
    try:
        return COMMANDS[args.command].run(args, ctx)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (StepEditError, OSError) as exc:
        code = _exit_code(exc)
        message = user_message(exc) if isinstance(exc, StepEditError) else str(exc) if not exc.strerror else \
            f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
        if args.json:
            print(json.dumps({"error": {"message": message, "type": type(exc).__name__, "exit_code": code}},
                             ensure_ascii=False))
        print(f"error: {message}", file=sys.stderr)
        return code
    except Exception as exc:  # noqa: BLE001 -- one line for the user, the traceback in the log at debug level
        log.debug("unexpected failure", exc_info=True)
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


__all__ = ["Command", "COMMANDS", "register", "main", "build_parser", "take_record", "Context"]
