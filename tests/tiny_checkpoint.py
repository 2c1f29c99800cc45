"""Test helper: build a complete tiny Step-Audio-EditX checkpoint, every official file in its official format.

Layout (the official release's two folders, see stepedit_core/checkpoint.py), ``root/``::

    Step-Audio-EditX/
        config.json                     Step1 config, official keys; tiny sizes, official vocab 74752
        model-00001.safetensors         bf16, official key names (one shard)
        model.safetensors.index.json
        tokenizer.model                 SentencePiece unigram with the official id layout (see below)
        tokenizer_config.json           the 757 B version's keys
        CosyVoice-300M-25Hz/{cosyvoice.yaml, flow.pt, hift.pt, campplus.onnx}
    Step-Audio-Tokenizer/
        linguistic_tokenizer.npy        (1024, D) float32 centroids, D = tiny Paraformer output size
        speech_tokenizer_v1.onnx        tiny S3 v1 stand-in (tests/tiny_vq06_onnx.py)
        dengcunqin/speech_paraformer-large_asr_nat-zh-cantonese-en-16k-vocab8501-online/
            am.mvn  config.yaml  model.pt

The text tokenizer keeps the **official id layout** so that nothing needs an id mapping: 74,752 pieces;
0 ``<unk>``, 1 ``<s>``, 2 ``</s>``, 3 ``<|EOT|>``, 4 ``<|BOT|>``; reserved pieces 5..67; the 256 byte pieces
at 68..323 (``<0x0A>`` = 78, as official); a few hundred ordinary pieces (ASCII, the words of the prompts);
unused fillers; ``<audio_0>``..``<audio_5119>`` at 65536..70655 (``<audio_N>`` = 65536 + N) as
user-defined pieces; fillers up to 74,751. The model is written as a ``ModelProto`` directly (no training).
The LLM keeps vocab_size 74,752 with a tiny hidden size, so its ids are the official ones.

The decoder files: cosyvoice.yaml in the official hyperpyyaml form (``!new:``, ``!ref``, ``!apply:``) with
tiny sizes; flow.pt / hift.pt as plain state dicts of the modules that yaml describes (hift.pt in the
weight-norm parametrization form); campplus.onnx from tests/tiny_onnx.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

EDITX = "Step-Audio-EditX"
TOKENIZER = "Step-Audio-Tokenizer"
PARAFORMER = "dengcunqin/speech_paraformer-large_asr_nat-zh-cantonese-en-16k-vocab8501-online"
COSYVOICE = "CosyVoice-300M-25Hz"

VOCAB_SIZE = 74752
AUDIO_OFFSET = 65536
N_AUDIO = 5120
BYTE_OFFSET = 68               # official: "\n" = <0x0A> = 78
TINY_LLM = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_attention_groups=2,
                num_hidden_layers=2)
TINY_PARAFORMER = dict(output_size=32, attention_heads=2, linear_units=64, num_blocks=2)

_WORDS = ("system human assistant audio the a of and to in is you that it with for as on are be this from "
          "at by an or more any text following make remove given while preserving voice content clearly "
          "ensure speech quality remains intact minimal distortion eliminate all noise silent portions "
          "silence emotion style speaking speaker name prompt tokens generate timbre prosody add some non "
          "verbal sounds natural new corresponding reference highly skilled editing tuning specialist "
          "hello world happy sad angry").split()

# SentencePiece ModelProto.SentencePiece.Type
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6


def write_tokenizer_model(path: Path) -> Path:
    """The official-layout unigram model described in the module docstring."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    ts = m.trainer_spec
    ts.model_type = 1                                   # UNIGRAM
    ts.vocab_size = VOCAB_SIZE
    ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id = 0, 1, 2, -1
    ts.byte_fallback = True
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = True
    m.normalizer_spec.remove_extra_whitespaces = False

    def add(piece: str, type_: int, score: float = 0.0) -> None:
        p = m.pieces.add()
        p.piece, p.type, p.score = piece, type_, score

    add("<unk>", _UNKNOWN)
    add("<s>", _CONTROL)
    add("</s>", _CONTROL)
    add("<|EOT|>", _USER_DEFINED)
    add("<|BOT|>", _USER_DEFINED)
    for i in range(5, BYTE_OFFSET):
        add(f"<reserved_{i}>", _UNUSED)
    for b in range(256):
        add(f"<0x{b:02X}>", _BYTE)
    normal = ["\u2581"] + [chr(c) for c in range(33, 127)] + [f"\u2581{w}" for w in _WORDS] + list(_WORDS)
    seen = set()
    for piece in normal:
        if piece not in seen:
            seen.add(piece)
            add(piece, _NORMAL, -1.0 - 4.0 / len(piece))      # longer pieces win
    while len(m.pieces) < AUDIO_OFFSET:
        add(f"<unused_{len(m.pieces)}>", _UNUSED)
    for n in range(N_AUDIO):
        add(f"<audio_{n}>", _USER_DEFINED)
    while len(m.pieces) < VOCAB_SIZE:
        add(f"<unused_{len(m.pieces)}>", _UNUSED)
    path.write_bytes(m.SerializeToString())
    return path


