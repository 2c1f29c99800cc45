"""The ``train`` extra (trl, peft, accelerate, datasets), imported on demand with a clear message when absent."""
from __future__ import annotations

import importlib.util

from ..compat import import_torchaudio
from ..errors import ModelUnavailableError

TRAIN_PACKAGES = ("trl", "peft", "accelerate", "datasets")


def require_train_deps() -> None:
    """Raise ModelUnavailableError naming what is missing; make torchaudio importable first (transformers'
    processor modules, which TRL imports, ``import torchaudio``; compat loads it without its CUDA extension
    on CPU-only torch builds)."""
    missing = [p for p in TRAIN_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise ModelUnavailableError(f"training needs {', '.join(missing)}: pip install 'stepedit-core[train]'")
    import_torchaudio()
