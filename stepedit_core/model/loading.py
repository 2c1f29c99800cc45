"""Loading the Step1 LLM from the official checkpoint folder, strictly and without remote code.

Folder: ``config.json`` (model_type ``step1``) + ``model*.safetensors`` shards, listed by
``model.safetensors.index.json`` when present (the EditX release: one bf16 shard, 291 tensors, ~7.1 GB).

:func:`load_step1` builds :class:`~stepedit_core.model.llm.Step1ForCausalLM` on the meta device, compares the
shard headers (key -> shape) with the model's own state-dict layout before reading any tensor data, then
assigns the tensors in place, so nothing is initialised twice and a wrong or truncated checkpoint fails
with a :class:`CheckpointError` that lists the missing / unexpected / mis-shaped keys.

Quantization (the official ``--quantization`` options, CUDA only, needs bitsandbytes): ``"int8"``
(LLM.int8, ``Linear8bitLt``) or ``"nf4"`` (``Linear4bit``); only the decoder-layer linears are swapped,
the embedding and lm_head stay in the activation dtype. The folder also loads through transformers'
own ``AutoModelForCausalLM.from_pretrained`` (the class is registered by ``llm``), with its looser checks.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from ..errors import CheckpointError, InvalidInputError, ModelUnavailableError
from .llm import Step1Config, Step1ForCausalLM

QUANTIZATION_MODES = ("int8", "nf4")   # bitsandbytes, CUDA only (the official --quantization options)


def read_config(folder: str | Path) -> Step1Config:
    """``config.json`` -> Step1Config; a foreign model_type or inconsistent head sizes raise CheckpointError."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    raw = json.loads(path.read_text())
    if raw.get("model_type", "step1") != "step1":
        raise CheckpointError(f"{path}: model_type {raw.get('model_type')!r} is not 'step1'")
    config = Step1Config(**raw)
    try:
        config.validate_shapes()
    except InvalidInputError as e:
        raise CheckpointError(f"{path}: {e}") from None
    return config


def weight_files(folder: str | Path) -> list[Path]:
    """The safetensors shards: those named by model.safetensors.index.json, else every model*.safetensors."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        files = [folder / n for n in names]
        missing = [str(f.name) for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{index} names shards that are absent", missing=missing)
        return files
    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        raise CheckpointError(f"no model*.safetensors in {folder}")
    return files


def check_state_dict_layout(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]],
                            what: str) -> None:
    """Raise CheckpointError listing missing / unexpected / shape-mismatched keys."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(f"{k} {tuple(found[k])} != {tuple(expected[k])}" for k in set(found) & set(expected)
                        if tuple(found[k]) != tuple(expected[k]))
    if missing or unexpected or mismatched:
        raise CheckpointError(f"{what} does not match the Step1 layout", missing=missing,
                              unexpected=unexpected, mismatched=mismatched)


def manifest_layout(manifest: dict | str | Path) -> dict[str, tuple[int, ...]]:
    """Key -> shape from a manifest JSON (``tensors: [{key, shape}]``, e.g. manifests/step1_llm_3b.json)."""
    if not isinstance(manifest, dict):
        manifest = json.loads(Path(manifest).read_text())
    return {t["key"]: tuple(t["shape"]) for t in manifest["tensors"]}


def load_step1(folder: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype | None = None, *,
               manifest: dict | str | Path | None = None, quantization: str | None = None,
               official_bias: bool = False) -> Step1ForCausalLM:
    """Load an official Step1 checkpoint folder strictly, without transformers' loading machinery.

    The model is built on the meta device, the shard headers are checked against the model's own state-dict
    layout (and against ``manifest`` when given: the real 3B layout is 291 tensors) before any data is read,
    then the tensors are assigned in place (``load_state_dict(assign=True)``), so nothing is initialised twice.
    ``dtype`` defaults to the checkpoint's (bf16 for the official files). ``quantization`` ("int8" | "nf4")
    needs CUDA and bitsandbytes. ``official_bias`` rounds the ALiBi bias to the activation dtype as official.
    """
    config = read_config(folder)
    if quantization is not None:
        _check_quantization(quantization, device)
    dtype = dtype or (config.dtype if isinstance(config.dtype, torch.dtype) else torch.float32)
    with torch.device("meta"):
        model = Step1ForCausalLM(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if manifest is not None:
        check_state_dict_layout(expected, manifest_layout(manifest), f"Step1 built from {folder}/config.json")
    files = weight_files(folder)
    found, where = {}, {}
    for f in files:
        with safe_open(str(f), framework="pt") as sf:
            for k in sf.keys():
                if k in found:
                    raise CheckpointError(f"tensor {k} appears in both {where[k]} and {f.name}")
                found[k], where[k] = tuple(sf.get_slice(k).get_shape()), f.name
    check_state_dict_layout(found, expected, f"checkpoint {folder}")
    state = {}
    target = "cpu" if quantization else device
    for f in files:
        with safe_open(str(f), framework="pt") as sf:
            for k in sf.keys():
                state[k] = sf.get_tensor(k).to(device=target, dtype=dtype)
    model.load_state_dict(state, strict=True, assign=True)
    del state
    model.requires_grad_(False).eval()
    model.official_bias = official_bias
    if quantization is not None:
        _quantize_linears(model, quantization, dtype)
        model.to(device)
    return model


def _check_quantization(mode: str, device) -> None:
    if mode not in QUANTIZATION_MODES:
        raise InvalidInputError(f"quantization {mode!r} is not one of {QUANTIZATION_MODES}")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelUnavailableError(f"{mode} quantization needs the bitsandbytes package, which is not installed")
    if not torch.cuda.is_available() or torch.device(device).type != "cuda":
        raise ModelUnavailableError(f"{mode} quantization (bitsandbytes) runs on CUDA only; device is {device}")


def _quantize_linears(model: Step1ForCausalLM, mode: str, dtype: torch.dtype) -> None:
    """Swap every decoder-layer nn.Linear for its bitsandbytes twin; quantization happens on ``.to(cuda)``.
    The embedding and lm_head stay in ``dtype`` (transformers' bitsandbytes loading also keeps the head)."""
    import bitsandbytes as bnb
    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, lin in [(n, m) for n, m in parent.named_children() if isinstance(m, nn.Linear)]:
                if mode == "int8":
                    q = bnb.nn.Linear8bitLt(lin.in_features, lin.out_features, bias=False,
                                            has_fp16_weights=False, threshold=6.0)
                    q.weight = bnb.nn.Int8Params(lin.weight.data, requires_grad=False, has_fp16_weights=False)
                else:
                    q = bnb.nn.Linear4bit(lin.in_features, lin.out_features, bias=False, compute_dtype=dtype,
                                          quant_type="nf4")
                    q.weight = bnb.nn.Params4bit(lin.weight.data, requires_grad=False, quant_type="nf4")
                setattr(parent, name, q)
