"""CAM++ speaker embedding (x-vector) through ``campplus.onnx`` (the last step of the prompt preprocessing).

The official frontend (GH:cli/frontend.py ``extract_spk_embedding``) runs the ONNX graph on the CPU provider with
one intra-op thread and feeds it *by position*: ``{session.get_inputs()[0].name: feat}``, reading output 0. The
real tensor names are therefore not needed; this module binds by position too, and checks the graph's
*structure* at load time instead: exactly one float input of rank 3 whose last dim is 80 (or symbolic), and a
first output whose last dim is 192 (or symbolic). A graph that fails the check raises CheckpointError before any
request uses it.

Names: the 3D-Speaker exporter names the tensors ``feature`` / ``embedding``; CosyVoice-era exports of this
very file are ``input`` / ``output``: a public C++ runtime of CosyVoice's campplus.onnx (rwkv-mobile's
cosyvoice frontend) feeds it with the hard-coded names ``{"input"}`` -> ``{"output"}``, so those names are taken
as the official ones [I: one independent port]. They are still only reported, never required, because the
official Python code binds by position and the real file is not on this machine.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import CheckpointError, ModelUnavailableError, InvalidInputError
from .features import FBANK_NUM_MEL_BINS, campplus_input

CAMPPLUS_FILE = "campplus.onnx"
CAMPPLUS_EMBED_DIM = 192                 # CAMPPlus(embedding_size=192), GH flow spk_embed_dim 192
CAMPPLUS_FEAT_DIM = FBANK_NUM_MEL_BINS   # (1, T, 80) mean-normalised fbank
CAMPPLUS_INPUT_NAME = "input"            # [I] per a port that binds by name; we bind by position
CAMPPLUS_OUTPUT_NAME = "output"          # [I] same source
CAMPPLUS_INTRA_OP_THREADS = 1            # official SessionOptions.intra_op_num_threads
KALDI_FRAME_SAMPLES = 400                # one 25 ms fbank frame at 16 kHz: the shortest usable prompt


def _static_dim(dim) -> Optional[int]:
    return int(dim) if isinstance(dim, (int, np.integer)) else None


class CampPlusEmbedder:
    """Wraps a campplus.onnx session: 16 kHz waveform (1, N) -> x-vector (1, 192), float32 on CPU.

    ``providers=None`` picks CUDA when onnxruntime offers it and ``prefer_cuda`` is set, else CPU (the official
    choice, and the reference numerics).
    """

    def __init__(self, onnx_path: str | os.PathLike, *, providers: Optional[Sequence[str]] = None,
                 prefer_cuda: bool = True, intra_op_num_threads: int = CAMPPLUS_INTRA_OP_THREADS):
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a hard requirement of the engine
            raise ModelUnavailableError("onnxruntime is needed for the CAM++ speaker embedding") from exc
        path = Path(onnx_path)
        if path.is_dir():
            path = path / CAMPPLUS_FILE
        if not path.is_file():
            raise CheckpointError(f"CAM++ model not found: {path}", missing=[str(path)])
        if providers is None:
            available = ort.get_available_providers()
            providers = (["CUDAExecutionProvider"] if prefer_cuda and "CUDAExecutionProvider" in available
                         else []) + ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(intra_op_num_threads)
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt graphs
            raise CheckpointError(f"could not load CAM++ model {path}: {exc}") from exc
        self.path = path
        self.input_name, self.output_name = self._check_signature()

    def _check_signature(self) -> tuple[str, str]:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        problems = []
        if len(inputs) != 1:
            problems.append(f"expected 1 input, found {[i.name for i in inputs]}")
        else:
            inp = inputs[0]
            if inp.type != "tensor(float)":
                problems.append(f"input {inp.name!r} has type {inp.type}, expected tensor(float)")
            if len(inp.shape) != 3 or _static_dim(inp.shape[2]) not in (None, CAMPPLUS_FEAT_DIM):
                problems.append(f"input {inp.name!r} has shape {inp.shape}, expected (batch, frames, 80)")
        if not outputs:
            problems.append("the graph has no output")
        else:
            out = outputs[0]
            if not out.shape or _static_dim(out.shape[-1]) not in (None, CAMPPLUS_EMBED_DIM):
                problems.append(f"output {out.name!r} has shape {out.shape}, expected (batch, 192)")
        if problems:
            raise CheckpointError(f"{self.path} is not a CAM++ speaker model: " + "; ".join(problems),
                                  mismatched=problems)
        return inputs[0].name, outputs[0].name

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def embed_features(self, feat: torch.Tensor) -> torch.Tensor:
        """campplus input (1, T, 80) (``features.campplus_input``) -> embedding (1, 192) float32."""
        if feat.dim() != 3 or feat.shape[-1] != CAMPPLUS_FEAT_DIM or feat.shape[1] < 1:
            raise InvalidInputError(f"CAM++ features must be (1, T>=1, 80), got {tuple(feat.shape)}")
        array = np.ascontiguousarray(feat.detach().cpu().numpy(), dtype=np.float32)
        out = self.session.run([self.output_name], {self.input_name: array})[0]
        embedding = torch.from_numpy(np.asarray(out, dtype=np.float32).reshape(array.shape[0], -1))
        if embedding.shape[-1] != CAMPPLUS_EMBED_DIM:
            raise CheckpointError(f"CAM++ produced {embedding.shape[-1]} values per utterance, expected 192")
        return embedding

    def embed(self, wav16: torch.Tensor) -> torch.Tensor:
        """16 kHz mono waveform (1, N) or (N,) in [-1, 1] -> x-vector (1, 192)."""
        if wav16.dim() == 1:
            wav16 = wav16[None]
        if wav16.shape[-1] < KALDI_FRAME_SAMPLES:
            raise InvalidInputError("the prompt is too short for a speaker embedding (< 25 ms at 16 kHz)")
        return self.embed_features(campplus_input(wav16))

    __call__ = embed


def load_campplus(path: str | os.PathLike, **kwargs) -> CampPlusEmbedder:
    """``CampPlusEmbedder`` from a campplus.onnx file or the CosyVoice-300M-25Hz folder holding it."""
    return CampPlusEmbedder(path, **kwargs)
