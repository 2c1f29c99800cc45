"""A Step1 folder -> a compressed-tensors W8A8 int8 folder that vLLM's CPU build serves (oneDNN int8 GEMMs).

    python -m stepedit_vllm.quantize SOURCE DEST        # in the vLLM venv (vllm_plugin/make_venv.sh)

SOURCE is the LLM folder of a checkpoint (``Step-Audio-EditX``: ``config.json`` + ``*.safetensors``). Every
linear of the decoder layers (attention ``q/k/v/o_proj``, MLP ``gate/up/down_proj``; vLLM fuses q/k/v and
gate/up at load time, per-output-channel scales concatenate) becomes int8 weights with one fp32 scale per output
channel (symmetric, compressed-tensors' ``W8A8`` preset: ``strategy: channel``); activations are quantized by
vLLM per token at run time (``dynamic: true, strategy: token``). The embedding, the norms and ``lm_head``
(``ignore``) keep their dtype. The scheme, the scales and the rounding are compressed-tensors' own
(``preset_name_to_scheme``, ``calculate_qparams``, ``quantize``), so the folder is what llm-compressor writes for
this scheme. One output shard per input shard, one tensor at a time in fp32: peak memory is one source shard.
vLLM serves it with ``--dtype float32`` (the plugin's CPU sqrt-ALiBi reads the fp32 KV layout; the KV cache keeps
the model dtype, only the linears run int8).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

QUANTIZED_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LAYER_PREFIX = "model.layers."
PRESET = "W8A8"                     # int8 per-channel symmetric weights, int8 dynamic per-token activations
IGNORED = ["lm_head"]
COPIED_FILES = ("tokenizer.model", "tokenizer_config.json")


def _scheme():
    from compressed_tensors.quantization import preset_name_to_scheme
    return preset_name_to_scheme(PRESET, ["Linear"])


def quantization_config() -> dict:
    """The ``quantization_config`` entry of config.json, as compressed-tensors / vLLM read it."""
    from compressed_tensors.config import CompressionFormat
    from compressed_tensors.quantization import QuantizationConfig, QuantizationStatus
    config = QuantizationConfig(config_groups={"group_0": _scheme()}, format=CompressionFormat.int_quantized.value,
                                quantization_status=QuantizationStatus.COMPRESSED, ignore=list(IGNORED))
    return config.model_dump(mode="json", exclude_none=True)


def is_quantized(name: str) -> bool:
    """``model.layers.N.<self_attn|mlp>.<linear>.weight`` of the decoder layers."""
    parts = name.split(".")
    return name.startswith(LAYER_PREFIX) and parts[-1] == "weight" and parts[-2] in QUANTIZED_LINEARS


def quantize_linear(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in) float weight -> (out, in) int8 and (out, 1) fp32 scales, symmetric per output channel."""
    from compressed_tensors.quantization.lifecycle.forward import quantize
    from compressed_tensors.quantization.utils import calculate_qparams
    args = _scheme().weights
    w = weight.float()
    scale, zero_point = calculate_qparams(w.amin(dim=1, keepdim=True), w.amax(dim=1, keepdim=True), args)
    q = quantize(w, scale, zero_point, args, dtype=torch.int8)
    return q.contiguous(), scale.to(torch.float32).contiguous()


def _shards(source: Path) -> list[str]:
    index = source / "model.safetensors.index.json"
    if index.exists():
        return sorted(set(json.loads(index.read_text())["weight_map"].values()))
    return sorted(p.name for p in source.glob("*.safetensors"))


def convert(source: Path, dest: Path) -> Path:
    """Write the W8A8 folder ``dest`` from the Step1 folder ``source``; returns ``dest``."""
    from safetensors import safe_open
    from safetensors.torch import save_file
    source, dest = Path(source), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    weight_map: dict[str, str] = {}
    for shard in _shards(source):
        out: dict[str, torch.Tensor] = {}
        with safe_open(str(source / shard), "pt") as f:
            for name in f.keys():
                tensor = f.get_tensor(name)
                if is_quantized(name):
                    q, scale = quantize_linear(tensor)
                    out[name], out[name + "_scale"] = q, scale
                else:
                    out[name] = tensor.contiguous()
        save_file(out, str(dest / shard), metadata={"format": "pt"})
        weight_map.update({k: shard for k in out})
        del out
    (dest / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map},
                                                                  indent=1))
    config = json.loads((source / "config.json").read_text())
    config["quantization_config"] = quantization_config()
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    for name in COPIED_FILES:
        if (source / name).exists():
            shutil.copyfile(source / name, dest / name)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="the Step1 folder (Step-Audio-EditX: config.json + *.safetensors)")
    ap.add_argument("dest", type=Path, help="the W8A8 folder to write (vLLM --model)")
    args = ap.parse_args()
    print(convert(args.source, args.dest))


if __name__ == "__main__":
    main()
