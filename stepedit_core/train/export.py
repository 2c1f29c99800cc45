"""Loading the Step1 LLM for training, the HF tokenizer the TRL trainers need, and saving a tuned LLM as a
checkpoint folder that ``load_engine("stepaudio", model_path=...)`` loads without conversion.

Saved layout (the same as the official release, one shard)::

    out/Step-Audio-EditX/config.json                        the base config.json, unchanged
    out/Step-Audio-EditX/model-00001-of-00001.safetensors   the tuned weights, official key names, base dtype
    out/Step-Audio-EditX/model.safetensors.index.json
    out/Step-Audio-EditX/tokenizer.model, tokenizer_config.json      copied from the base
    out/Step-Audio-EditX/CosyVoice-300M-25Hz/               the base decoder (symlink, or a copy)
    out/Step-Audio-Tokenizer/                               the base audio tokenizer (symlink, or a copy)

A PEFT (LoRA) model is merged into its base weights first, so the engine never sees an adapter.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from ..checkpoint import COSYVOICE_DIRNAME, EDITX_DIRNAME, TOKENIZER_DIRNAME, CheckpointPaths, find_checkpoint
from ..errors import InvalidInputError, ModelUnavailableError
from ..model.llm import Step1ForCausalLM
from ..model.loading import check_state_dict_layout, load_step1, read_config
from ..tokens import EOT_ID

SHARD_NAME = "model-00001-of-00001.safetensors"
PAD_TOKEN = "<unk>"            # id 0 = config.pad_token_id (tokenizer_config.json: pad_token "<unk>")
EOT_TOKEN = "<|EOT|>"          # id 3, the end of every assistant turn (the model's eos_token_id)


def base_paths(model_path: str | os.PathLike) -> CheckpointPaths:
    paths = find_checkpoint(model_path)
    if paths is None:
        raise ModelUnavailableError(f"no Step-Audio-EditX checkpoint under {Path(model_path).name!r}: expected "
                                    f"{EDITX_DIRNAME}/ and {TOKENIZER_DIRNAME}/ side by side")
    return paths


def load_for_training(model_path: str | os.PathLike, dtype: torch.dtype = torch.float32,
                      device: str | torch.device = "cpu") -> Step1ForCausalLM:
    """The Step1 LLM of a checkpoint, trainable (``load_step1`` returns a frozen, eval-mode model)."""
    model = load_step1(base_paths(model_path).editx, device=device, dtype=dtype)
    model.requires_grad_(True).train()
    model.config.use_cache = False           # no KV cache in teacher-forced training
    return model


def hf_tokenizer(model_path: str | os.PathLike):
    """A ``PreTrainedTokenizerFast`` over the checkpoint's ``tokenizer.model`` (the unigram fast tokenizer of
    text_tokenizer.py), for the TRL trainers: pad ``<unk>`` (0), eos ``<|EOT|>`` (3), bos ``<s>`` (1).
    Training ids are never produced by it (data.py builds them with the engine's prompt builder); the
    trainers use it for padding ids, EOS and decoding."""
    from transformers import PreTrainedTokenizerFast

    from ..model.text_tokenizer import TextTokenizer

    editx = base_paths(model_path).editx
    fast = TextTokenizer(editx / "tokenizer.model", backend="tokenizers")
    tok = PreTrainedTokenizerFast(tokenizer_object=fast._tk, bos_token="<s>", eos_token=EOT_TOKEN,
                                  pad_token=PAD_TOKEN, unk_token="<unk>", padding_side="left")
    if tok.eos_token_id != EOT_ID:
        raise InvalidInputError(f"{EOT_TOKEN} has id {tok.eos_token_id} in this tokenizer, not {EOT_ID}")
    return tok


def _plain_model(model) -> Step1ForCausalLM:
    """Unwrap PEFT (merging LoRA into the base weights) and trainer wrappers down to the Step1ForCausalLM."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    while hasattr(model, "module") and not isinstance(model, Step1ForCausalLM):
        model = model.module
    if not isinstance(model, Step1ForCausalLM):
        raise InvalidInputError(f"expected a Step1ForCausalLM (or a PEFT model over one), got {type(model).__name__}")
    return model


def _expected_layout(editx: Path) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the Step1 state dict for the folder's config (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = Step1ForCausalLM(read_config(editx))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _place(src: Path, dst: Path, copy: bool) -> None:
    if dst.is_symlink() or dst.exists():
        shutil.rmtree(dst) if dst.is_dir() and not dst.is_symlink() else dst.unlink()
    if copy:
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy2(src, dst)
    else:
        dst.symlink_to(src.resolve(), target_is_directory=src.is_dir())


def save_for_engine(model, base_model_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                    copy: bool = False, dtype: torch.dtype | None = None, state_dict: dict | None = None) -> Path:
    """Write ``out_dir`` as a complete checkpoint (module docstring); returns it, ready for ``load_engine``.

    ``dtype`` defaults to the base checkpoint's (bf16 for the official release). ``copy=False`` symlinks the
    unchanged decoder and audio tokenizer (about 1.7 GB in the release) instead of copying them.
    ``state_dict`` replaces ``model.state_dict()``: under DeepSpeed ZeRO-3 pass
    ``trainer.accelerator.get_state_dict(trainer.model)`` (gathered on every rank, written by the main one).
    The keys are checked against the Step1 layout before anything is written."""
    from safetensors.torch import save_file

    base = base_paths(base_model_path)
    out = Path(out_dir)
    editx = out / EDITX_DIRNAME
    if editx.resolve() == base.editx.resolve():
        raise InvalidInputError("the output folder is the base checkpoint itself; choose another folder")
    if state_dict is None:
        state_dict = _plain_model(model).state_dict()
    check_state_dict_layout({k: tuple(v.shape) for k, v in state_dict.items()}, _expected_layout(base.editx),
                            "the tuned model")
    editx.mkdir(parents=True, exist_ok=True)
    config = json.loads((base.editx / "config.json").read_text())
    if dtype is None:
        name = str(config.get("torch_dtype") or config.get("dtype") or "float32")
        dtype = getattr(torch, name.replace("torch.", ""))
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state_dict.items()}
    save_file(state, str(editx / SHARD_NAME), metadata={"format": "pt"})
    total = sum(t.numel() * t.element_size() for t in state.values())
    (editx / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": {k: SHARD_NAME for k in state}}, indent=2))
    for stale in editx.glob("model*.safetensors"):
        if stale.name != SHARD_NAME:
            stale.unlink()
    (editx / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy2(base.editx / name, editx / name)
    _place(base.editx / COSYVOICE_DIRNAME, editx / COSYVOICE_DIRNAME, copy)
    _place(base.tokenizer, out / TOKENIZER_DIRNAME, copy)
    return out
