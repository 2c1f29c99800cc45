"""A tiny ``CosyVoice-300M-25Hz`` folder for tests: cosyvoice.yaml (official hyperpyyaml style, with tags),
flow.pt and hift.pt (``torch.save`` of plain state dicts, HiFT in weight-norm parametrization form) and a
tiny campplus.onnx.

Sizes are those of the parity fixtures (flow/config.json, hift/config.json). With ``weights="fixtures"`` the
fixture weights are used, so a decoder loaded from the folder must reproduce token2wav_e2e.safetensors;
the default draws random O(1)-scaled weights from ``seed``.

Usage (tests/ is on sys.path under pytest)::

    from tests.tiny_cosyvoice import build_tiny_cosyvoice
    build_tiny_cosyvoice(tmp_path / "CosyVoice-300M-25Hz", seed=0)
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from stepedit_core.decoder.bigvgan import BigVGAN, BigVGANConfig
from stepedit_core.decoder.cosyvoice import flow_config_from_dict
from stepedit_core.decoder.flow import CausalMaskedDiffWithXvec
from stepedit_core.decoder.hift import HiFTConfig, HiFTGenerator
from stepedit_core.decoder.weight_norm import WN_LEGACY_G, WN_LEGACY_V, WN_PARAM_G, WN_PARAM_V

FIXTURES = Path(__file__).parent / "fixtures"
PKG = "stepvocoder.cosyvoice2"

TINY_FLOW = {"input_size": 64, "output_size": 80, "spk_embed_dim": 192, "output_type": "mel", "vocab_size": 5121}
TINY_ENCODER = {"input_size": 64, "output_size": 64, "input_layer": "linear", "pre_lookahead_len": 3,
                "num_blocks": 2, "num_up_blocks": 2, "up_stride": 2, "up_scale_factor": 2, "attention_heads": 2,
                "pos_enc_layer_type": "rel_pos_espnet", "selfattention_layer_type": "rel_selfattn",
                "key_bias": True, "linear_units": 128, "dropout_rate": 0.1, "positional_dropout_rate": 0.1,
                "attention_dropout_rate": 0.0, "normalize_before": True}
TINY_DIT = {"in_channels": 320, "out_channels": 80, "mlp_ratio": 4.0, "depth": 2, "num_heads": 2, "head_dim": 32,
            "hidden_size": 64}
TINY_HIFT_BASE = 64
TINY_BIGVGAN = {"num_mels": 80, "upsample_initial_channel": 64, "upsample_rates": [5, 4, 3, 2, 2, 2],
                "upsample_kernel_sizes": [11, 8, 7, 4, 4, 4], "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
                "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "activation": "snakebeta",
                "snake_logscale": True, "use_bias_at_final": False, "use_tanh_at_final": False}


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return f"'{value}'"
    return str(list(value)).replace("(", "[").replace(")", "]") if isinstance(value, (list, tuple)) else str(value)


def _block(mapping: dict, indent: int) -> str:
    pad = " " * indent
    return "".join(f"{pad}{k}: {_fmt(v)}\n" for k, v in mapping.items())


def cosyvoice_yaml(flow=TINY_FLOW, encoder=TINY_ENCODER, dit=TINY_DIT, hift_base: int = TINY_HIFT_BASE,
                   vocoder: str = "hift") -> str:
    """cosyvoice.yaml text in the official layout: seeds via !apply, !ref to shared values, !new modules.
    ``vocoder="bigvgan"`` writes a ``hift: !new:...bigvgan.bigvgan.BigVGAN`` block (TINY_BIGVGAN) instead."""
    flow = dict(flow)
    flow.pop("spk_embed_dim")
    return (
        "# set random seed, so that you may reproduce your result.\n"
        "__set_seed1: !apply:random.seed [1986]\n"
        "__set_seed2: !apply:numpy.random.seed [1986]\n"
        "__set_seed3: !apply:torch.manual_seed [1986]\n"
        "\n# fixed params\nsample_rate: 24000\nspk_embed_dim: 192\n\n"
        f"flow: !new:{PKG}.flow.flow.CausalMaskedDiffWithXvec\n"
        f"{_block(flow, 4)}"
        "    spk_embed_dim: !ref <spk_embed_dim>\n"
        "    # 1024(vq02) + 4096(vq06) + 1(vq02-pad)\n"
        f"    input_embedding: !new:{PKG}.embedding.dual_codebook.DualCodebookEmbedding\n"
        f"        vocab_size: {flow['vocab_size']}\n        input_size: {flow['input_size']}\n"
        f"    encoder: !new:{PKG}.transformer.upsample_encoder_v2.UpsampleConformerEncoderV2\n"
        f"{_block(encoder, 8)}"
        f"    decoder: !new:{PKG}.flow.flow_matching.CausalConditionalCFM\n"
        "        inference_cfg_rate: 0.7\n"
        f"        estimator: !new:{PKG}.flow.decoder_dit.DiT\n"
        f"{_block(dit, 12)}"
        "\n"
        + (f"hift: !new:{PKG}.bigvgan.bigvgan.BigVGAN\n{_block(TINY_BIGVGAN, 4)}" if vocoder == "bigvgan" else
        f"hift: !new:{PKG}.hifigan.generator.HiFTGenerator\n"
        f"    in_channels: 80\n    base_channels: {hift_base}\n    nb_harmonics: 8\n"
        "    sampling_rate: !ref <sample_rate>\n"
        "    nsf_alpha: 0.1\n    nsf_sigma: 0.003\n    nsf_voiced_threshold: 10\n"
        "    upsample_rates: [8, 5, 3]\n    upsample_kernel_sizes: [16, 11, 7]\n"
        "    istft_params:\n        n_fft: 16\n        hop_len: 4\n"
        "    resblock_kernel_sizes: [3, 7, 11]\n    resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]\n"
        "    source_resblock_kernel_sizes: [7, 7, 11]\n"
        "    source_resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]\n"
        "    lrelu_slope: 0.1\n    audio_limit: 0.99\n"
        f"    f0_predictor: !new:{PKG}.hifigan.f0_predictor.ConvRNNF0Predictor\n"
        f"        num_class: 1\n        in_channels: 80\n        cond_channels: {hift_base}\n")
        + "\n"
        "mel_conf:\n    n_fft: 1920\n    num_mels: 80\n    sampling_rate: !ref <sample_rate>\n"
        "    hop_size: 480\n    win_size: 1920\n    fmin: 0\n    fmax: 8000\n    center: False\n"
    )


def _random_state(module: torch.nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """O(1)-scaled random weights: matrices N(0,1)/sqrt(fan_in), 1-D gains 1+0.1N, biases 0.1N."""
    out = {}
    for key, ref in module.state_dict().items():
        noise = torch.randn(ref.shape, generator=gen)
        if ref.dim() >= 2:
            out[key] = noise / math.sqrt(ref[0].numel())
        elif key.endswith("bias"):
            out[key] = 0.1 * noise
        else:
            out[key] = 1 + 0.1 * noise
    return out


def hift_checkpoint_form(model: HiFTGenerator, folded: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Folded HiFT weights -> the parametrization (g, v) keys of hift.pt, with g = ‖v‖ so w = v."""
    out = dict(folded)
    for prefix in model.weight_normed_modules():
        v = out.pop(f"{prefix}.weight")
        out[f"{prefix}.{WN_PARAM_G}"] = torch.linalg.vector_norm(v, dim=tuple(range(1, v.dim())), keepdim=True)
        out[f"{prefix}.{WN_PARAM_V}"] = v
    return out


