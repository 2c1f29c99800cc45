"""Import shims for dependencies whose wheels do not match every machine.

torchaudio 2.11 from PyPI ships a CUDA-linked C++ extension. On a CPU-only torch build that extension
fails to load (``libc10_cuda.so`` missing) and ``import torchaudio`` raises ``OSError``, although the
pure-Python parts we use (``functional.resample``, ``transforms.Resample``, ``compliance.kaldi.fbank``)
need no extension at all. ``import_torchaudio`` retries the import with the extension marked absent.
"""
from __future__ import annotations

import sys
import types


def _purge(prefix: str) -> None:
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        del sys.modules[name]


def import_torchaudio():
    """Return the ``torchaudio`` module, loading it without its C++ extension when that cannot load."""
    try:
        import torchaudio
        return torchaudio
    except OSError:
        _purge("torchaudio")
    stub = types.ModuleType("torchaudio._extension")
    stub._IS_TORCHAUDIO_EXT_AVAILABLE = False
    stub._IS_ALIGN_AVAILABLE = False

    def fail_if_no_align(func):  # alignment kernels are never used here
        return func

    stub.fail_if_no_align = fail_if_no_align
    sys.modules["torchaudio._extension"] = stub
    import torchaudio
    return torchaudio
