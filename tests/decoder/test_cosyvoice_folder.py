"""A complete tiny CosyVoice-300M-25Hz folder (cosyvoice.yaml with hyperpyyaml tags, flow.pt, hift.pt,
campplus.onnx) loaded through the public loader; the yaml is read as data, never executed."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stepedit_core.decoder.cosyvoice import CosyVoiceDecoder, Tagged, read_configs, read_cosyvoice_yaml
from stepedit_core.decoder.flow import FlowConfig
from stepedit_core.errors import CheckpointError, ModelUnavailableError
from tests.tiny_cosyvoice import build_tiny_cosyvoice, cosyvoice_yaml


@pytest.fixture(scope="module")
def fixture_folder(tmp_path_factory):
    return build_tiny_cosyvoice(tmp_path_factory.mktemp("cv") / "CosyVoice-300M-25Hz", weights="fixtures")


@pytest.fixture(scope="module")
def random_folder(tmp_path_factory):
    return build_tiny_cosyvoice(tmp_path_factory.mktemp("cvr") / "CosyVoice-300M-25Hz", seed=3)


def test_yaml_is_read_as_data(fixture_folder):
    data = read_cosyvoice_yaml(fixture_folder / "cosyvoice.yaml")
    assert isinstance(data["flow"], Tagged) and data["flow"].tag == "!new:"
    assert data["flow"].target == "stepvocoder.cosyvoice2.flow.flow.CausalMaskedDiffWithXvec"
    assert data["flow"].kwargs["spk_embed_dim"] == 192                  # !ref <spk_embed_dim> resolved
    assert data["hift"].kwargs["sampling_rate"] == 24000
    assert data["mel_conf"]["sampling_rate"] == 24000
    seed = data["__set_seed3"]
    assert isinstance(seed, Tagged) and seed.tag == "!apply:" and seed.target == "torch.manual_seed"
    assert seed.args == [1986]


def test_configs_from_yaml_match_fixture_configs(fixture_folder, fixtures_root):
    flow_cfg, hift_cfg = read_configs(fixture_folder)
    from stepedit_core.decoder.cosyvoice import flow_config_from_dict
    from stepedit_core.decoder.hift import HiFTConfig
    assert flow_cfg == flow_config_from_dict(json.loads((fixtures_root / "flow" / "config.json").read_text()))
    assert hift_cfg == HiFTConfig.from_dict(json.loads((fixtures_root / "hift" / "config.json").read_text()))
    assert flow_cfg != FlowConfig()


def test_tags_are_never_executed(tmp_path):
    marker = tmp_path / "executed"
    text = cosyvoice_yaml() + f"danger: !apply:pathlib.Path.touch ['{marker}']\n"
    (tmp_path / "cosyvoice.yaml").write_text(text)
    data = read_cosyvoice_yaml(tmp_path / "cosyvoice.yaml")
    assert isinstance(data["danger"], Tagged) and not marker.exists()
    (tmp_path / "cosyvoice.yaml").write_text(text + "evil: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(CheckpointError):
        read_cosyvoice_yaml(tmp_path / "cosyvoice.yaml")


def test_folder_reproduces_official_token2wav(fixture_folder, fixtures_root):
    dec = CosyVoiceDecoder.from_pretrained(fixture_folder, device="cpu")
    e2e = load_file(str(fixtures_root / "flow" / "token2wav_e2e.safetensors"))
    wav = dec.token2wav(e2e["in.token_mixed"], e2e["in.prompt_token_mixed"], e2e["in.prompt_feat_bf16"],
                        e2e["in.embedding_bf16"], flow_noise=e2e["noise.rand_noise_used"],
                        hift_rand_ini=torch.zeros(1, 9), hift_noise=torch.zeros(1, 42 * 480, 9))
    assert (wav - e2e["out.speech"]).abs().max() < 1e-3          # see tests/decoder/test_token2wav.py for the bound


def test_random_folder_end_to_end(random_folder):
    dec = CosyVoiceDecoder.from_pretrained(random_folder, device="cpu", n_timesteps=4)
    t = np.arange(24000 * 2) / 24000
    clip = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    feat, emb = dec.prompt_features(clip, 24000)
    assert feat.shape == (1, 100, 80) and emb.shape == (1, 192)
    prompt = [1, 2, 1025, 1026, 1027] * 4                      # 12 rows -> 24 prompt mel frames
    token = [5, 6, 2000, 2001, 2002] * 3                       # 9 rows -> 18 frames -> 8640 samples
    a = dec.token2wav(torch.tensor([token]), torch.tensor([prompt]), feat, emb, flow_seed=1, hift_seed=2)
    b = dec.token2wav(token, prompt, feat, emb, flow_seed=1, hift_seed=2)
    assert a.shape == (1, 18 * 480) and torch.isfinite(a).all() and a.abs().max() <= 0.99
    assert torch.equal(a, b)


def test_missing_campplus_leaves_no_frontend(tmp_path):
    folder = build_tiny_cosyvoice(tmp_path / "cv", campplus=False)
    dec = CosyVoiceDecoder.from_pretrained(folder)
    with pytest.raises(ModelUnavailableError):
        dec.prompt_features(np.zeros(24000, np.float32), 24000)


def _rewrite_flow(folder, edit):
    sd = torch.load(folder / "flow.pt", weights_only=True)
    edit(sd)
    torch.save(sd, folder / "flow.pt")


@pytest.mark.parametrize("edit, field", [
    (lambda sd: sd.pop("encoder_proj.bias"), "missing"),
    (lambda sd: sd.__setitem__("extra.weight", torch.zeros(1)), "unexpected"),
    (lambda sd: sd.__setitem__("encoder_proj.bias", torch.zeros(81)), "mismatched"),
])
def test_strict_flow_keys(tmp_path, edit, field):
    folder = build_tiny_cosyvoice(tmp_path / "cv", campplus=False)
    _rewrite_flow(folder, edit)
    with pytest.raises(CheckpointError) as info:
        CosyVoiceDecoder.from_pretrained(folder)
    assert len(getattr(info.value, field)) == 1


def test_strict_hift_keys(tmp_path):
    folder = build_tiny_cosyvoice(tmp_path / "cv", campplus=False)
    sd = torch.load(folder / "hift.pt", weights_only=True)
    sd.pop("conv_post.bias")
    torch.save(sd, folder / "hift.pt")
    with pytest.raises(CheckpointError):
        CosyVoiceDecoder.from_pretrained(folder)


def test_manifest_check(tmp_path, fixtures_root):
    folder = build_tiny_cosyvoice(tmp_path / "cv", campplus=False)
    with pytest.raises(CheckpointError) as info:
        CosyVoiceDecoder.from_pretrained(folder, flow_manifest=fixtures_root / "manifests" / "flow_pt.json")
    assert info.value.mismatched


def test_pickled_objects_are_refused(tmp_path):
    folder = build_tiny_cosyvoice(tmp_path / "cv", campplus=False)
    torch.save({"flow": FlowConfig()}, folder / "flow.pt")       # not weights_only-loadable
    with pytest.raises(CheckpointError):
        CosyVoiceDecoder.from_pretrained(folder)
    (folder / "flow.pt").unlink()
    with pytest.raises(ModelUnavailableError):
        CosyVoiceDecoder.from_pretrained(folder)


@pytest.mark.parametrize("old, new, error", [
    ("hifigan.generator.HiFTGenerator", "hifigan.generator.CausalHiFTGenerator", ModelUnavailableError),
    ("decoder_dit.DiT", "decoder.ConditionalDecoder", ModelUnavailableError),
    ("num_blocks: 2", "num_blocks: 2\n        use_cnn_module: True", CheckpointError),
    ("pos_enc_layer_type: 'rel_pos_espnet'", "pos_enc_layer_type: 'abs_pos'", CheckpointError),
])
def test_unsupported_yaml(tmp_path, old, new, error):
    folder = build_tiny_cosyvoice(tmp_path / "cv", campplus=False)
    text = (folder / "cosyvoice.yaml").read_text()
    assert old in text
    (folder / "cosyvoice.yaml").write_text(text.replace(old, new, 1))
    with pytest.raises(error):
        CosyVoiceDecoder.from_pretrained(folder)


def test_legacy_serialization_loads(tmp_path):
    folder = build_tiny_cosyvoice(tmp_path / "cv", campplus=False)
    sd = torch.load(folder / "flow.pt", weights_only=True)
    torch.save(sd, folder / "flow.pt", _use_new_zipfile_serialization=False)
    dec = CosyVoiceDecoder.from_pretrained(folder)
    assert torch.equal(dec.flow.encoder_proj.bias, sd["encoder_proj.bias"])
