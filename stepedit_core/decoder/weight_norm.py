"""Weight norm in vocoder checkpoints: the layout of the (g, v) keys and folding them into plain weights.

HiFT's hift.pt and BigVGAN's checkpoints store most convs weight-normed: w = g · v / ‖v‖, the 2-norm over
every dim of v except dim 0, with g of shape ``(out, 1, 1)`` for a Conv1d weight ``(out, in, k)``. Two key forms
exist: torch's parametrization (``X.parametrizations.weight.original0`` = g, ``...original1`` = v; torch >= 2.1)
and the legacy hook (``X.weight_g`` / ``X.weight_v``; BigVGAN's official convs). For ``ConvTranspose1d``
(weight ``(in, out, k)``) dim 0 is the input channel, which is what torch's ``weight_norm(dim=0)`` does too.

The vocoder modules here are built *folded* (plain ``weight``); a conv whose checkpoint weight is weight-normed
is tagged with :func:`weight_normed`. :func:`load_weight_normed` folds each tagged (g, v) pair once at load
time, then checks keys and shapes strictly (missing / unexpected / mis-shaped keys raise CheckpointError),
so inference pays nothing for the reparametrisation. :func:`weight_norm_layout` gives the keys and shapes a
checkpoint of a given form must have (tests and manifests compare against it).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn as nn

from ..errors import CheckpointError

# Key suffixes of a weight-normed conv in a state dict (torch >= 2.1 parametrization / legacy hook form).
WN_PARAM_G, WN_PARAM_V = "parametrizations.weight.original0", "parametrizations.weight.original1"
WN_LEGACY_G, WN_LEGACY_V = "weight_g", "weight_v"


def weight_normed(conv: nn.Module) -> nn.Module:
    """Tag a conv whose checkpoint weight is stored weight-normed (folded at load time)."""
    conv.weight_normed = True
    return conv


def weight_normed_modules(model: nn.Module) -> list[str]:
    """Names of the tagged sub-modules of ``model``, in ``named_modules`` order."""
    return [name for name, m in model.named_modules() if getattr(m, "weight_normed", False)]


def weight_norm_layout(model: nn.Module, form: str) -> dict[str, tuple[int, ...]]:
    """Checkpoint keys and shapes of a folded vocoder (one exposing ``weight_normed_modules``) in ``form``:
    ``"parametrization"`` (original0 / original1), ``"legacy"`` (weight_g / weight_v) or ``"folded"``."""
    if form not in ("parametrization", "legacy", "folded"):
        raise ValueError(f"unknown checkpoint form {form!r}")
    layout = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if form == "folded":
        return layout
    g_key, v_key = (WN_PARAM_G, WN_PARAM_V) if form == "parametrization" else (WN_LEGACY_G, WN_LEGACY_V)
    wn, out = set(model.weight_normed_modules()), {}
    for key, shape in layout.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf == "weight" and prefix in wn:
            out[f"{prefix}.{g_key}"] = (shape[0],) + (1,) * (len(shape) - 1)   # g keeps dim 0 only
            out[f"{prefix}.{v_key}"] = shape
        else:
            out[key] = shape
    return out


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """w = g · v / ‖v‖, the 2-norm over every dim of v except dim 0 (torch weight_norm with dim=0)."""
    if hasattr(torch, "_weight_norm"):      # the kernel torch's own weight_norm uses: bit-identical weights
        return torch._weight_norm(v, g, 0)
    dims = tuple(range(1, v.dim()))
    return v * (g / torch.linalg.vector_norm(v, dim=dims, keepdim=True))


def fold_state_dict(state_dict: Mapping[str, torch.Tensor], weight_normed: Sequence[str]
                    ) -> dict[str, torch.Tensor]:
    """Replace each (g, v) pair of the modules in ``weight_normed`` by its folded ``weight``.

    Both key forms are accepted; an already folded ``X.weight`` passes through. Incomplete pairs raise
    CheckpointError.
    """
    out = dict(state_dict)
    broken = []
    for prefix in weight_normed:
        for g_key, v_key in ((WN_PARAM_G, WN_PARAM_V), (WN_LEGACY_G, WN_LEGACY_V)):
            g_name, v_name = f"{prefix}.{g_key}", f"{prefix}.{v_key}"
            if g_name in out or v_name in out:
                if g_name not in out or v_name not in out:
                    broken.append(g_name if g_name not in out else v_name)
                    continue
                out[f"{prefix}.weight"] = fold_weight_norm(out.pop(g_name).float(), out.pop(v_name).float())
    if broken:
        raise CheckpointError("the vocoder checkpoint has incomplete weight-norm pairs", missing=broken)
    return out


def load_weight_normed(model: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str, *,
                       device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    """Fold the checkpoint's weight norm into ``model`` (a vocoder exposing ``weight_normed_modules`` and
    ``checkpoint_layout``), checking keys and shapes strictly; returns it in eval mode on device/dtype."""
    folded = fold_state_dict(state_dict, model.weight_normed_modules())
    expected = model.checkpoint_layout("folded")
    missing = sorted(set(expected) - set(folded))
    unexpected = sorted(set(folded) - set(expected))
    mismatched = sorted(f"{k}: {tuple(folded[k].shape)} != {expected[k]}"
                        for k in set(expected) & set(folded) if tuple(folded[k].shape) != expected[k])
    if missing or unexpected or mismatched:
        raise CheckpointError(f"the state dict does not match the configured {what}",
                              missing=missing, unexpected=unexpected, mismatched=mismatched)
    model.load_state_dict({k: v.to(torch.float32) for k, v in folded.items()}, strict=True)
    return model.to(device=device, dtype=dtype).eval()
