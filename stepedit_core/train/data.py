"""Edit triplets and the token layout of one training example (pure: no TRL needed).

A triplet is (source audio + its text, an edit, target audio). For an audio edit the source is the audio
to change; for ``clone`` it is the speaker prompt and the "edit" is the text to say. One training example is
the engine's own inference prompt followed by the target, so what the model learns is exactly what the
engine asks of it at inference::

    input_ids = prompts.build_edit_prompt(...)   # or build_clone_prompt: system, instruction, source tokens
              + <audio_N> ids of the target      # whole 2+3 groups (tokens.py)
              + [<|EOT|>]
    labels    = [-100] * len(prompt) + the target ids + [<|EOT|>]   # loss on the assistant's tokens only

The manifest (CSV with a header, or JSONL) has one row per triplet; columns: ``source_audio``, ``source_text``,
``edit_type`` (a catalog edit type or ``clone``), ``edit_info`` (the option; empty when the type has none),
``new_text`` (clone: the text spoken in the target; paralinguistic: the text with its ``[tags]``), and
``target_audio``. Audio paths are relative to ``audio_root`` (default: the manifest's folder).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .. import catalog
from ..audio import peak_cap
from ..errors import InvalidInputError, TokenStreamError
from ..model import prompts
from ..model.llm import IGNORE_INDEX
from ..tokens import EOT_ID, check_groups, to_llm_ids, tokens_to_str

MANIFEST_COLUMNS = ("source_audio", "source_text", "edit_type", "edit_info", "new_text", "target_audio")
REQUIRED_COLUMNS = ("source_audio", "edit_type", "target_audio")
MAX_CLIP_SECONDS = 30.0          # the engine edits at most 30 s in one piece (longform.MAX_PIECE_S)

Encode = Callable[[str], list[int]]


@dataclass(frozen=True)
class EditTriplet:
    """One supervised example in prompt-token space (0..5119, whole 2+3 groups)."""
    source_tokens: tuple[int, ...]     # edit: the audio to change; clone: the speaker prompt
    source_text: str                   # transcript of the source audio
    edit_type: str                     # catalog.CLONE or one of catalog.AUDIO_EDIT_TYPES
    edit_info: str | None              # the option (emotion, style, speed), None when the type has none
    target_tokens: tuple[int, ...]     # the wanted output
    new_text: str | None = None        # clone: text of the target; paralinguistic: new text with [tags]
    speaker: str = ""                  # clone: the speaker name of the system prompt (official: clone_<hash>)

    def __post_init__(self):
        if self.edit_type not in catalog.EDIT_TYPES:
            raise InvalidInputError(f"unknown edit type {self.edit_type!r}; expected one of "
                                    f"{', '.join(catalog.EDIT_TYPES)}")
        for name in ("source_tokens", "target_tokens"):
            tokens = getattr(self, name)
            if not tokens:
                raise InvalidInputError(f"the triplet has no {name}")
            try:
                check_groups(tokens)
            except TokenStreamError as e:
                raise InvalidInputError(f"{name}: {e}") from None
        if self.edit_type == catalog.CLONE and not (self.new_text or "").strip():
            raise InvalidInputError("a clone triplet needs new_text (the text spoken in the target)")


@dataclass(frozen=True)
class TrainingExample:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]            # IGNORE_INDEX on the prompt
    prompt_len: int

    def record(self) -> dict:
        """The columns TRL's SFTTrainer takes as a pre-tokenized example (labels are kept as given)."""
        return {"input_ids": list(self.input_ids), "labels": list(self.labels)}


def prompt_ids(triplet: EditTriplet, encode: Encode, *, segment_bos: bool = False) -> list[int]:
    """The inference prompt of ``triplet``, built by the engine's own prompt builder (model/prompts.py)."""
    source = tokens_to_str(triplet.source_tokens)
    if triplet.edit_type == catalog.CLONE:
        return prompts.build_clone_prompt(encode, triplet.speaker, triplet.source_text, source, triplet.new_text,
                                          segment_bos=segment_bos)
    prefix = prompts.edit_instruction(triplet.edit_type, triplet.edit_info, triplet.source_text, triplet.new_text)
    return prompts.build_edit_prompt(encode, prefix, source, segment_bos=segment_bos)


def build_example(prompt: Sequence[int], target_tokens: Sequence[int]) -> TrainingExample:
    """Prompt ids + ``<audio_N>`` ids of the target + EOT; labels mask the prompt with IGNORE_INDEX."""
    check_groups(target_tokens)
    completion = to_llm_ids(target_tokens) + [EOT_ID]
    ids = [int(t) for t in prompt] + completion
    labels = [IGNORE_INDEX] * len(prompt) + completion
    return TrainingExample(tuple(ids), tuple(labels), len(prompt))


def triplet_example(triplet: EditTriplet, encode: Encode, *, segment_bos: bool = False) -> TrainingExample:
    return build_example(prompt_ids(triplet, encode, segment_bos=segment_bos), triplet.target_tokens)


# -- manifest ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ManifestRow:
    line: int                          # 1-based row number (data rows; the CSV header is not counted)
    source_audio: Path
    source_text: str
    edit_type: str
    edit_info: str | None
    new_text: str | None
    target_audio: Path


def read_jsonl(path: Path) -> list[dict]:
    """One JSON value per non-empty line; a bad line is an InvalidInputError naming the file and line."""
    out = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InvalidInputError(f"{Path(path).name} line {i} is not JSON: {e.msg}") from None
    return out


