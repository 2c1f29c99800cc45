"""stepedit_core: a compact inference stack for StepFun's Step-Audio-EditX.

Public API: :func:`load_engine`, the request/result types and the typed errors.

Layout, in the order a request passes through it: ``tokenizer/`` (vq02 + vq06 -> dual-codebook tokens),
``model/`` (the Step1 LLM, its sampling, text tokenizer and prompt builder), ``decoder/`` (flow + HiFT
token2wav, CosyVoice-300M-25Hz). The top-level modules are the contracts the stages share (audio, tokens,
catalog, interface, errors, compat, validation) and what drives them (engine, runtime, longform, checkpoint,
loader).
"""
from __future__ import annotations

from .errors import (AudioDecodeError, CheckpointError, InvalidInputError, ModelUnavailableError,
                     StepEditError, TokenStreamError, UnsupportedEditError)
from .interface import (AudioClip, Capabilities, CloneRequest, EditRequest, Engine, EngineResult)
from .loader import load_engine
from .model import llm as _step1  # noqa: F401  registers model_type "step1" with the transformers Auto classes

__version__ = "0.1.0"

__all__ = [
    "load_engine", "Engine", "Capabilities", "AudioClip", "CloneRequest", "EditRequest", "EngineResult",
    "StepEditError", "InvalidInputError", "AudioDecodeError", "UnsupportedEditError", "ModelUnavailableError",
    "CheckpointError", "TokenStreamError",
]