def write_llm(folder: Path, seed: int = 0) -> None:
    config = {"architectures": ["Step1ForCausalLM"],
              "auto_map": {"AutoConfig": "configuration_step1.Step1Config",
                           "AutoModelForCausalLM": "modeling_step1.Step1ForCausalLM"},
              "model_type": "step1", **TINY_LLM, "max_seq_len": 32768, "vocab_size": VOCAB_SIZE,
              "rms_norm_eps": 1e-5, "bos_token_id": 1, "pad_token_id": 0, "eos_token_id": 3,
              "torch_dtype": "bfloat16"}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    g = torch.Generator().manual_seed(seed)
    c, inner, h = TINY_LLM["hidden_size"], TINY_LLM["intermediate_size"], TINY_LLM["num_attention_heads"]
    kv = TINY_LLM["num_attention_groups"] * (c // h)

    def mat(rows, cols):
        return (torch.randn(rows, cols, generator=g) / cols ** 0.5).to(torch.bfloat16)

    sd = {"model.embed_tokens.weight": torch.randn(VOCAB_SIZE, c, generator=g).to(torch.bfloat16)}
    for i in range(TINY_LLM["num_hidden_layers"]):
        p = f"model.layers.{i}."
        sd.update({p + "self_attn.q_proj.weight": mat(c, c), p + "self_attn.k_proj.weight": mat(kv, c),
                   p + "self_attn.v_proj.weight": mat(kv, c), p + "self_attn.o_proj.weight": mat(c, c),
                   p + "mlp.gate_proj.weight": mat(inner, c), p + "mlp.up_proj.weight": mat(inner, c),
                   p + "mlp.down_proj.weight": mat(c, inner),
                   p + "input_layernorm.weight": torch.ones(c, dtype=torch.bfloat16),
                   p + "post_attention_layernorm.weight": torch.ones(c, dtype=torch.bfloat16)})
    sd["model.norm.weight"] = torch.ones(c, dtype=torch.bfloat16)
    sd["lm_head.weight"] = mat(VOCAB_SIZE, c)
    shard = "model-00001.safetensors"
    save_file(sd, str(folder / shard), metadata={"format": "pt"})
    total = sum(t.numel() * t.element_size() for t in sd.values())
    index = {"metadata": {"total_size": total}, "weight_map": {k: shard for k in sd}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    write_tokenizer_model(folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "add_eos_token": False, "bos_token": "<s>", "clean_up_tokenization_spaces": False, "eos_token": "</s>",
        "legacy": False, "model_max_length": 65536, "pad_token": "<unk>", "padding_side": "left",
        "sp_model_kwargs": {}, "tokenizer_class": "LlamaTokenizer", "unk_token": "<unk>",
        "chat_template": ("{% if messages[0]['role'] == 'system' %}{{ '<s>' }}{% endif %}{% for message in "
                          "messages %}{% if message['role'] == 'user' %}{% set role = 'human' %}{% else %}"
                          "{% set role = message['role'] %}{% endif %}{{ '<|BOT|> ' + role + '\\n' }}"
                          "{{ message['content'] }}{% if not loop.last or message['role'] != 'assistant' %}"
                          "{{ '<|EOT|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}"
                          "{{ '<|BOT|> assistant\\n' }}{% endif %}")}, indent=2))


def _kaldi_vector(values: np.ndarray) -> str:
    return "[ " + " ".join(f"{v:.6f}" for v in values) + " ]"


