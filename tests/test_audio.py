"""Audio I/O and the official prompt preprocessing (stepedit_core/audio.py) against the frontend fixture."""
import io

import numpy as np
import pytest
import soundfile as sf
from safetensors.torch import load_file

from stepedit_core import audio as A
from stepedit_core.errors import AudioDecodeError, InvalidInputError


@pytest.fixture(scope="module")
def frontend(fixtures_root):
    return {k: v.numpy() for k, v in load_file(str(fixtures_root / "frontend" / "io.safetensors")).items()}


def test_peak_cap(frontend):
    capped = A.peak_cap(frontend["wav24_raw"][0])
    np.testing.assert_array_equal(capped, frontend["wav24_peakcapped"][0])
    assert np.abs(capped).max() == pytest.approx(0.6, abs=1e-7)
    quiet = np.full(10, 0.3, np.float32)
    np.testing.assert_array_equal(A.peak_cap(quiet), quiet)


def test_resample_kernels(frontend):
    wav = frontend["wav24_peakcapped"][0]
    np.testing.assert_allclose(A.resample(wav, 24000, 16000), frontend["wav16_functional_resample"][0], atol=1e-6)
    np.testing.assert_allclose(A.resample(wav, 24000, 16000, kernel="transform"),
                               frontend["wav16_transforms_resample"][0], atol=1e-6)


def test_energy_norm_and_trim(frontend):
    normed = A.energy_norm(frontend["wav16_transforms_resample"][0])
    np.testing.assert_allclose(normed, frontend["wav16_energy_norm"][0], atol=1e-7)
    assert A.nonsilent_interval(normed) == tuple(frontend["trim_index"].tolist())
    trimmed = A.trim_silence(normed)
    assert trimmed.shape == frontend["wav16_trimmed"][0].shape == (41520,)
    np.testing.assert_allclose(trimmed, frontend["wav16_trimmed"][0], atol=1e-7)
    np.testing.assert_allclose(A.prepare_for_tokenizer(frontend["wav24_peakcapped"][0], 24000),
                               frontend["wav16_trimmed"][0], atol=1e-6)


def test_energy_norm_floor():
    tiny = np.full(4, 0.001, np.float32)
    np.testing.assert_allclose(A.energy_norm(tiny), tiny / 0.01 * 0.999)


def test_trim_pads_when_speech_starts_at_zero():
    sr = 16000
    wav = np.concatenate([np.sin(np.arange(sr) * 0.1).astype(np.float32), np.zeros(sr, np.float32)])
    start, end = A.nonsilent_interval(wav)
    assert start == 0
    out = A.trim_silence(wav)
    assert np.all(out[:800] == 0)                          # 50 ms of zeros put in front
    assert len(out) == -(-(end - start) // 240) * 240 + 4320


def test_trim_of_digital_silence_keeps_everything_like_librosa():
    # librosa measures dB against the loudest frame; with all-zero input every frame is at 0 dB ("loud")
    assert A.nonsilent_interval(np.zeros(16000, np.float32)) == (0, 16000)
    assert len(A.trim_silence(np.zeros(16000, np.float32))) == 67 * 240 + 4320


def test_any_input_rate_including_8k():
    sr = 8000
    wav = np.sin(2 * np.pi * 200 * np.arange(sr) / sr).astype(np.float32) * 0.5
    out = A.prepare_for_tokenizer(wav, sr)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    up = A.resample(wav, 8000, 16000)
    assert len(up) == 16000
    assert A.resample(wav, 11025, 24000).shape == (int(np.ceil(8000 * 24000 / 11025)),)


@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"),
                                          ("MP3", "MPEG_LAYER_III")])
