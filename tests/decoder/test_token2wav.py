"""token2wav: official non-streaming parity (flow/token2wav_e2e.safetensors) and the streaming path.

Measured here (tiny fixture flow + HiFT, random weights):
- non-streaming vs the official e2e output: mel max |Δ| ~3e-6; waveform max |Δ| ~3e-4, SNR ~64 dB. The
  waveform bound is looser than HiFT's own 1e-4 because the NSF phase is a float32 cumulative sum of f0 over
  the whole utterance, which turns 1e-6 mel differences into ~1e-3 rad phase differences (HiFT alone on the
  official mel is already 2e-4 away).
- streaming flow == the non-streaming flow run with the equivalent block attention masks, to 1e-4 (this is
  what the caches must compute).
- streaming vs full-attention non-streaming with the same noise: mel mean |Δ| ~0.06 (max ~0.8) against a mel
  std of ~1.6, i.e. ~20x closer than two non-streaming runs with different noise (~1.25).
"""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from stepedit_core.decoder.cosyvoice import CosyVoiceDecoder, flow_config_from_dict, load_flow
from stepedit_core.decoder.flow import flow_rows, noise_buffer
from stepedit_core.decoder.hift import HiFTConfig, load_hift
from stepedit_core.decoder.streaming import CHUNK_SIZES, LEFT_CONTEXT_FRAMES, mixed_len

STREAM_GROUPS = 60          # 300 mixed tokens = 180 rows = 7.2 s: chunks 15, 24, 48, 48 + a last one of 45
HEADROOM = 10               # noise buffer frames beyond what is used


@pytest.fixture(scope="module")
def decoder(fixtures_root):
    flow = load_flow(load_file(str(fixtures_root / "flow" / "weights.safetensors")),
                     flow_config_from_dict(json.loads((fixtures_root / "flow" / "config.json").read_text())))
    hift = load_hift(load_file(str(fixtures_root / "hift" / "weights.safetensors")),
                     HiFTConfig.from_dict(json.loads((fixtures_root / "hift" / "config.json").read_text())))
    return CosyVoiceDecoder(flow, hift)


@pytest.fixture(scope="module")
def e2e(fixtures_root):
    return load_file(str(fixtures_root / "flow" / "token2wav_e2e.safetensors"))


def _zero_hift(frames: int):
    return dict(hift_rand_ini=torch.zeros(1, 9), hift_noise=torch.zeros(1, 480 * frames, 9))


def test_token2wav_matches_official(decoder, e2e):
    trace = {}
    wav = decoder.token2wav(e2e["in.token_mixed"], e2e["in.prompt_token_mixed"], e2e["in.prompt_feat_bf16"],
                            e2e["in.embedding_bf16"], flow_noise=e2e["noise.rand_noise_used"],
                            trace=trace, **_zero_hift(42))
    assert (trace["mel"] - e2e["int.mel"]).abs().max() < 5e-4
    ref = e2e["out.speech"]
    assert wav.shape == ref.shape == (1, 42 * 480) and wav.dtype == torch.float32
    err = wav - ref
    assert err.abs().max() < 1e-3
    assert 10 * torch.log10(ref.pow(2).sum() / err.pow(2).sum()) > 50


def test_prepare_aligns_and_rounds(decoder, e2e):
    args = (e2e["in.token_mixed"], e2e["in.prompt_token_mixed"])
    _, prompt, feat, emb = decoder.prepare(*args, e2e["in.prompt_feat_bf16"], e2e["in.embedding_bf16"])
    assert prompt.shape == (1, 24, 2)
    assert torch.equal(feat, e2e["int.prompt_feat_aligned_fp32"])
    assert torch.equal(emb, e2e["int.embedding_fp32"])
    feat32 = e2e["in.prompt_feat_bf16"].float() * (1 + 1e-3)       # off the bf16 grid
    nearest = (torch.arange(48) * 155) // 48                         # floor(i·T_mel / 2·T_prompt)
    _, _, feat, _ = decoder.prepare(*args, feat32, e2e["in.embedding_bf16"])
    assert torch.equal(feat, feat32.to(torch.bfloat16).float()[:, nearest])
    decoder.bf16_roundtrip = False
    try:
        _, _, feat, _ = decoder.prepare(*args, feat32, e2e["in.embedding_bf16"])
    finally:
        decoder.bf16_roundtrip = True
    assert torch.equal(feat, feat32[:, nearest])


def _tokens(n_groups: int, seed: int = 5) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_groups):
        out += torch.randint(0, 1024, (2,), generator=g).tolist()
        out += (1024 + torch.randint(0, 4096, (3,), generator=g)).tolist()
    return out


@pytest.fixture(scope="module")
def streamed(decoder, e2e):
    toks = _tokens(STREAM_GROUPS)
    noise = noise_buffer(1, frames=2 * (24 + 3 * STREAM_GROUPS) + HEADROOM)
    stream = decoder.stream(e2e["in.prompt_token_mixed"], e2e["in.prompt_feat_bf16"], e2e["in.embedding_bf16"],
                            noise=noise, hift_zero_noise=True)
    pieces = [stream.push([t]) for t in toks] + [stream.finish()]
    return dict(toks=toks, noise=noise, stream=stream, pieces=pieces, wav=torch.cat(pieces, dim=1))


