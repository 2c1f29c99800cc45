"""vq06: Whisper log-mel parity (fixture frontend/), the ONNX session path on a tiny stand-in, long audio."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stepedit_core.errors import CheckpointError
from stepedit_core.tokenizer import vq06
from tests.tiny_vq06_onnx import make_tiny_vq06


@pytest.fixture(scope="module")
def frontend_io(fixtures_root):
    return load_file(str(fixtures_root / "frontend" / "io.safetensors"))


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return make_tiny_vq06(tmp_path_factory.mktemp("vq06") / "speech_tokenizer_v1.onnx")


@pytest.mark.parametrize("wav_key, mel_key", [("wav16_trimmed", "whisper_logmel128_trimmed"),
                                              ("wav16_transforms_resample", "whisper_logmel128_wav16")])
def test_log_mel_matches_whisper(frontend_io, wav_key, mel_key):
    mel = vq06.log_mel_spectrogram(frontend_io[wav_key][0])
    ref = frontend_io[mel_key][0]
    assert mel.shape == ref.shape
    torch.testing.assert_close(mel, ref, atol=1e-4, rtol=0)


def test_feats_length_and_token_count(frontend_io):
    n = frontend_io["wav16_trimmed"].shape[1]
    assert n // vq06.HOP_LENGTH == int(frontend_io["whisper_logmel128_len"][0]) == 259
    assert vq06.expected_tokens(259) == 65 == round(round(n / 16000, 2) * 25)


def test_slaney_filterbank_shape_and_norm():
    fb = vq06.mel_filters()
    assert fb.shape == (128, 201) and fb.dtype == torch.float32
    assert float(fb.min()) == 0.0 and bool((fb.sum(dim=1) > 0).all())
    # Slaney area normalisation: each (wide, high) triangle integrates to ~1 over its width in Hz
    hz = 16000 / 400
    assert np.allclose((fb.sum(dim=1) * hz)[-30:].numpy(), 1.0, atol=0.05)


def test_onnx_session_on_official_feats(tiny_path, frontend_io):
    tok = vq06.Vq06Tokenizer(tiny_path, providers=["CPUExecutionProvider"])
    assert (tok.feats_name, tok.length_name, tok.n_mels) == ("feats", "feats_length", 128)
    ref = tok.encode_feats(frontend_io["whisper_logmel128_trimmed"][0])
    ours = tok(frontend_io["wav16_trimmed"][0].numpy())
    assert len(ours) == 65 and ours == ref.tolist()
    assert all(0 <= c < 4096 for c in ours)


@pytest.mark.parametrize("seconds", [0.2, 3.0, 29.9, 30.1, 75.0])
def test_token_rate_and_long_audio(tiny_path, seconds):
    tok = vq06.Vq06Tokenizer(tiny_path)
    n = int(round(seconds * 16000))
    wav = (np.random.default_rng(int(seconds * 10)).standard_normal(n) * 0.1).astype(np.float32)
    for split in ("quiet", "official"):
        tok.split = split
        pieces = vq06.split_points(wav, split)
        codes = tok(wav)
        assert len(codes) == sum(vq06.expected_tokens((b - a) // 160) for a, b in pieces)
        assert abs(len(codes) - seconds * 25) <= 2
        assert all(b - a <= vq06.CHUNK_SAMPLES for a, b in pieces)
        assert all(a % vq06.SAMPLES_PER_TOKEN == 0 for a, _ in pieces)       # on the 25 Hz grid


def test_official_split_drops_tiny_tail_and_quiet_split_cuts_in_silence():
    n = 30 * 16000 + 300
    assert vq06.split_points(np.zeros(n, np.float32), "official") == [(0, 480000)]
    assert vq06.split_points(np.zeros(75 * 16000, np.float32), "official") == [
        (0, 480000), (480000, 960000), (960000, 1200000)]
    t = np.arange(50 * 16000) / 16000
    wav = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    wav[int(24.0 * 16000):int(24.3 * 16000)] = 0.0                      # a pause at 24.0-24.3 s
    (a0, b0), (a1, b1) = vq06.split_points(wav, "quiet")
    assert a0 == 0 and b0 == a1 and b1 == len(wav)
    assert 24.0 * 16000 < b0 < 24.3 * 16000 and b0 % 640 == 0
    with pytest.raises(ValueError):
        vq06.split_points(wav, "nope")


def test_wrong_rate_model_raises_clear_error(tmp_path):
    path = make_tiny_vq06(tmp_path / "bad.onnx", second_stride=1)
    tok = vq06.Vq06Tokenizer(path)
    with pytest.raises(CheckpointError, match="25 Hz"):
        tok(np.random.default_rng(0).standard_normal(32000).astype(np.float32))
    with pytest.raises(CheckpointError):
        vq06.Vq06Tokenizer(tmp_path / "missing.onnx")
