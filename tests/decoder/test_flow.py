"""Flow decoder parity with the official CausalMaskedDiffWithXvec (tests/fixtures/flow), plus layout checks.

Tolerances (fixture README): h / mu / single estimator call atol 1e-4, out.mel atol 5e-4, reshape exact.
The intermediates are compared stage by stage, so a failure says where the difference starts.
"""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from stepedit_core.decoder.cosyvoice import flow_config_from_dict
from stepedit_core.decoder.flow import (CausalMaskedDiffWithXvec, FlowConfig, cosine_t_span, noise_buffer,
                                NOISE_BUFFER_FRAMES)
from stepedit_core.tokens import reshape_for_flow

ATOL_STAGE = 1e-4
ATOL_MEL = 5e-4


@pytest.fixture(scope="module")
def flow_dir(fixtures_root):
    return fixtures_root / "flow"


@pytest.fixture(scope="module")
def io(flow_dir):
    return load_file(str(flow_dir / "io.safetensors"))


@pytest.fixture(scope="module")
def flow(flow_dir):
    torch.manual_seed(0)
    cfg = flow_config_from_dict(json.loads((flow_dir / "config.json").read_text()))
    model = CausalMaskedDiffWithXvec(cfg).eval()
    model.load_state_dict(load_file(str(flow_dir / "weights.safetensors")), strict=True)
    return model


def _max_diff(a, b):
    return (a.float() - b.float()).abs().max().item()


@pytest.mark.parametrize("name", ["len1", "len2", "len3", "len4", "len5", "len7", "prompt", "gen"])
def test_reshape_matches_official(io, name):
    out = torch.from_numpy(reshape_for_flow(io[f"reshape.{name}.in"].tolist()))
    assert torch.equal(out, io[f"reshape.{name}.out"])


@pytest.fixture(scope="module")
def run(flow, io):
    token = torch.from_numpy(reshape_for_flow(io["in.token_mixed"][0].tolist()))[None]
    prompt = torch.from_numpy(reshape_for_flow(io["in.prompt_token_mixed"][0].tolist()))[None]
    feat = F.interpolate(io["in.prompt_feat_raw"].transpose(1, 2), size=2 * prompt.shape[1],
                         mode="nearest").transpose(1, 2)
    trace = {}
    mel = flow.inference(token, prompt, feat, io["in.embedding"], noise=io["noise.rand_noise_used"], trace=trace)
    return dict(token=token, prompt=prompt, feat=feat, trace=trace, mel=mel)


def test_prep(run, io):
    assert torch.equal(run["token"], io["prep.token_reshaped"])
    assert torch.equal(run["prompt"], io["prep.prompt_token_reshaped"])
    assert torch.equal(run["feat"], io["prep.prompt_feat_aligned"])


@pytest.mark.parametrize("key", ["spk_projected", "input_embedding_masked", "enc.embed_xs", "enc.embed_pos_emb",
                                 "enc.pre_lookahead_out", "enc.encoders_out", "enc.up_layer_out",
                                 "enc.up_embed_xs", "enc.up_embed_pos_emb", "enc.up_encoders_out",
                                 "h_encoder_out", "mu", "cond"])
def test_encoder_intermediates(run, io, key):
    got, want = run["trace"][key], io[f"int.{key}"]
    assert got.shape == want.shape
    assert _max_diff(got, want) < ATOL_STAGE, key


def test_solver_steps(run, io):
    tr = run["trace"]
    assert torch.allclose(cosine_t_span(10), io["int.t_span"], atol=1e-7)
    assert _max_diff(torch.cat(tr["est_t"]), io["int.est_t"]) < 1e-6
    x_in, est = torch.stack(tr["est_x_in"]), torch.stack(tr["est_out"])
    assert x_in.shape == io["int.est_x_in"].shape and est.shape == io["int.est_out"].shape
    for k in range(est.shape[0]):   # step by step: the first bad step is the one reported
        assert _max_diff(x_in[k], io["int.est_x_in"][k]) < ATOL_MEL, f"x entering step {k}"
        assert _max_diff(est[k], io["int.est_out"][k]) < ATOL_STAGE * 5, f"estimator output at step {k}"


def test_out_mel(run, io):
    assert run["mel"].shape == io["out.mel"].shape == (1, 80, 2 * run["token"].shape[1])
    assert _max_diff(run["mel"], io["out.mel"]) < ATOL_MEL