def bigvgan_checkpoint(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random TINY_BIGVGAN weights in the official legacy weight-norm form (weight_g = ‖weight_v‖); the
    anti-aliasing filters (persistent buffers) keep their computed values."""
    model = BigVGAN(BigVGANConfig(**TINY_BIGVGAN))
    ref = model.state_dict()
    out = {k: (ref[k] if k.endswith(".filter") else v) for k, v in _random_state(model, gen).items()}
    for prefix in model.weight_normed_modules():
        v = out.pop(f"{prefix}.weight")
        out[f"{prefix}.{WN_LEGACY_G}"] = torch.linalg.vector_norm(v, dim=tuple(range(1, v.dim())), keepdim=True)
        out[f"{prefix}.{WN_LEGACY_V}"] = v
    return out


def build_tiny_cosyvoice(folder: str | Path, seed: int = 0, *, weights: str = "random",
                         campplus: bool = True, vocoder: str = "hift") -> Path:
    """Write the folder; ``weights`` = "random" (seeded) or "fixtures" (tests/fixtures flow + hift);
    ``vocoder`` = "hift" or "bigvgan" (random TINY_BIGVGAN weights as hift.pt, with either ``weights``)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cosyvoice.yaml").write_text(cosyvoice_yaml(vocoder=vocoder), encoding="utf-8")
    if weights == "fixtures":
        flow_sd = load_file(str(FIXTURES / "flow" / "weights.safetensors"))
        hift_sd = load_file(str(FIXTURES / "hift" / "weights.safetensors"))
    else:
        gen = torch.Generator().manual_seed(seed)
        cfg = flow_config_from_dict({"flow": TINY_FLOW, "input_embedding": {"vocab_size": 5121, "input_size": 64},
                                     "encoder": TINY_ENCODER, "decoder": {"inference_cfg_rate": 0.7},
                                     "estimator": TINY_DIT})
        flow_sd = _random_state(CausalMaskedDiffWithXvec(cfg), gen)
        hift = HiFTGenerator(HiFTConfig(base_channels=TINY_HIFT_BASE, f0_cond_channels=TINY_HIFT_BASE))
        hift_sd = hift_checkpoint_form(hift, _random_state(hift, gen))
    if vocoder == "bigvgan":
        hift_sd = bigvgan_checkpoint(torch.Generator().manual_seed(seed))
    torch.save(flow_sd, folder / "flow.pt")
    torch.save(hift_sd, folder / "hift.pt")
    if campplus:
        from tests.tiny_onnx import write_tiny_campplus
        write_tiny_campplus(folder / "campplus.onnx", seed=seed)
    return folder