def write_paraformer(folder: Path, seed: int = 0) -> int:
    """config.yaml, am.mvn and model.pt (whole-model state dict; only encoder.* is read). Returns the
    encoder output size (the centroid dimension)."""
    from stepedit_core.tokenizer.vq02 import EncoderConfig, SANMEncoderChunkOpt

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(
        "encoder: SANMEncoderChunkOpt\n"
        "encoder_conf:\n"
        f"    output_size: {TINY_PARAFORMER['output_size']}\n"
        f"    attention_heads: {TINY_PARAFORMER['attention_heads']}\n"
        f"    linear_units: {TINY_PARAFORMER['linear_units']}\n"
        f"    num_blocks: {TINY_PARAFORMER['num_blocks']}\n"
        "    dropout_rate: 0.1\n    positional_dropout_rate: 0.1\n    attention_dropout_rate: 0.1\n"
        "    input_layer: pe_online\n    pos_enc_class: SinusoidalPositionEncoder\n    normalize_before: true\n"
        "    kernel_size: 11\n    sanm_shfit: 0\n    selfattention_layer_type: sanm\n"
        "    chunk_size: [12, 15]\n    stride: [8, 10]\n    pad_left: [0, 0]\n"
        "    encoder_att_look_back_factor: [4, 4]\n    decoder_att_look_back_factor: [1, 1]\n"
        "frontend: WavFrontendOnline\n"
        "frontend_conf:\n    fs: 16000\n    window: hamming\n    n_mels: 80\n    frame_length: 25\n"
        "    frame_shift: 10\n    lfr_m: 7\n    lfr_n: 6\n"
        "model: ParaformerStreaming\n")
    rng = np.random.default_rng(seed)
    dim = 560
    (folder / "am.mvn").write_text(
        "<Nnet>\n<Splice> 560 560\n" + _kaldi_vector(np.zeros(1)) + "\n"
        f"<AddShift> {dim} {dim}\n<LearnRateCoef> 0 {_kaldi_vector(-9.0 + rng.standard_normal(dim))}\n"
        f"<Rescale> {dim} {dim}\n<LearnRateCoef> 0 {_kaldi_vector(0.25 + 0.01 * rng.standard_normal(dim))}\n"
        "</Nnet>\n")
    torch.manual_seed(seed)
    enc = SANMEncoderChunkOpt(EncoderConfig(**TINY_PARAFORMER))
    state = {f"encoder.{k}": v.detach().clone() for k, v in enc.state_dict().items()}
    state["decoder.embed.0.weight"] = torch.zeros(4, 4)     # the real file holds the whole ASR model
    torch.save(state, str(folder / "model.pt"))
    return TINY_PARAFORMER["output_size"]


def write_audio_tokenizer(folder: Path, seed: int = 0) -> None:
    from tests.tiny_vq06_onnx import make_tiny_vq06

    folder.mkdir(parents=True, exist_ok=True)
    dim = write_paraformer(folder / PARAFORMER, seed)
    rng = np.random.default_rng(seed + 1)
    np.save(folder / "linguistic_tokenizer.npy", rng.standard_normal((1024, dim)).astype(np.float32))
    make_tiny_vq06(folder / "speech_tokenizer_v1.onnx", seed=seed)