def test_load_formats_and_mono(tmp_path, fmt, subtype):
    sr = 22050
    t = np.arange(sr // 2) / sr
    stereo = np.stack([np.sin(2 * np.pi * 220 * t), 0.5 * np.sin(2 * np.pi * 330 * t)], axis=1).astype(np.float32) * 0.4
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(str(path), stereo, sr, format=fmt, subtype=subtype)
    loaded = A.load_audio(path)
    assert loaded.sample_rate == sr and loaded.raw.shape[0] == 2
    assert loaded.wav.ndim == 1 and abs(loaded.duration - 0.5) < 0.06
    if fmt in ("WAV", "FLAC"):
        np.testing.assert_allclose(loaded.wav, stereo.mean(axis=1), atol=2e-4)


def test_load_bytes_and_errors(tmp_path):
    buf = io.BytesIO()
    sf.write(buf, np.zeros(1600, np.float32) + 0.1, 16000, format="WAV")
    assert A.load_audio(buf.getvalue()).sample_rate == 16000
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not audio")
    with pytest.raises(AudioDecodeError, match="bad.wav is not an audio file") as err:
        A.load_audio(bad)
    assert str(tmp_path) not in str(err.value)            # the file's own name, never the server's folder
    with pytest.raises(AudioDecodeError):
        A.load_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioDecodeError, match="NaN"):
        A.check_audio(np.array([0.0, np.nan] * 1000, np.float32), 16000)
    with pytest.raises(InvalidInputError, match="too short"):
        A.check_audio(np.zeros(10, np.float32), 16000)
    with pytest.raises(AudioDecodeError, match="empty"):
        A.check_audio(np.zeros(0, np.float32), 16000)


def test_int16_input_is_scaled():
    wav = A.check_audio(np.full(3200, 16384, np.int16), 16000)
    assert wav.dtype == np.float32 and wav[0] == pytest.approx(0.5)


def test_write_wav_does_not_normalise(tmp_path):
    wav = (0.1 * np.sin(np.arange(24000) * 0.05)).astype(np.float32)
    path = A.write_wav(tmp_path / "o.wav", wav)
    back, sr = sf.read(path, dtype="float32")
    assert sr == 24000 and abs(np.abs(back).max() - 0.1) < 1e-3
    loud = A.write_wav(tmp_path / "l.wav", np.full(100, 2.0, np.float32))
    assert sf.read(loud, dtype="float32")[0].max() <= 1.0


def test_crossfade_concat_lengths():
    a, b = np.ones(1000, np.float32), np.ones(1000, np.float32)
    out = A.crossfade_concat([a, b], 24000, fade_s=0.01)
    assert len(out) == 2000 - 240
    assert out.max() <= np.sqrt(2) + 1e-6                    # equal-power fade of equal signals peaks at sqrt 2


def test_long_multichannel_files_keep_the_speaker_hash_without_their_channels(tmp_path, monkeypatch):
    """Past RAW_KEEP_SAMPLES a file keeps only the samples the official speaker hash reads: same hash, same mono
    mix as decoding it whole, block by block or not."""
    from stepedit_core.model.prompts import clone_speaker_name
    rng = np.random.default_rng(3)
    data = (0.2 * rng.standard_normal((50_000, 3))).astype(np.float32)       # (N, C)
    path = tmp_path / "three.wav"
    sf.write(str(path), data, 16000, subtype="FLOAT")
    whole = A.load_audio(path)
    monkeypatch.setattr(A, "RAW_KEEP_SAMPLES", 1000)
    monkeypatch.setattr(A, "DECODE_BLOCK_FRAMES", 777)
    edges = A.load_audio(path)
    assert whole.raw.shape == (3, 50_000) and edges.raw.shape == (1, 2 * A.SPEAKER_HASH_EDGE_SAMPLES)
    assert clone_speaker_name("text", edges.raw) == clone_speaker_name("text", whole.raw) \
        == clone_speaker_name("text", np.ascontiguousarray(data.T))
    np.testing.assert_array_equal(edges.wav, whole.wav)
    np.testing.assert_allclose(whole.wav, data.mean(axis=1), atol=1e-7)
