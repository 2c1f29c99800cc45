"""Loading the Step1 LLM from the official checkpoint folder, strictly and without remote code.

Folder: ``config.json`` (model_type ``step1``) + ``model*.safetensors`` shards, listed by
``model.safetensors.index.json`` when present (the EditX release: one bf16 shard, 291 tensors, ~7.1 GB).

:func:`load_step1` builds :class:`~stepedit_core.model.llm.Step1ForCausalLM` on the meta device, compares the
shard headers (key -> shape) with the model's own state-dict layout before reading any tensor data, then
assigns the tensors in place, so nothing is initialised twice and a wrong or truncated checkpoint fails
with a :class:`CheckpointError` that lists the missing / unexpected / mis-shaped keys.

Quantization (the official ``--quantization`` options); only the decoder-layer linears are swapped, the
embedding and lm_head stay in the activation dtype (as transformers' bitsandbytes loading does), except with
``int8_lm_head`` (CPU int8 only, not official): the lm_head too is int8 per output channel. It is 0.92 GB of
fp32 read at every decode step (~27 % of a batch-1 step at real size), and the fp32 product grows with the rows
of a batch (bench/RESULTS_batch.md: the int8 head is ~4x fewer bytes and flat in the batch); its logits differ
from the fp32 head's in the last bits, the agreement is measured there.

- CUDA, needs bitsandbytes: ``"int8"`` (LLM.int8, ``Linear8bitLt``) or ``"nf4"`` (``Linear4bit``).
- CPU: ``"int8"`` through torch's own dynamic quantization (``quantize_dynamic``, qint8 weights per output
  channel, activations quantized per call; fbgemm / x86 kernels, VNNI where the CPU has it). Activations are
  fp32 (the kernels take fp32 input). The layers are quantized one at a time while loading, so the fp32 copy
  of the model (~13 GB at 3B) never exists: peak ~= the int8 model + one fp32 layer.
  Measured (bench/bench_int8_backends.py): 5x the fp32 mat-vec speed; torchao 0.18's eager CPU int8 paths
  were ~60x slower than this, so torchao is not a dependency.

The folder also loads through transformers' own ``AutoModelForCausalLM.from_pretrained`` (the class is
registered by ``llm``), with its looser checks.
"""
from __future__ import annotations

import gc
import importlib.util
import json
import warnings
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from ..errors import CheckpointError, InvalidInputError, ModelUnavailableError
from .llm import Step1Config, Step1ForCausalLM

# checkpoint dtypes the int8 CPU path keeps as they are for the embedding (an exact upcast after the gather)
NARROW_STORAGE = (torch.bfloat16, torch.float16)
QUANTIZATION_MODES = ("int8", "nf4")   # the official --quantization options
# what runs where: CUDA through bitsandbytes; CPU int8 through torch's dynamic quantization (fbgemm / x86)
QUANTIZATION_SUPPORT = {"cuda": ("int8", "nf4"), "cpu": ("int8",)}
CPU_QUANT_ENGINES = ("x86", "fbgemm")  # torch.backends.quantized engines with int8 dynamic Linear kernels


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
               official_bias: bool = False, int8_lm_head: bool = False) -> Step1ForCausalLM:
    """Load an official Step1 checkpoint folder strictly, without transformers' loading machinery.

    The model is built on the meta device, the shard headers are checked against the model's own state-dict
    layout (and against ``manifest`` when given: the real 3B layout is 291 tensors) before any data is read,
    then the tensors are assigned in place (``load_state_dict(assign=True)``), so nothing is initialised twice.
    ``dtype`` defaults to the checkpoint's (bf16 for the official files). ``quantization``: "int8" on
    CPU (torch dynamic quantization, fp32 activations) or CUDA (bitsandbytes), "nf4" on CUDA (bitsandbytes). ``official_bias`` rounds the ALiBi bias to the activation dtype as official.
    ``int8_lm_head``: with CPU int8, the lm_head too is int8 (see the module docstring); refused elsewhere.
    """
    config = read_config(folder)
    if quantization is not None:
        check_quantization(quantization, device, dtype)
    if int8_lm_head and (quantization != "int8" or torch.device(device).type != "cpu"):
        raise InvalidInputError("int8_lm_head needs quantization 'int8' on cpu")
    if quantization is not None and torch.device(device).type == "cpu":
        dtype = torch.float32                    # the int8 CPU kernels take fp32 activations
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
    dev = torch.device(device)
    if quantization is not None and dev.type == "cpu":
        _load_int8_cpu(model, files, int8_lm_head)
    else:
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
    if quantization is not None and dev.type != "cpu":
        _quantize_linears(model, quantization, dtype)
        model.to(device)
    return model