def read_manifest(path: str | Path, audio_root: str | Path | None = None) -> list[ManifestRow]:
    """Rows of a ``.csv`` (header required) or ``.jsonl`` manifest; every problem names the row and the column."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"manifest {path.name!r} not found")
    root = Path(audio_root) if audio_root is not None else path.parent
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            raw = list(csv.DictReader(f))
    elif path.suffix.lower() in (".jsonl", ".json"):
        raw = read_jsonl(path)
    else:
        raise InvalidInputError(f"manifest {path.name!r}: expected a .csv or .jsonl file")
    if not raw:
        raise InvalidInputError(f"manifest {path.name!r} has no rows")
    return [_row(i, r, root, path.name) for i, r in enumerate(raw, 1)]


def _row(i: int, r: dict, root: Path, name: str) -> ManifestRow:
    if not isinstance(r, dict):
        raise InvalidInputError(f"{name} row {i} is not an object")
    unknown = sorted(set(r) - set(MANIFEST_COLUMNS))
    if unknown:
        raise InvalidInputError(f"{name} row {i}: unknown column(s) {', '.join(unknown)}; expected "
                                f"{', '.join(MANIFEST_COLUMNS)}")
    clean = {k: (str(v).strip() if v is not None else "") for k, v in r.items()}
    missing = [c for c in REQUIRED_COLUMNS if not clean.get(c)]
    if missing:
        raise InvalidInputError(f"{name} row {i}: missing {', '.join(missing)}")
    edit_type = clean["edit_type"]
    edit_info = clean.get("edit_info") or None
    if edit_type != catalog.CLONE:
        try:
            edit_info = catalog.check_edit(edit_type, edit_info)
        except InvalidInputError as e:
            raise InvalidInputError(f"{name} row {i}: {e}") from None
    audio = {}
    for col in ("source_audio", "target_audio"):
        p = root / clean[col]
        if not p.is_file():
            raise InvalidInputError(f"{name} row {i}: {col} {clean[col]!r} not found")
        audio[col] = p
    return ManifestRow(i, audio["source_audio"], clean.get("source_text", ""), edit_type, edit_info,
                       clean.get("new_text") or None, audio["target_audio"])


# -- triplets from audio -----------------------------------------------------------------------------------

AudioEncoder = Callable[[np.ndarray, int], Sequence[int]]


def engine_audio_encoder(engine, seed: int = 0) -> AudioEncoder:
    """(wav, sr) -> mixed prompt tokens through the engine's own prompt encoder (tokenizer, cached)."""
    return lambda wav, sr: engine.encode_prompt(wav, sr, seed=seed).tokens


def build_triplets(rows: Iterable[ManifestRow], encode_audio: AudioEncoder) -> list[EditTriplet]:
    """Tokenize every row's audio as the engine does at inference: an edit source (and every target) is
    peak-capped first; a clone prompt is tokenized as uploaded and names the speaker with the official hash."""
    from ..interface import AudioClip

    out = []
    for row in rows:
        src = AudioClip.from_file(str(row.source_audio))
        tgt = AudioClip.from_file(str(row.target_audio))
        for what, clip in (("source_audio", src), ("target_audio", tgt)):
            if clip.duration > MAX_CLIP_SECONDS:
                raise InvalidInputError(f"row {row.line}: {what} is {clip.duration:.1f} s; training clips must be "
                                        f"at most {MAX_CLIP_SECONDS:.0f} s")
        clone = row.edit_type == catalog.CLONE
        source = encode_audio(src.samples if clone else peak_cap(src.samples), src.sample_rate)
        target = encode_audio(peak_cap(tgt.samples), tgt.sample_rate)
        speaker = prompts.clone_speaker_name(row.source_text, src.loaded) if clone else ""
        try:
            out.append(EditTriplet(tuple(source), row.source_text, row.edit_type, row.edit_info, tuple(target),
                                   row.new_text, speaker))
        except InvalidInputError as e:
            raise InvalidInputError(f"row {row.line}: {e}") from None
    return out


def sft_records(triplets: Iterable[EditTriplet], encode: Encode, *, segment_bos: bool = False) -> list[dict]:
    return [triplet_example(t, encode, segment_bos=segment_bos).record() for t in triplets]


def save_triplets(triplets: Iterable[EditTriplet], path: str | Path) -> Path:
    """Tokenized triplets as JSONL (tokenize audio once, train many times)."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        for t in triplets:
            f.write(json.dumps({"source_tokens": list(t.source_tokens), "source_text": t.source_text,
                                "edit_type": t.edit_type, "edit_info": t.edit_info,
                                "target_tokens": list(t.target_tokens), "new_text": t.new_text,
                                "speaker": t.speaker}, ensure_ascii=False) + "\n")
    return path


def load_triplets(path: str | Path) -> list[EditTriplet]:
    path = Path(path)
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(EditTriplet(tuple(d["source_tokens"]), d.get("source_text", ""), d["edit_type"],
                                   d.get("edit_info"), tuple(d["target_tokens"]), d.get("new_text"),
                                   d.get("speaker", "")))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise InvalidInputError(f"{path.name} line {i}: not a tokenized triplet ({type(e).__name__}: {e})") \
                from None
        except InvalidInputError as e:
            raise InvalidInputError(f"{path.name} line {i}: {e}") from None
    return out
