"""vq02 parity with the official streaming Paraformer path (fixture vq02/) and batched == streaming."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stepedit_core.compat import import_torchaudio
from stepedit_core.errors import CheckpointError
from stepedit_core.tokenizer import vq02
from stepedit_core.tokenizer.audio_tokenizer import load_cmvn, load_paraformer_config

MANIFEST = "manifests/paraformer_encoder.json"


@pytest.fixture(scope="module")
def fx(fixtures_root):
    root = fixtures_root / "vq02"
    cfg = json.loads((root / "config.json").read_text())
    e = cfg["encoder"]
    ecfg = vq02.EncoderConfig(input_size=e["input_size"], output_size=e["output_size"],
                              attention_heads=e["attention_heads"], linear_units=e["linear_units"],
                              num_blocks=e["num_blocks"], kernel_size=e["kernel_size"], sanm_shfit=e["sanm_shfit"])
    w = load_file(str(root / "weights.safetensors"))
    enc = vq02.build_encoder(ecfg, {k[len("encoder."):]: v for k, v in w.items()})
    io = load_file(str(root / "io.safetensors"))
    stream = vq02.StreamConfig(tuple(cfg["infer_encoder"]["chunk_size"]), cfg["infer_encoder"]["encoder_chunk_look_back"])
    tok = vq02.Vq02Tokenizer(enc, load_cmvn(root / "am.mvn"), io["kmeans.centroids"], stream=stream)
    return tok, io


class _Fail(Exception):
    pass


def _reference_stream_frontend(wav, fe, st, cmvn):
    """The official infer_encoder chunk loop around WavFrontendOnline.forward, with its caches, written
    out step by step (kaldi.fbank per chunk, waveform carry-over, LFR splice cache, final padding)."""
    ta = import_torchaudio()
    left = (fe.lfr_m - 1) // 2

    def apply_lfr(rows, final):
        t_lfr = math.ceil((rows.shape[0] - left) / fe.lfr_n)
        frames, splice_idx = [], t_lfr
        for i in range(t_lfr):
            if fe.lfr_m <= rows.shape[0] - i * fe.lfr_n:
                frames.append(rows[i * fe.lfr_n:i * fe.lfr_n + fe.lfr_m].reshape(-1))
            elif final:
                tail = rows[i * fe.lfr_n:]
                pad = rows[-1:].repeat(fe.lfr_m - tail.shape[0], 1)
                frames.append(torch.cat([tail, pad]).reshape(-1))
            else:
                splice_idx = i
                break
        if not frames:
            raise _Fail("vstack of an empty list")
        keep = rows[min(rows.shape[0] - 1, splice_idx * fe.lfr_n):]
        return (torch.stack(frames) + cmvn[0]) * cmvn[1], keep

    cache, splice, out = torch.empty(0, dtype=torch.float64), None, []
    n_chunks = wav.numel() // st.stride_samples + 1
    for i in range(n_chunks):
        final = i == n_chunks - 1
        x = wav[i * st.stride_samples:(i + 1) * st.stride_samples].double()
        if final and x.numel() == 0:
            break
        try:
            inp = torch.cat([cache, x])
            n_frames = (inp.numel() - fe.win) // fe.hop + 1 if inp.numel() >= fe.win else 0
            cache = inp[inp.numel() - (inp.numel() - n_frames * fe.hop):]
            feats = None
            if n_frames:
                fb = ta.compliance.kaldi.fbank((inp * 32768)[None], num_mel_bins=fe.n_mels, frame_length=25,
                                               frame_shift=10, dither=0.0, energy_floor=0.0,
                                               window_type="hamming", sample_frequency=fe.fs).float()
                if splice is None:
                    splice = fb[:1].repeat(left, 1)
                if fb.shape[0] + splice.shape[0] >= fe.lfr_m:
                    feats, splice = apply_lfr(torch.cat([splice, fb]), final)
                else:
                    splice = torch.cat([splice, fb])
            elif final:
                if splice is None:
                    raise _Fail("torch.stack of an empty splice cache")
                feats, splice = apply_lfr(splice, True)
        except _Fail:
            if final and x.numel() < 480:
                break
            raise
        if feats is None:
            assert final, "the official encoder would crash on an empty non-final chunk"
            break
        out.append(feats)
    return out


def test_fbank_equals_torchaudio_kaldi():
    ta = import_torchaudio()
    wav = torch.from_numpy(np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32))
    ref = ta.compliance.kaldi.fbank((wav.double() * 32768)[None], num_mel_bins=80, frame_length=25, frame_shift=10,
                                    dither=0.0, energy_floor=0.0, window_type="hamming", sample_frequency=16000)
    ours = vq02.kaldi_fbank(wav, vq02.FrontendConfig())
    assert ours.shape == (1 + (8000 - 400) // 160, 80)
    torch.testing.assert_close(ours, ref.float(), atol=1e-5, rtol=1e-6)


def test_frontend_matches_official_chunks(fx):
    tok, io = fx
    wav = io["in.wav16"][0]
    feats, counts = tok.features(wav)
    n_chunks = len([k for k in io if k.endswith(".feats_len")])
    assert counts == [int(io[f"chunk{i:02d}.feats_len"][0]) for i in range(n_chunks)]
    # float32 fbank roundoff on near-empty low mel bands reaches ~1e-4 relative; we compute it in float64
    torch.testing.assert_close(feats, io["frontend.feats_all"][0], atol=1e-4, rtol=1e-4)
    start = 0
    for i, c in enumerate(counts):
        torch.testing.assert_close(feats[start:start + c], io[f"chunk{i:02d}.feats"][0], atol=1e-4, rtol=1e-4)
        start += c


def test_streaming_reference_matches_official(fx):
    tok, io = fx
    feats = io["frontend.feats_all"][0]
    counts = [int(io[f"chunk{i:02d}.feats_len"][0]) for i in range(len(vq02.stream_chunk_frames(
        io["in.wav16"].shape[1], tok.frontend, tok.stream)))]
    windows = []
    with torch.inference_mode():
        out = tok.encoder.encode_streaming(feats, counts, tok.stream, windows)
    for i, w in enumerate(windows):
        torch.testing.assert_close(w, io[f"chunk{i:02d}.enc_out_full"][0], atol=1e-4, rtol=0)
    torch.testing.assert_close(out, io["out.enc_out"][0], atol=1e-4, rtol=0)


def test_end_to_end_codes_and_batched_path(fx):
    tok, io = fx
    wav = io["in.wav16"][0]
    fast, = tok.encode([wav])
    ref, = tok.encode([wav], streaming=True)
    torch.testing.assert_close(fast, io["out.enc_out"][0], atol=1e-4, rtol=0)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=0)
    codes, = tok([wav])
    assert codes.tolist() == io["out.codes"].tolist()


@pytest.mark.parametrize("n", [480, 900, 3839, 3840, 3840 + 399, 3840 + 400, 3840 + 1200, 7680, 4320 + 240 * 37,
                               41520, 16000 * 3 + 77])
def test_batched_equals_streaming_reference(fx, n):
    """The window-batched encoder is the official chunk loop, for every final-chunk situation."""
    tok, _ = fx
    g = torch.Generator().manual_seed(n)
    wav = (torch.rand(n, generator=g) - 0.5) * 0.8
    feats, counts = tok.features(wav)
    assert sum(counts) == feats.shape[0]
    ref, = tok.encode([wav], streaming=True)
    fast, = tok.encode([wav])
    assert fast.shape == ref.shape
    torch.testing.assert_close(fast, ref, atol=2e-5, rtol=0)


def test_batch_of_utterances_equals_one_by_one(fx):
    tok, io = fx
    wavs = [io["in.wav16"][0], io["in.wav16"][0][:9000] * 0.5, io["in.wav16"][0][5000:30000]]
    together = tok(wavs)
    alone = [tok([w])[0] for w in wavs]
    assert [t.tolist() for t in together] == [a.tolist() for a in alone]


@pytest.mark.parametrize("n", [400, 480, 719, 900, 3839, 3840, 3840 + 79, 3840 + 80, 3840 + 399, 3840 + 400,
                               3840 + 719, 3840 + 720, 3840 + 1200, 7680, 7680 + 3839, 4320 + 240 * 37, 41520])
def test_frontend_equals_reference_stream(fx, n):
    """Utterance-level fbank + LFR with replayed counts == the chunk-by-chunk official front end."""
    tok, _ = fx
    wav = (torch.rand(n, generator=torch.Generator().manual_seed(n)) - 0.5) * 0.8
    ref = _reference_stream_frontend(wav, tok.frontend, tok.stream, tok.cmvn)
    feats, counts = tok.features(wav)
    assert counts == [r.shape[0] for r in ref]
    if counts:
        torch.testing.assert_close(feats, torch.cat(ref), atol=1e-5, rtol=1e-5)


def test_stream_counts_follow_official_rules():
    fe, st = vq02.FrontendConfig(), vq02.StreamConfig()
    # first chunk: 22 fbank frames -> 4 LFR frames; later chunks 24 -> 4; N % 3840 == 0 -> no final padding
    assert vq02.stream_chunk_frames(3840 * 3, fe, st) == [4, 4, 4]
    # 41520 = 10 * 3840 + 3120: final chunk 3120 + 320 carried samples -> 19 frames -> ceil(17/6) = 3
    assert vq02.stream_chunk_frames(41520, fe, st) == [4] * 10 + [3]
    # a final chunk of 400..719 samples gives too few rows for the splice: nothing is emitted
    assert vq02.stream_chunk_frames(3840 + 500, fe, st) == [4]
    # trimmed prompts are n*240 + 4320 samples: about 50/3 frames per second
    for n in (10, 100, 1000):
        total = sum(vq02.stream_chunk_frames(4320 + 240 * n, fe, st))
        assert abs(total - (4320 + 240 * n) / 16000 * 50 / 3) <= 1.5


def test_dither_is_seeded_and_off_by_default(fx):
    tok, io = fx
    wav = io["in.wav16"][0]
    assert tok([wav])[0].tolist() == tok([wav])[0].tolist()
    tok.dither = 1.0
    try:
        a = tok([wav], torch.Generator().manual_seed(5))[0]
        b = tok([wav], torch.Generator().manual_seed(5))[0]
        c = tok.features(wav, torch.Generator().manual_seed(6))[0]
    finally:
        tok.dither = 0.0
    assert a.tolist() == b.tolist()
    assert not torch.equal(c, tok.features(wav)[0])


def test_real_config_matches_manifest(fixtures_root):
    """The module built at the real config has exactly the 652 official encoder keys and shapes."""
    man = json.loads((fixtures_root / MANIFEST).read_text())
    c = man["config"]
    cfg = vq02.EncoderConfig(input_size=c["input_size"], output_size=c["output_size"],
                             attention_heads=c["attention_heads"], linear_units=c["linear_units"],
                             num_blocks=c["num_blocks"], kernel_size=c["kernel_size"], sanm_shfit=c["sanm_shfit"])
    with torch.device("meta"):
        enc = vq02.SANMEncoderChunkOpt(cfg)
    ours = {"encoder." + k: list(v.shape) for k, v in enc.state_dict().items()}
    assert ours == {t["key"]: t["shape"] for t in man["tensors"]}
    assert len(ours) == man["num_tensors"] == 652
    state = {k[len("encoder."):]: torch.empty(s, device="meta") for k, s in ours.items()}
    vq02.build_encoder(cfg, state)                              # strict check passes on meta tensors
    bad = dict(state)
    bad.pop("after_norm.bias")
    bad["encoders.3.norm1.weight"] = torch.empty(7, device="meta")
    bad["decoder.x"] = torch.empty(1, device="meta")
    with pytest.raises(CheckpointError) as err:
        vq02.build_encoder(cfg, bad)
    assert err.value.missing == ["encoder.after_norm.bias"]
    assert err.value.unexpected == ["encoder.decoder.x"]
    assert len(err.value.mismatched) == 1


def test_cmvn_parse_and_config_yaml(tmp_path, fixtures_root):
    cmvn = load_cmvn(fixtures_root / "vq02" / "am.mvn")
    assert cmvn.shape == (2, 560) and cmvn.dtype == torch.float32
    assert float(cmvn[0].mean()) < -5 and 0.05 < float(cmvn[1].mean()) < 1
    (tmp_path / "config.yaml").write_text(
        "encoder: SANMEncoderChunkOpt\nencoder_conf:\n  output_size: 512\n  attention_heads: 4\n"
        "  linear_units: 2048\n  num_blocks: 50\n  input_layer: pe_online\n  kernel_size: 11\n  sanm_shfit: 0\n"
        "  chunk_size: [12, 15]\nfrontend: WavFrontendOnline\nfrontend_conf:\n  fs: 16000\n  window: hamming\n"
        "  n_mels: 80\n  frame_length: 25\n  frame_shift: 10\n  lfr_m: 7\n  lfr_n: 6\n")
    fe, enc = load_paraformer_config(tmp_path / "config.yaml")
    assert fe == vq02.FrontendConfig() and fe.dither == 1.0
    assert enc == vq02.EncoderConfig()
    assert math.isclose(vq02.StreamConfig().stride_samples / 16000, 0.24)
