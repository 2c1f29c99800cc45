"""StepAudioTokenizer: a complete tiny Step-Audio-Tokenizer folder through from_pretrained, fixture parity
from raw 24 kHz audio to vq02 codes, interleave, rates, batching, determinism, errors."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stepedit_core.errors import CheckpointError
from stepedit_core.tokenizer.audio_tokenizer import FUNASR_MODEL_ID, AudioTokens, StepAudioTokenizer
from stepedit_core.tokens import AUDIO_TOKEN_OFFSET, interleave_vq0206
from tests.tiny_vq06_onnx import make_tiny_vq06


def build_tiny_tokenizer_folder(root, fixtures_root, *, drop_key: str | None = None):
    """Official layout, with the fixture's small Paraformer encoder and k-means, plus a tiny vq06 ONNX."""
    fx = fixtures_root / "vq02"
    cfg = json.loads((fx / "config.json").read_text())
    enc, fe = cfg["encoder"], cfg["frontend"]
    para = root / FUNASR_MODEL_ID
    para.mkdir(parents=True)
    shutil.copy(fx / "am.mvn", para / "am.mvn")
    (para / "config.yaml").write_text(
        "model: ParaformerStreaming\nencoder: SANMEncoderChunkOpt\nencoder_conf:\n"
        + "".join(f"    {k}: {enc[k]}\n" for k in ("output_size", "attention_heads", "linear_units", "num_blocks",
                                                     "input_layer", "kernel_size", "sanm_shfit",
                                                     "selfattention_layer_type"))
        + "    normalize_before: true\n    chunk_size:\n    - 12\n    - 15\n"
        + "frontend: WavFrontendOnline\nfrontend_conf:\n"
        + "".join(f"    {k}: {fe[k]}\n" for k in ("fs", "window", "n_mels", "frame_length", "frame_shift",
                                                     "lfr_m", "lfr_n"))
        + "predictor: CifPredictorV2\n")
    state = dict(load_file(str(fx / "weights.safetensors")))
    if drop_key:
        state.pop(drop_key)
    state["decoder.embed.0.weight"] = torch.zeros(10, 4)         # the whole ASR model is in model.pt
    state["predictor.cif_output.bias"] = torch.zeros(1)
    torch.save({k: v.clone() for k, v in state.items()}, para / "model.pt")
    io = load_file(str(fx / "io.safetensors"))
    np.save(root / "linguistic_tokenizer.npy", io["kmeans.centroids"].numpy())
    make_tiny_vq06(root / "speech_tokenizer_v1.onnx")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory, fixtures_root):
    return build_tiny_tokenizer_folder(tmp_path_factory.mktemp("hf") / "Step-Audio-Tokenizer", fixtures_root)


@pytest.fixture(scope="module")
def tok(folder):
    return StepAudioTokenizer.from_pretrained(folder, vq06_providers=["CPUExecutionProvider"])


def test_from_raw_24k_audio_matches_official_path(tok, fixtures_root):
    front = load_file(str(fixtures_root / "frontend" / "io.safetensors"))
    ref = load_file(str(fixtures_root / "vq02" / "io.safetensors"))
    wav16 = tok.preprocess(front["wav24_peakcapped"][0].numpy(), 24000)
    assert wav16.shape == (front["wav16_trimmed"].shape[1],)
    np.testing.assert_allclose(wav16, front["wav16_trimmed"][0].numpy(), atol=1e-5)
    out = tok.tokenize(front["wav24_peakcapped"][0], 24000)
    assert isinstance(out, AudioTokens)
    assert list(out.vq02) == ref["out.codes"].tolist()
    assert list(out.vq06) == tok.vq06.encode_feats(front["whisper_logmel128_trimmed"][0]).tolist()
    assert out.num_samples == 41520 and out.duration == pytest.approx(2.595)
    assert list(out.tokens) == interleave_vq0206(out.vq02, out.vq06)
    assert out.groups == min(43 // 2, 65 // 3) == 21 and len(out.tokens) == 105
    assert out.llm_ids == [AUDIO_TOKEN_OFFSET + t for t in out.tokens]
    assert out.token_str.startswith(f"<audio_{out.tokens[0]}><audio_{out.tokens[1]}>")
    with pytest.raises(AttributeError):
        out.vq02 = ()                                          # frozen result


@pytest.mark.parametrize("seconds", [0.2, 3.0, 29.9, 30.1, 75.0])
def test_rates_and_group_counts(tok, seconds):
    n = int(round(seconds * 16000))
    t = np.arange(n) / 16000
    wav = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    out = tok.tokenize(wav, 16000, preprocess=False)
    assert abs(len(out.vq02) - seconds * 50 / 3) <= 1.5        # 4 codes per 240 ms step
    assert abs(len(out.vq06) - seconds * 25) <= 2
    assert out.groups == min(len(out.vq02) // 2, len(out.vq06) // 3)
    assert len(out.tokens) == 5 * out.groups
    assert all(t < 1024 for t in out.tokens[0::5]) and all(t >= 1024 for t in out.tokens[2::5])


def test_batch_equals_single_and_is_deterministic(tok, fixtures_root):
    front = load_file(str(fixtures_root / "frontend" / "io.safetensors"))
    rng = np.random.default_rng(3)
    items = [(front["wav24_peakcapped"][0].numpy(), 24000),
             ((rng.standard_normal(8000 * 2) * 0.2).astype(np.float32), 8000),      # 8 kHz phone audio
             ((rng.standard_normal(44100 * 4) * 0.1).astype(np.float32), 44100)]
    batch = tok.tokenize_batch(items)
    assert len(batch) == 3
    assert batch == [tok.tokenize(w, sr) for w, sr in items]
    assert batch == tok.tokenize_batch(items)
    assert tok(items[0][0], 24000).startswith("<audio_")     # official __call__ (untrimmed string)


def test_official_dither_is_reproducible_with_seed(folder):
    noisy = StepAudioTokenizer.from_pretrained(folder, dither=None)
    assert noisy.vq02.dither == 1.0
    wav = (np.random.default_rng(1).standard_normal(48000) * 0.3).astype(np.float32)
    a = noisy.tokenize(wav, 16000, seed=11)
    assert a == noisy.tokenize(wav, 16000, seed=11)


def test_folder_errors(tmp_path, fixtures_root, folder):
    with pytest.raises(CheckpointError) as err:
        StepAudioTokenizer.from_pretrained(tmp_path)
    assert "linguistic_tokenizer.npy" in err.value.missing and len(err.value.missing) == 5
    bad = build_tiny_tokenizer_folder(tmp_path / "bad", fixtures_root,
                                      drop_key="encoder.encoders.1.self_attn.fsmn_block.weight")
    with pytest.raises(CheckpointError) as err:
        StepAudioTokenizer.from_pretrained(bad)
    assert err.value.missing == ["encoder.encoders.1.self_attn.fsmn_block.weight"]
    # a parent folder holding Step-Audio-Tokenizer/ is accepted too
    assert StepAudioTokenizer.from_pretrained(folder.parent).vq02.centroids.shape == (64, 64)
