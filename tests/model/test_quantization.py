"""--dtype / --quantization on CPU: int8 through torch's dynamic quantization (fixture model step1_llm),
bf16, and the one-line start-up errors for what a device cannot run."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from stepedit_core.errors import InvalidInputError, ModelUnavailableError
from stepedit_core.loader import check_llm_options, load_engine
from stepedit_core.model.loading import load_step1, quantization_choices
from stepedit_core.runtime import pick_llm_dtype

# Measured on the fixture (teacher-forced on its 8 greedy ids; relative L2 drift of the step logits vs the
# fp32 reference): bf16 0.0087, int8 0.034, both 8/8 argmax agreement. Bounds leave ~1.7x headroom.
DRIFT_BOUND = {"bf16": 0.015, "int8": 0.06}
MIN_AGREEMENT = 8          # of 8 greedy ids


@pytest.fixture(scope="module")
def io(fixtures_root):
    return load_file(str(fixtures_root / "step1_llm" / "io.safetensors"))


@pytest.fixture(scope="module")
def folder(fixtures_root, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("step1q")
    shutil.copy(fixtures_root / "step1_llm" / "config.json", d / "config.json")
    shutil.copy(fixtures_root / "step1_llm" / "weights.safetensors", d / "model.safetensors")
    return d


@torch.inference_mode()
def teacher_forced_logits(model, io) -> torch.Tensor:
    """(8, V) next-token logits along the fixture's fp32 greedy continuation."""
    ids = io["greedy_ids"][0].tolist()
    cache = model.new_cache(64)
    logits = model.step(io["input_ids"], cache)[0, -1]
    out = []
    for i in ids:
        out.append(logits.float())
        logits = model.step(torch.tensor([[i]]), cache)[0, -1]
    return torch.stack(out)


@pytest.mark.parametrize("mode", ["bf16", "int8"])
def test_cpu_dtype_and_int8_track_fp32(folder, io, mode):
    kw = {"dtype": torch.bfloat16} if mode == "bf16" else {"quantization": "int8"}
    model = load_step1(folder, device="cpu", **kw)
    ref = io["greedy_step_logits"]
    got = teacher_forced_logits(model, io)
    drift = float((got - ref).norm() / ref.norm())
    assert 0 < drift < DRIFT_BOUND[mode]          # > 0: the weights really are rounded
    agree = int((got.argmax(-1) == ref.argmax(-1)).sum())
    assert agree >= MIN_AGREEMENT


def test_int8_cpu_swaps_decoder_linears_only(folder):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    model = load_step1(folder, device="cpu", quantization="int8")
    for layer in model.model.layers:
        assert layer.self_attn.fused and layer.mlp.fused          # q/k/v and gate/up stacked: 4 calls, not 7
        for lin in (layer.self_attn.qkv_proj, layer.self_attn.o_proj, layer.mlp.gate_up_proj, layer.mlp.down_proj):
            assert isinstance(lin, DynamicLinear)
            assert lin.weight().dtype == torch.qint8
            assert lin.weight().qscheme() == torch.per_channel_affine     # one scale per output row
    assert type(model.lm_head) is nn.Linear and model.lm_head.weight.dtype == torch.float32
    assert model.model.embed_tokens.weight.dtype == torch.float32
    assert not any(p.device.type == "meta" for p in model.parameters())