def quantization_choices(device: torch.device | str) -> tuple[str, ...]:
    """The --quantization modes that can run on ``device`` in this environment."""
    dev = torch.device(device).type
    if dev == "cuda":
        ok = torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None
        return QUANTIZATION_SUPPORT["cuda"] if ok else ()
    if dev == "cpu":
        engines = set(torch.backends.quantized.supported_engines)
        return QUANTIZATION_SUPPORT["cpu"] if engines & set(CPU_QUANT_ENGINES) else ()
    return ()


def check_quantization(mode: str, device, dtype: torch.dtype | None = None) -> None:
    """One clear line naming what works instead when ``mode`` cannot run on ``device``."""
    if mode not in QUANTIZATION_MODES:
        raise InvalidInputError(f"quantization {mode!r} is not one of {QUANTIZATION_MODES}")
    dev = torch.device(device).type
    choices = quantization_choices(device)
    if mode in choices:
        if dev == "cpu" and dtype not in (None, torch.float32):
            raise InvalidInputError(f"quantization {mode!r} on cpu computes in fp32, not {_dtype_name(dtype)}; "
                                    "use --dtype float32 with it, or --dtype bfloat16 without quantization")
        return
    if dev == "cuda" and torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is None:
        raise ModelUnavailableError(f"{mode} quantization on cuda needs the bitsandbytes package, which is not "
                                    "installed; install bitsandbytes, or run without --quantization")
    works = f"--quantization {' / '.join(choices)}" if choices else "no quantization"
    where = {"cuda": "cuda with bitsandbytes", "cpu": "cpu"}
    runs_on = ", ".join(f"{where[d]}" for d, modes in QUANTIZATION_SUPPORT.items() if mode in modes)
    raise ModelUnavailableError(f"quantization {mode!r} is not available on {dev} (it runs on {runs_on}); "
                                f"on {dev} use {works}")


def _dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(dtype, str(dtype))


def _load_int8_cpu(model: Step1ForCausalLM, files: list[Path], int8_lm_head: bool = False) -> None:
    """Assign the checkpoint layer by layer in fp32 and quantize each decoder layer's linears to int8 right
    away (torch dynamic quantization, per-channel weights), so at most one fp32 layer exists at a time."""
    owner = {}
    for f in files:
        with safe_open(str(f), framework="pt") as sf:
            owner.update({k: f for k in sf.keys()})

    def take(prefix: str, keep_narrow: bool = False) -> dict[str, torch.Tensor]:
        # a fresh handle per group: closing it unmaps the shard, so the bf16 pages already read do not stay
        # resident in this process (the mapping would otherwise add the whole 7 GB file to its RSS)
        keys = [k for k in owner if k.startswith(prefix)]
        out = {}
        for f in {owner[k] for k in keys}:
            with safe_open(str(f), framework="pt") as sf:
                for k in (k for k in keys if owner[k] == f):
                    t = sf.get_tensor(k)
                    narrow = keep_narrow and t.dtype in NARROW_STORAGE
                    out[k[len(prefix):]] = t if narrow else t.to(torch.float32)
        return out

    _assign_quantized(model, take, int8_lm_head)


def _assign_quantized(model: Step1ForCausalLM, take, int8_lm_head: bool = False) -> None:
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    # The embedding is a row gather: its rows stay in the checkpoint's bf16 and are widened after the lookup
    # (Step1Model.forward), which is exact, and saves 0.46 GB at 3B (74752 x 3072 x 2 B).
    model.model.embed_tokens.load_state_dict(take("model.embed_tokens.", keep_narrow=True), strict=True,
                                             assign=True)
    with warnings.catch_warnings():    # torch.ao.quantization's deprecation notice; the kernels are current
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning, FutureWarning))
        for i, layer in enumerate(model.model.layers):
            layer.load_state_dict(take(f"model.layers.{i}."), strict=True, assign=True)
            layer.requires_grad_(False)
            layer.self_attn.fuse()       # 4 int8 calls per layer instead of 7: each call quantizes its input,
            layer.mlp.fuse()             # so stacking q/k/v and gate/up removes 3 of those per token
            quantize_dynamic(layer, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
            gc.collect()     # the swapped-out fp32 linears sit in reference cycles; free them layer by layer
    model.model.norm.load_state_dict(take("model.norm."), strict=True, assign=True)
    model.lm_head.load_state_dict(take("lm_head."), strict=True, assign=True)
    if int8_lm_head:
        quantize_lm_head(model)


def quantize_lm_head(model: Step1ForCausalLM) -> None:
    """The fp32 lm_head (V, C) -> int8 weights per output channel (torch dynamic quantization, as the layers):
    V x C bytes instead of 4 V x C, and one int8 product for all rows of a batch."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    holder = nn.ModuleDict({"head": model.lm_head})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning, FutureWarning))
        quantize_dynamic(holder, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    model.lm_head = holder["head"]
    gc.collect()


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
