"""``load_engine``: pick and build an engine (the neural Step-Audio-EditX engine or the offline lite one).

Finding, downloading and verifying the weights is ``checkpoint.py``'s job; without weights,
``kind="auto"`` falls back to the lite engine.
"""
from __future__ import annotations

import logging
import os

from .errors import InvalidInputError, ModelUnavailableError
from .interface import Engine

log = logging.getLogger(__name__)

ENGINE_KINDS = ("auto", "stepaudio", "lite")


def load_engine(kind: str = "auto", model_path: str | os.PathLike | None = None, *, download: bool = False,
                device: str | None = None, dtype: str | None = None, quantization: str | None = None,
                llm_server: str | None = None, llm_model: str | None = None) -> Engine:
    """Build an engine.

    ``kind``: ``"stepaudio"`` (the real model; raises ModelUnavailableError without weights), ``"lite"``
    (offline DSP + small shipped models), or ``"auto"`` (stepaudio when weights are found, else lite).
    ``dtype`` / ``quantization`` the device cannot run fail here, before anything is loaded, with one line
    naming what works instead (runtime.device_dtypes, model.loading.quantization_choices).
    ``llm_server`` / ``llm_model``: the LLM stage on a vLLM server (engine.load_stepaudio_engine); its errors
    are never a reason to fall back to the lite engine.
    """
    if kind not in ENGINE_KINDS:
        raise InvalidInputError(f"unknown engine {kind!r}; expected one of {', '.join(ENGINE_KINDS)}")
    if kind in ("auto", "stepaudio"):
        try:
            from .engine import load_stepaudio_engine  # noqa: PLC0415 (heavy; imported on demand)
        except ImportError as exc:
            if kind == "stepaudio":
                raise ModelUnavailableError(f"the Step-Audio-EditX engine is not available: {exc}") from exc
            log.info("neural engine not importable (%s); using the lite engine", exc)
        else:
            check_llm_options(device, dtype, quantization)
            try:
                return load_stepaudio_engine(model_path, download=download, device=device, dtype=dtype,
                                             quantization=quantization, llm_server=llm_server,
                                             llm_model=llm_model)
            except ModelUnavailableError as exc:
                if kind == "stepaudio" or llm_server:
                    raise
                log.warning("Step-Audio-EditX weights not available (%s); using the lite engine", exc)
    from .lite import LiteEngine  # noqa: PLC0415
    return LiteEngine()


def check_llm_options(device: str | None, dtype: str | None, quantization: str | None) -> None:
    """Raise InvalidInputError / ModelUnavailableError for a dtype or quantization the device cannot run."""
    from .model.loading import check_quantization  # noqa: PLC0415
    from .runtime import pick_device, pick_llm_dtype  # noqa: PLC0415

    dev = pick_device(device)
    chosen = pick_llm_dtype(dev, dtype)
    if quantization is not None:
        check_quantization(quantization, dev, chosen if dtype else None)
