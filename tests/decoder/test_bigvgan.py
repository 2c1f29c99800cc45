"""BigVGAN vocoder (stepedit_core.decoder.bigvgan) against the official GH:bigvgan/* output
(tests/fixtures/bigvgan), and the cosyvoice.yaml path that selects it."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from stepedit_core.decoder.bigvgan import (BigVGAN, BigVGANConfig, MEL_CONTEXT_FRAMES, kaiser_sinc_filter, load_bigvgan)
from stepedit_core.decoder.cosyvoice import CosyVoiceDecoder, read_configs, vocoder_config_from_dict
from stepedit_core.decoder.hift import HiFTConfig, HiFTGenerator
from stepedit_core.errors import CheckpointError, InvalidInputError, ModelUnavailableError
from tests.tiny_cosyvoice import TINY_BIGVGAN, build_tiny_cosyvoice

WAV_ATOL = 1e-4          # fixtures README: HiFT wav atol 1e-4; same budget for the other vocoder
VARIANT = "variant_b."   # second official run in the fixture: AMPBlock2, linear-scale Snake, conv_post bias, tanh


@pytest.fixture(scope="module")
def fx(fixtures_root):
    root = fixtures_root / "bigvgan"
    config = json.loads((root / "config.json").read_text())
    weights = load_file(str(root / "weights.safetensors"))
    main = {k: v for k, v in weights.items() if not k.startswith(VARIANT)}
    variant = {k[len(VARIANT):]: v for k, v in weights.items() if k.startswith(VARIANT)}
    return {"config": config, "variant_config": config.pop("variant_b"), "weights": main,
            "variant_weights": variant, "io": load_file(str(root / "io.safetensors"))}


@pytest.fixture(scope="module")
def model(fx):
    return load_bigvgan(fx["weights"], fx["config"])


def test_config_from_yaml_block(fx):
    cfg = BigVGANConfig.from_dict(fx["config"])
    assert cfg.upsample_rates == (5, 4, 3, 2, 2, 2) and cfg.samples_per_frame == 480
    assert cfg.resblock == "1" and cfg.activation == "snakebeta" and not cfg.use_tanh_at_final
    assert BigVGANConfig.from_dict({"class": "stepvocoder.cosyvoice2.bigvgan.bigvgan.BigVGAN"}) == BigVGANConfig()
    assert BigVGANConfig.from_dict({"resblock": 2}).resblock == "2"                # yaml may give an int
    with pytest.raises(CheckpointError, match="unknown"):
        BigVGANConfig.from_dict({"nb_harmonics": 8})
    with pytest.raises(CheckpointError):
        BigVGANConfig.from_dict({"activation": "relu"})
    with pytest.raises(ModelUnavailableError):
        BigVGANConfig.from_dict({"class": "HiFTGenerator"})


def test_weight_norm_is_folded_and_keys_are_official(fx, model):
    w = fx["weights"]
    assert any(k.endswith("weight_g") for k in w)                                  # legacy weight_norm form
    assert set(w) == set(model.checkpoint_layout("legacy"))
    g, v = w["conv_pre.weight_g"], w["conv_pre.weight_v"]
    expected = g * v / torch.linalg.vector_norm(v, dim=(1, 2), keepdim=True)
    torch.testing.assert_close(model.conv_pre.weight, expected, rtol=1e-6, atol=1e-7)
    g, v = w["ups.0.0.weight_g"], w["ups.0.0.weight_v"]                              # ConvTranspose: dim 0 = in
    expected = g * v / torch.linalg.vector_norm(v, dim=(1, 2), keepdim=True)
    torch.testing.assert_close(model.ups[0][0].weight, expected, rtol=1e-6, atol=1e-7)


def test_antialias_filters_match_checkpoint(fx):
    w = fx["weights"]
    ours = kaiser_sinc_filter(0.25, 0.3, 12)
    assert abs(float(ours.sum()) - 1.0) < 1e-6
    for key in ("activation_post.upsample.filter", "activation_post.downsample.lowpass.filter",
                "resblocks.0.activations.0.upsample.filter"):
        torch.testing.assert_close(ours, w[key], rtol=0, atol=1e-7)


def test_intermediates(fx, model):
    io = fx["io"]
    padded = model.pad_mel(io["in.mel"])
    torch.testing.assert_close(padded, io["int.mel_padded"], rtol=0, atol=0)
    with torch.inference_mode():
        x = model.conv_pre(padded)
        torch.testing.assert_close(x, io["int.conv_pre"], rtol=0, atol=1e-5)
        torch.testing.assert_close(model.ups[0][0](x), io["int.ups0"], rtol=0, atol=1e-5)
        torch.testing.assert_close(model.generate(padded), io["int.conv_post"].clamp(-1, 1), rtol=0, atol=WAV_ATOL)


def test_waveform_matches_official(fx, model):
    io = fx["io"]
    mel = io["in.mel"]
    wav, source = model.inference(mel, generator=torch.Generator().manual_seed(0))
    assert wav.shape == (1, 480 * mel.shape[-1]) and source.shape == (1, 1, 0)
    torch.testing.assert_close(wav, io["out.wav"], rtol=0, atol=WAV_ATOL)
    assert 0.5 < float((io["out.wav"].abs() < 1).float().mean())        # the fixture is mostly unclamped
    with torch.inference_mode():
        torch.testing.assert_close(model(mel, noise=None, rand_ini=None), wav, rtol=0, atol=0)   # noise ignored


def test_variant_amp2_snake_tanh_bias(fx):
    cfg = BigVGANConfig.from_dict(fx["variant_config"])
    assert cfg.resblock == "2" and cfg.activation == "snake" and cfg.use_tanh_at_final and cfg.use_bias_at_final
    model = load_bigvgan(fx["variant_weights"], cfg)
    with torch.inference_mode():
        wav = model(fx["io"]["in.mel"])
    torch.testing.assert_close(wav, fx["io"]["out.variant_b.wav"], rtol=0, atol=WAV_ATOL)
    torch.testing.assert_close(wav, torch.tanh(fx["io"]["int.variant_b.conv_post"]).squeeze(1), rtol=0, atol=WAV_ATOL)


def test_batch_matches_single(fx, model):
    mel = fx["io"]["in.mel"]
    other = torch.randn(1, 80, mel.shape[-1], generator=torch.Generator().manual_seed(5))
    # oneDNN picks other conv kernels for batch 2 than for batch 1 (seen: 1.04e-5 apart on one sample), so the
    # bound is the fixture README's waveform tolerance; a batch item leaking into the other is O(0.1) off.
    with torch.inference_mode():
        both = model(torch.cat([mel, other]))
        torch.testing.assert_close(both[:1], model(mel), rtol=0, atol=1e-4)
        torch.testing.assert_close(both[1:], model(other), rtol=0, atol=1e-4)


def test_short_mel_and_streaming_source_refused(model):
    with pytest.raises(InvalidInputError):
        model.inference(torch.zeros(1, 80, MEL_CONTEXT_FRAMES))
    with pytest.raises(InvalidInputError):
        model.inference(torch.zeros(1, 80, 8), torch.zeros(1, 1, 480))


def test_wrong_keys_raise_checkpoint_error(fx):
    w = dict(fx["weights"])
    w.pop("activation_post.upsample.filter")
    w["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        load_bigvgan(w, fx["config"])
    assert info.value.missing == ["activation_post.upsample.filter"] and info.value.unexpected == ["extra.weight"]
    w = dict(fx["weights"])
    w.pop("conv_pre.weight_g")
    with pytest.raises(CheckpointError):
        load_bigvgan(w, fx["config"])
    with pytest.raises(CheckpointError) as info:
        load_bigvgan(fx["weights"], dict(fx["config"], upsample_initial_channel=64))
    assert info.value.mismatched
    folded = {k: v.clone() for k, v in load_bigvgan(fx["weights"], fx["config"]).state_dict().items()}
    assert torch.equal(load_bigvgan(folded, fx["config"]).conv_post.weight, folded["conv_post.weight"])


# -- selected by cosyvoice.yaml -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bigvgan_folder(tmp_path_factory):
    return build_tiny_cosyvoice(tmp_path_factory.mktemp("cvb") / "CosyVoice-300M-25Hz", seed=2, campplus=False,
                                vocoder="bigvgan")


def test_yaml_selects_vocoder(bigvgan_folder):
    _, cfg = read_configs(bigvgan_folder)
    assert cfg == BigVGANConfig.from_dict(TINY_BIGVGAN)
    assert isinstance(vocoder_config_from_dict({"class": "HiFTGenerator"}), HiFTConfig)


def test_folder_with_bigvgan_decodes(bigvgan_folder):
    dec = CosyVoiceDecoder.from_pretrained(bigvgan_folder)
    assert isinstance(dec.hift, BigVGAN) and not isinstance(dec.hift, HiFTGenerator)
    gen = torch.Generator().manual_seed(0)
    tokens = [int(t) for t in torch.randint(0, 1024, (10,), generator=gen)]
    tokens = [t if i % 5 < 2 else 1024 + t for i, t in enumerate(tokens)]       # 2 vq02 + 3 vq06 per group
    prompt = tokens[:5]
    feat = torch.randn(1, 6, 80, generator=gen)
    emb = torch.randn(1, 192, generator=gen)
    trace = {}
    wav = dec.token2wav(tokens, prompt, feat, emb, n_timesteps=2, trace=trace)
    frames = trace["mel"].shape[-1]
    assert frames == 2 * 3 * 2                          # 2 groups of 5 tokens -> 6 rows -> 12 mel frames
    assert wav.shape == (1, 480 * frames) and torch.isfinite(wav).all() and wav.abs().max() <= 1
    torch.testing.assert_close(wav, dec.hift(trace["mel"]), rtol=0, atol=0)
    with pytest.raises(ModelUnavailableError, match="BigVGAN"):
        dec.stream(prompt, feat, emb)
    from stepedit_core.decoder.streaming import Token2WavStream
    with pytest.raises(ModelUnavailableError, match="BigVGAN"):      # also when the stream is built directly
        Token2WavStream(dec, prompt, feat, emb)


def test_bigvgan_block_with_hift_arguments_is_refused(bigvgan_folder):
    text = (bigvgan_folder / "cosyvoice.yaml").read_text()
    bad = bigvgan_folder.parent / "bad"
    bad.mkdir()
    for name in ("flow.pt", "hift.pt"):
        (bad / name).write_bytes((bigvgan_folder / name).read_bytes())
    (bad / "cosyvoice.yaml").write_text(text.replace("    num_mels: 80\n", "    nb_harmonics: 8\n", 1))
    with pytest.raises(CheckpointError, match="nb_harmonics"):
        CosyVoiceDecoder.from_pretrained(bad)