TINY_COSYVOICE_YAML = """\
# Tiny CosyVoice-300M-25Hz config in the official hyperpyyaml form (sizes shrunk; structure as shipped).
__set_seed1: !apply:random.seed [1986]
sample_rate: 24000
spk_embed_dim: 192
token_vocab: 5121

flow: !new:stepvocoder.cosyvoice2.flow.flow.CausalMaskedDiffWithXvec
    input_size: 64
    output_size: 80
    spk_embed_dim: !ref <spk_embed_dim>
    output_type: 'mel'
    vocab_size: !ref <token_vocab>
    input_embedding: !new:stepvocoder.cosyvoice2.flow.flow.DualCodebookEmbedding
        vocab_size: !ref <token_vocab>  # 1024(vq02) + 4096(vq06) + 1(vq02-pad)
        input_size: 64
    encoder: !new:stepvocoder.cosyvoice2.transformer.upsample_encoder_v2.UpsampleConformerEncoderV2
        input_size: 64
        output_size: 64
        input_layer: 'linear'
        pre_lookahead_len: 3
        num_blocks: 2
        num_up_blocks: 2
        up_stride: 2
        up_scale_factor: 2
        attention_heads: 2
        pos_enc_layer_type: 'rel_pos_espnet'
        selfattention_layer_type: 'rel_selfattn'
        key_bias: true
        linear_units: 128
        dropout_rate: 0.1
        positional_dropout_rate: 0.1
        attention_dropout_rate: 0.0
        normalize_before: true
    decoder: !new:stepvocoder.cosyvoice2.flow.flow_matching.CausalConditionalCFM
        inference_cfg_rate: 0.7
        estimator: !new:stepvocoder.cosyvoice2.flow.decoder_dit.DiT
            in_channels: 320
            out_channels: 80
            mlp_ratio: 4.0
            depth: 2
            num_heads: 2
            head_dim: 32
            hidden_size: 64

hift: !new:stepvocoder.cosyvoice2.hifigan.generator.HiFTGenerator
    in_channels: 80
    base_channels: 64
    nb_harmonics: 8
    sampling_rate: !ref <sample_rate>
    nsf_alpha: 0.1
    nsf_sigma: 0.003
    nsf_voiced_threshold: 10
    upsample_rates: [8, 5, 3]
    upsample_kernel_sizes: [16, 11, 7]
    istft_params:
        n_fft: 16
        hop_len: 4
    resblock_kernel_sizes: [3, 7, 11]
    resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    source_resblock_kernel_sizes: [7, 7, 11]
    source_resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    lrelu_slope: 0.1
    audio_limit: 0.99
    f0_predictor: !new:stepvocoder.cosyvoice2.hifigan.f0_predictor.ConvRNNF0Predictor
        num_class: 1
        in_channels: 80
        cond_channels: 64

mel_conf:
    n_fft: 1920
    num_mels: 80
    sampling_rate: !ref <sample_rate>
    hop_size: 480
    win_size: 1920
    fmin: 0
    fmax: 8000
    center: False
"""


def write_cosyvoice(folder: Path, seed: int = 0) -> None:
    """cosyvoice.yaml (hyperpyyaml), flow.pt and hift.pt (random plain state dicts of the modules the yaml
    describes, as the official files are), campplus.onnx (tests/tiny_onnx.py)."""
    from stepedit_core.decoder.cosyvoice import read_configs
    from stepedit_core.decoder.flow import CausalMaskedDiffWithXvec
    from stepedit_core.decoder.hift import HiFTGenerator
    from tests.tiny_onnx import write_tiny_campplus

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cosyvoice.yaml").write_text(TINY_COSYVOICE_YAML)
    flow_cfg, hift_cfg = read_configs(folder)
    torch.manual_seed(seed)
    flow = CausalMaskedDiffWithXvec(flow_cfg)
    g = torch.Generator().manual_seed(seed)
    for name, t in flow.state_dict().items():       # O(1)-scaled random weights, nothing left at zero
        if t.dtype.is_floating_point:
            fan_in = t[0].numel() if t.dim() > 1 else 1
            t.copy_(torch.randn(t.shape, generator=g) / fan_in ** 0.5 if t.dim() > 1
                    else 1.0 + 0.1 * torch.randn(t.shape, generator=g) if name.endswith("weight")
                    else 0.1 * torch.randn(t.shape, generator=g))
    torch.save({k: v.detach().clone() for k, v in flow.state_dict().items()}, str(folder / "flow.pt"))
    hift = HiFTGenerator(hift_cfg)
    torch.save({k: v.detach().clone() for k, v in hift.state_dict().items()}, str(folder / "hift.pt"))
    write_tiny_campplus(folder / "campplus.onnx", seed=seed)


def build_tiny_checkpoint(root: str | Path, *, seed: int = 0, decoder: bool = True) -> Path:
    """Write the whole tiny checkpoint under ``root``; returns ``root`` (the ``model_path``)."""
    root = Path(root)
    editx = root / EDITX
    editx.mkdir(parents=True, exist_ok=True)
    write_llm(editx, seed)
    write_audio_tokenizer(root / TOKENIZER, seed)
    if decoder:
        write_cosyvoice(editx / COSYVOICE, seed)
    return root
