"""``--stream`` for the CLI's ``clone`` and ``edit``: the audio is written as the engine makes it.

The output is a streamed WAV (RIFF and data sizes "unknown", as the HTTP server sends it) or raw 16-bit PCM
(``.pcm``), to a file or to standard output with ``-o -`` (a WAV stream), so a take can be heard while it is
made::

    python -m stepedit_core clone --voice narrator --text "Once upon a time." --stream -o - | ffplay -nodisp -

A stream goes through the same service entry as a whole take (``Service.stream_clone`` / ``stream_edit``): the
same validation, work cap and messages, raised before the first byte is written. With ``--check`` the finished
stream is checked like a whole take (``Service.finish_stream``) and the scores go to ``--json``. What needs
whole takes (retries, plain-language instructions, several rounds, a region) is refused with a line that says
which option to drop.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from . import audio_formats, catalog
from .errors import InvalidInputError
from .audio import OUTPUT_SAMPLE_RATE
from .interface import CloneRequest, EditRequest, EngineResult, edit_result_text, resolve_seed

STDOUT = "-"                         # ``-o -``: a WAV stream on standard output


def add_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stream", action="store_true",
                   help="write the audio as it is generated (a .wav or .pcm file, or `-o -` for a WAV stream on "
                        "standard output); one take, one round")


def output_format(output: str, stream: bool) -> str:
    """The format of ``-o``; standard output and streams take wav or pcm only."""
    if output == STDOUT:
        if not stream:
            raise InvalidInputError("Writing to standard output (-o -) needs --stream.")
        return "wav"
    fmt = audio_formats.format_for_path(output)
    if stream and fmt not in audio_formats.STREAMABLE:
        raise InvalidInputError(f"--stream writes {' or '.join(audio_formats.STREAMABLE)}, not {fmt} "
                                f"(got -o {Path(output).name}).")
    return fmt


def refuse_whole_take_options(options: dict[str, bool]) -> None:
    """``options``: flag -> whether it is set; each needs whole takes, so it cannot be streamed."""
    used = [flag for flag, is_set in options.items() if is_set]
    if used:
        raise InvalidInputError(f"--stream makes one take as it plays; {', '.join(used)} "
                                f"{'needs' if len(used) == 1 else 'need'} whole takes (drop --stream).")


@contextlib.contextmanager
def _sink(output: str) -> Iterator[BinaryIO]:
    if output == STDOUT:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with open(output, "wb") as f:
        yield f


def write_stream(chunks: Iterator[np.ndarray], output: str, fmt: str) -> list[np.ndarray]:
    """Write 24 kHz float chunks as they arrive; returns them. The first chunk is drawn before the file is
    opened, so a refused request (validation, work cap) leaves no file behind."""
    first = next(chunks, None)
    got = [] if first is None else [first]
    with _sink(output) as out:
        if fmt == "wav":
            out.write(audio_formats.wav_stream_header(OUTPUT_SAMPLE_RATE))
        for chunk in ([first] if first is not None else []):
            out.write(audio_formats.pcm16(chunk))
            out.flush()
        for chunk in chunks:
            got.append(chunk)
            out.write(audio_formats.pcm16(chunk))
            out.flush()
    return got


def stream_clone(service, request: CloneRequest, output: str, fmt: str, check: bool,
                 source) -> EngineResult:
    """Stream one clone to ``output``; the take (checked when ``check``) for the record."""
    seed = resolve_seed(request.seed)
    chunks = service.stream_clone(dataclasses.replace(request, seed=seed))
    got = write_stream(iter(chunks), output, fmt)
    return service.finish_stream(got, request.target_text, seed, catalog.CLONE, source=source, check=check)


def stream_edit(service, request: EditRequest, output: str, fmt: str, check: bool) -> EngineResult:
    """Stream one round of an edit to ``output``; the take (checked when ``check``) for the record."""
    seed = resolve_seed(request.seed)
    chunks = service.stream_edit(dataclasses.replace(request, seed=seed))
    got = write_stream(iter(chunks), output, fmt)
    return service.finish_stream(got, edit_result_text(request, request.audio_text), seed, request.edit_type,
                                 request.edit_info, source=request.audio, check=check)