def test_stream_chunking(streamed):
    sizes = [p.shape[1] for p in streamed["pieces"] if p.shape[1]]
    # first chunk: 15 rows = 30 frames, minus the 8 held-back frames; later chunks: their own frames
    assert sizes == [(30 - 8) * 480, 48 * 480, 96 * 480, 96 * 480, (90 + 8) * 480]
    assert streamed["wav"].shape[1] == 2 * 3 * STREAM_GROUPS * 480
    assert streamed["stream"].mel.shape == (1, 80, 2 * 3 * STREAM_GROUPS)


def _block_masks(prompt_rows: int, total_rows: int, up: int = 2, left: int = LEFT_CONTEXT_FRAMES):
    """Attention masks that make one full forward compute exactly what the streaming caches compute."""
    block = torch.zeros(prompt_rows + total_rows, dtype=torch.long)
    start, b, sizes = prompt_rows, 1, list(CHUNK_SIZES)
    starts = [0]
    while start < prompt_rows + total_rows:
        size = sizes[0] if prompt_rows + total_rows - start >= sizes[0] + 3 else prompt_rows + total_rows - start
        block[start:start + size] = b
        starts.append(start)
        start, b = start + size, b + 1
        if len(sizes) > 1:
            sizes.pop(0)
    b25 = block
    b50 = block.repeat_interleave(up)
    m25 = b25[None, :] <= b25[:, None]
    m50 = b50[None, :] <= b50[:, None]
    start50 = torch.tensor(starts)[b50] * up                     # first frame of each query's chunk
    j = torch.arange(len(b50))
    in_window = (j[None, :] < up * prompt_rows) | (j[None, :] >= (start50[:, None] - left))
    return m25, m50, m50 & in_window


def test_stream_equals_block_masked_flow(decoder, streamed, e2e):
    flow = decoder.flow
    token, prompt, feat, emb = decoder.prepare(streamed["toks"], e2e["in.prompt_token_mixed"],
                                               e2e["in.prompt_feat_bf16"], e2e["in.embedding_bf16"])
    m25, m50, m_dit = _block_masks(prompt.shape[1], token.shape[1])
    with torch.inference_mode():
        h = flow.encoder(flow.embed_tokens(torch.cat([prompt, token], dim=1)), masks=(m25, m50))
        mu = flow.encoder_proj(h).transpose(1, 2)
        cond = torch.zeros_like(mu)
        cond[:, :, :feat.shape[1]] = feat.transpose(1, 2)
        z = streamed["noise"][:, :, :mu.shape[2]]
        mel = flow.decoder(z, mu, None, flow.project_speaker(emb), cond, decoder.n_timesteps, attn_mask=m_dit)
    ref = mel[:, :, feat.shape[1]:]
    assert (streamed["stream"].mel - ref).abs().max() < 1e-4


def test_stream_close_to_nonstream(decoder, streamed, e2e):
    args = (streamed["toks"], e2e["in.prompt_token_mixed"], e2e["in.prompt_feat_bf16"], e2e["in.embedding_bf16"])
    full = decoder.token2mel(*args, flow_noise=streamed["noise"])
    other = decoder.token2mel(*args, flow_noise=noise_buffer(2, frames=streamed["noise"].shape[-1]))
    diff = (streamed["stream"].mel - full).abs()
    assert diff.mean() < 0.1 * full.std()                       # measured 0.063 vs std 1.59
    assert diff.max() < 1.0                                     # measured 0.78 (first chunk, least context)
    assert diff.mean() < 0.2 * (other - full).abs().mean()      # measured 1/20 of a different noise draw


def test_push_granularity_does_not_matter(decoder, streamed, e2e):
    stream = decoder.stream(e2e["in.prompt_token_mixed"], e2e["in.prompt_feat_bf16"], e2e["in.embedding_bf16"],
                            noise=streamed["noise"], hift_zero_noise=True)
    wav = torch.cat([stream.push(streamed["toks"][:37]), stream.push(streamed["toks"][37:]), stream.finish()], 1)
    assert torch.equal(wav, streamed["wav"])
    stream = decoder.stream(e2e["in.prompt_token_mixed"], e2e["in.prompt_feat_bf16"], e2e["in.embedding_bf16"],
                            noise=streamed["noise"], hift_zero_noise=True)
    assert torch.equal(stream.push(streamed["toks"], last=True), streamed["wav"])   # whole chunks first


def test_short_stream_falls_back_to_one_pass(decoder, e2e):
    noise = noise_buffer(3, frames=200)
    stream = decoder.stream(e2e["in.prompt_token_mixed"], e2e["in.prompt_feat_bf16"], e2e["in.embedding_bf16"],
                            noise=noise, hift_zero_noise=True)
    toks = _tokens(1)[:mixed_len(3) - 1]            # fewer tokens than one lookahead
    assert stream.push(toks).shape == (1, 0)
    wav = stream.finish()
    ref = decoder.token2wav(toks, e2e["in.prompt_token_mixed"], e2e["in.prompt_feat_bf16"],
                            e2e["in.embedding_bf16"], flow_noise=noise, **_zero_hift(6))
    assert torch.allclose(wav, ref, atol=1e-6)


def test_flow_rows_of_stream_chunks_are_whole_groups():
    toks = _tokens(10)
    size = mixed_len(CHUNK_SIZES[0]) + mixed_len(3)
    assert flow_rows(toks[:size]).shape == (1, CHUNK_SIZES[0] + 3, 2)