def test_estimator_single_call(flow, io):
    est = flow.decoder.estimator
    t = io["est_single.t"]
    assert _max_diff(est.t_embedder.timestep_embedding(t * 1000), io["est_single.t_freq"]) < ATOL_STAGE
    assert _max_diff(est.t_embedder(t), io["est_single.t_emb"]) < ATOL_STAGE
    out = est(io["est_single.x"], io["est_single.mask"], io["est_single.mu"], t, io["est_single.spks"],
              io["est_single.cond"])
    assert _max_diff(out, io["est_single.out"]) < ATOL_STAGE


def test_padding_mask_path(flow, io):
    """A key-padding mask with a masked tail leaves the valid frames' velocity independent of the tail."""
    est = flow.decoder.estimator
    x, mu, cond, spks, t = (io[f"est_single.{k}"] for k in ("x", "mu", "cond", "spks", "t"))
    mask = torch.ones(2, 1, 30)
    mask[:, :, 20:] = 0
    out_a = est(x, mask, mu, t, spks, cond)
    x2 = x.clone()
    x2[:, :, 20:] += 3.0      # padded frames: hidden from attention, and the convs only look left
    out_b = est(x2, mask, mu, t, spks, cond)
    assert _max_diff(out_a[:, :, :20], out_b[:, :, :20]) < 1e-6


def test_default_noise_is_seeded(flow, run, io):
    a = flow.inference(run["token"], run["prompt"], run["feat"], io["in.embedding"], n_timesteps=2, seed=3)
    b = flow.inference(run["token"], run["prompt"], run["feat"], io["in.embedding"], n_timesteps=2, seed=3)
    c = flow.inference(run["token"], run["prompt"], run["feat"], io["in.embedding"], n_timesteps=2, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    buf = noise_buffer(seed=1)
    assert buf.shape == (1, 80, NOISE_BUFFER_FRAMES) and torch.equal(buf, noise_buffer(seed=1))
    d = flow.inference(run["token"], run["prompt"], run["feat"], io["in.embedding"], n_timesteps=2, noise=buf)
    e = flow.inference(run["token"], run["prompt"], run["feat"], io["in.embedding"], n_timesteps=2,
                       noise=buf[:, :, :90].clone())
    assert torch.equal(d, e)   # official fixed buffer: z = buffer[:, :, :T]


def test_real_size_layout_matches_manifest(fixtures_root):
    """The EditX config built on the meta device has exactly flow.pt's 605 names and shapes."""
    manifest = json.loads((fixtures_root / "manifests" / "flow_pt.json").read_text())
    with torch.device("meta"):
        model = CausalMaskedDiffWithXvec(flow_config_from_dict(manifest["config"]))
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    want = {t["key"]: t["shape"] for t in manifest["tensors"]}
    assert len(want) == 605
    assert got == want
    assert sum(v.numel() for v in model.state_dict().values()) == manifest["num_elements"]
    assert FlowConfig() == flow_config_from_dict(manifest["config"])   # defaults are the EditX values


# measured on this fixture (same noise, fp32 reference): int8 estimator mel drift 0.032 relative L2, against
# 0.98 for a different noise draw. The bound leaves ~1.8x headroom.
INT8_MEL_DRIFT_BOUND = 0.06


def test_int8_estimator_tracks_fp32(flow, run, io):
    import copy

    from stepedit_core.decoder.flow import quantize_estimator_int8
    q = copy.deepcopy(flow)
    est = q.decoder.estimator
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in est.modules())
    n_conv = sum(isinstance(m, torch.nn.Conv1d) for m in est.modules())
    assert quantize_estimator_int8(q) == n_linear + n_conv and n_conv == 2 * len(est.blocks)
    assert not any(isinstance(m, (torch.nn.Linear, torch.nn.Conv1d)) for m in est.modules())
    assert any(isinstance(m, torch.nn.Linear) for m in q.encoder.modules())          # the encoder stays fp32
    mel = q.inference(run["token"], run["prompt"], run["feat"], io["in.embedding"], noise=io["noise.rand_noise_used"])
    other = flow.inference(run["token"], run["prompt"], run["feat"], io["in.embedding"], seed=5)

    def rel(a, b):
        return ((a - b).norm() / b.norm()).item()
    drift = rel(mel, run["mel"])
    assert 0 < drift < INT8_MEL_DRIFT_BOUND
    assert drift < rel(other, run["mel"]) / 10


def test_conv_as_linear_is_the_conv(flow):
    from stepedit_core.decoder.flow import ConvAsLinear
    conv = flow.decoder.estimator.blocks[0].conv.block[1]
    x = torch.randn(2, conv.in_channels, 17)
    assert _max_diff(ConvAsLinear(conv)(x), conv(x)) < 1e-5