def test_int8_lm_head_is_an_option_of_the_cpu_int8_path_and_tracks_the_fp32_head(folder, io):
    """``int8_lm_head`` makes the head int8 per output channel too; its logits stay close to the int8 model
    with the fp32 head (same argmax along the fixture's continuation); refused without CPU int8."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    fp32_head = load_step1(folder, device="cpu", quantization="int8")
    int8_head = load_step1(folder, device="cpu", quantization="int8", int8_lm_head=True)
    assert isinstance(int8_head.lm_head, DynamicLinear)
    assert int8_head.lm_head.weight().qscheme() == torch.per_channel_affine
    ref, got = teacher_forced_logits(fp32_head, io), teacher_forced_logits(int8_head, io)
    drift = float((got - ref).norm() / ref.norm())
    assert 0 < drift < DRIFT_BOUND["int8"]
    assert torch.equal(got.argmax(-1), ref.argmax(-1))
    with pytest.raises(InvalidInputError, match="int8_lm_head needs quantization 'int8' on cpu"):
        load_step1(folder, device="cpu", int8_lm_head=True)

def test_int8_cpu_keeps_a_bf16_embedding_narrow_and_exact(folder, io, tmp_path):
    """A bf16 checkpoint's embedding stays bf16 on the int8 CPU path (half the bytes of fp32) and gives
    bit-identical logits to the same rows widened to fp32 before loading."""
    from safetensors.torch import save_file

    state = load_file(str(folder / "model.safetensors"))
    save_file({k: v.to(torch.bfloat16) for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    shutil.copy(folder / "config.json", tmp_path / "config.json")
    narrow = load_step1(tmp_path, device="cpu", quantization="int8")
    emb = narrow.model.embed_tokens.weight
    assert emb.dtype == torch.bfloat16 and narrow.activation_dtype == torch.float32
    assert narrow.new_cache(8).k[0].dtype == torch.float32
    wide = load_step1(tmp_path, device="cpu", quantization="int8")
    wide.model.embed_tokens.weight = nn.Parameter(emb.float(), requires_grad=False)
    assert torch.equal(teacher_forced_logits(narrow, io), teacher_forced_logits(wide, io))
    assert emb.element_size() * 2 == wide.model.embed_tokens.weight.element_size()


def test_quantization_choices_and_errors(folder):
    assert quantization_choices("cpu") == ("int8",)
    with pytest.raises(ModelUnavailableError, match=r"'nf4' is not available on cpu.*use --quantization int8"):
        load_step1(folder, device="cpu", quantization="nf4")
    with pytest.raises(InvalidInputError, match=r"computes in fp32, not bfloat16; use --dtype float32"):
        load_step1(folder, device="cpu", dtype=torch.bfloat16, quantization="int8")
    with pytest.raises(ModelUnavailableError, match=r"not available on mps.*use no quantization"):
        check_llm_options("mps", None, "int8")


def test_bad_options_fail_before_any_loading(tmp_path):
    """load_engine checks dtype / quantization before looking for the checkpoint (the folder is empty)."""
    with pytest.raises(ModelUnavailableError, match=r"'nf4' is not available on cpu"):
        load_engine("stepaudio", model_path=tmp_path, device="cpu", quantization="nf4")
    with pytest.raises(InvalidInputError, match=r"unknown dtype 'fp8'"):
        load_engine("auto", model_path=tmp_path, device="cpu", dtype="fp8")
    check_llm_options("cpu", "float32", "int8")             # the working combination passes


def test_dtype_the_device_cannot_run(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(InvalidInputError, match=r"^dtype bfloat16 cannot run on cuda here; use float32 or float16$"):
        pick_llm_dtype(torch.device("cuda"), "bfloat16")
    assert pick_llm_dtype(torch.device("cuda"), "float16") == torch.float16
    assert pick_llm_dtype(torch.device("cpu"), "bfloat16") == torch.bfloat16


def test_stacked_projections_compute_the_same(folder, io):
    """Stacking q/k/v and gate/up changes no number: exactly in fp32 up to summation order, and bit for bit
    in int8 (per-row weight scales, one activation scale per call on the same input)."""
    import copy
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    model = load_step1(folder, device="cpu")
    layer = model.model.layers[0]
    x = torch.randn(1, 5, model.config.hidden_size)
    fused = copy.deepcopy(layer)
    fused.self_attn.fuse()
    fused.mlp.fuse()
    assert torch.allclose(fused.mlp(x), layer.mlp(x), atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q_plain = quantize_dynamic(copy.deepcopy(layer.mlp), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
        q_fused = quantize_dynamic(copy.deepcopy(fused.mlp), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    assert torch.equal(q_fused(x), q_plain(x))
    # the whole model through both paths: the same logits along the fixture's continuation
    plain = load_step1(folder, device="cpu")
    for block in plain.model.layers:
        block.self_attn.fuse()
        block.mlp.fuse()
    assert torch.allclose(teacher_forced_logits(plain, io), teacher_forced_logits(model, io), atol=1e-5)
