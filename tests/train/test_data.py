"""Edit triplets -> training ids (stepedit_core.train.data): the layout is the engine's own inference prompt +
the target's <audio_N> ids + <|EOT|>, checked against real engine requests on the tiny checkpoint; the manifest
builder; tokenized-triplet files."""
from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
import soundfile as sf

import stepedit_core as sc
from stepedit_core.audio import peak_cap
from stepedit_core.errors import InvalidInputError
from stepedit_core.model.llm import IGNORE_INDEX
from stepedit_core.tokens import EOT_ID, to_llm_ids
from stepedit_core.train import data
from tests.train.conftest import random_tokens

SR = 16000
SEED = 3


def _voice(seconds: float, seed: int, f0: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wav = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    wav = wav * (0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t)) * 0.4 + 0.005 * rng.standard_normal(t.size)
    return wav.astype(np.float32)


@pytest.fixture(scope="module")
def engine(ckpt):
    eng = sc.load_engine("stepaudio", model_path=ckpt)
    return eng.with_options(constrained=True, max_new_tokens=10)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("triplet_audio")
    for name, seed, f0 in (("src.wav", 0, 140.0), ("tgt.wav", 1, 180.0), ("spk.wav", 2, 120.0)):
        sf.write(d / name, _voice(1.5, seed, f0), SR)
    return d


def test_edit_training_ids_are_the_engine_prompt_plus_target_plus_eot(engine, text_tok, audio_dir):
    manifest = audio_dir / "edit.csv"
    with manifest.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=data.MANIFEST_COLUMNS)
        w.writeheader()
        w.writerow({"source_audio": "src.wav", "source_text": "hello world", "edit_type": "emotion",
                    "edit_info": "happy", "new_text": "", "target_audio": "tgt.wav"})
    [triplet] = data.build_triplets(data.read_manifest(manifest), data.engine_audio_encoder(engine, SEED))
    example = data.triplet_example(triplet, text_tok.encode)

    result = engine.edit(sc.EditRequest(sc.AudioClip.from_file(str(audio_dir / "src.wav")), "hello world",
                                        "emotion", "happy", seed=SEED))[0]
    engine_prompt = list(result.metadata["pieces"][0]["prompt_ids"])
    target = engine.encode_prompt(peak_cap(sc.AudioClip.from_file(str(audio_dir / "tgt.wav")).samples), SR,
                                  seed=SEED).tokens
    assert triplet.target_tokens == target and len(target) > 0
    assert list(example.input_ids) == engine_prompt + to_llm_ids(target) + [EOT_ID]
    assert example.prompt_len == len(engine_prompt)
    assert list(example.labels) == [IGNORE_INDEX] * len(engine_prompt) + to_llm_ids(target) + [EOT_ID]


def test_clone_training_ids_are_the_engine_prompt_plus_target_plus_eot(engine, text_tok, audio_dir):
    manifest = audio_dir / "clone.jsonl"
    manifest.write_text(json.dumps({"source_audio": "spk.wav", "source_text": "the voice", "edit_type": "clone",
                                    "new_text": "hello world", "target_audio": "tgt.wav"}) + "\n")
    [triplet] = data.build_triplets(data.read_manifest(manifest), data.engine_audio_encoder(engine, SEED))
    example = data.triplet_example(triplet, text_tok.encode)

    result = engine.clone(sc.CloneRequest(sc.AudioClip.from_file(str(audio_dir / "spk.wav")), "the voice",
                                          "hello world", seed=SEED))
    engine_prompt = list(result.metadata["pieces"][0]["prompt_ids"])
    assert triplet.speaker == result.metadata["speaker"] and triplet.speaker.startswith("clone_")
    assert list(example.input_ids) == engine_prompt + to_llm_ids(triplet.target_tokens) + [EOT_ID]
    assert sum(1 for x in example.labels if x != IGNORE_INDEX) == len(triplet.target_tokens) + 1


def test_segment_bos_layout_follows_the_engine_option(text_tok):
    rng = random.Random(0)
    t = data.EditTriplet(random_tokens(rng, 2), "hello", "style", "whisper", random_tokens(rng, 1))
    plain = data.prompt_ids(t, text_tok.encode)
    with_bos = data.prompt_ids(t, text_tok.encode, segment_bos=True)
    assert len(with_bos) > len(plain) and with_bos.count(1) > plain.count(1)


def test_triplets_round_trip_through_jsonl(tmp_path):
    rng = random.Random(1)
    triplets = [data.EditTriplet(random_tokens(rng, 2), "a", "clone", None, random_tokens(rng, 3), "hi", "clone_x"),
                data.EditTriplet(random_tokens(rng, 1), "b", "paralinguistic", None, random_tokens(rng, 2),
                                 "b [Laughter]")]
    assert data.load_triplets(data.save_triplets(triplets, tmp_path / "t.jsonl")) == triplets


@pytest.mark.parametrize("row, message", [
    ({"source_audio": "src.wav", "edit_type": "emotion", "edit_info": "joyful", "target_audio": "tgt.wav"},
     "row 1: unknown emotion option; use one of happy"),
    ({"source_audio": "src.wav", "edit_type": "recolor", "target_audio": "tgt.wav"}, "unknown edit type"),
    ({"source_audio": "nope.wav", "edit_type": "denoise", "target_audio": "tgt.wav"}, "source_audio 'nope.wav'"),
    ({"source_audio": "src.wav", "edit_type": "denoise"}, "missing target_audio"),
    ({"source_audio": "src.wav", "edit_type": "denoise", "target_audio": "tgt.wav", "mood": "x"}, "unknown column"),
])
def test_bad_manifest_rows_name_the_row_and_the_problem(audio_dir, row, message):
    manifest = audio_dir / "bad.jsonl"
    manifest.write_text(json.dumps(row) + "\n")
    with pytest.raises(InvalidInputError, match=message):
        data.read_manifest(manifest)


def test_bad_triplets_are_typed_errors(tmp_path):
    good = (0, 1, 1024, 1025, 1026)
    with pytest.raises(InvalidInputError, match="target_tokens"):
        data.EditTriplet(good, "a", "emotion", "happy", (0, 1, 2, 3, 4))          # vq02 id in a vq06 slot
    with pytest.raises(InvalidInputError, match="new_text"):
        data.EditTriplet(good, "a", "clone", None, good)
    with pytest.raises(InvalidInputError, match="not JSON"):
        (tmp_path / "m.jsonl").write_text("{oops\n")
        data.read_manifest(tmp_path / "m.jsonl")
    with pytest.raises(InvalidInputError, match="line 1"):
        (tmp_path / "t.jsonl").write_text(json.dumps({"source_tokens": [1]}) + "\n")
        data.load_triplets(tmp_path / "t.jsonl")
