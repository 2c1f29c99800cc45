"""The engine flags every front end shares (``app.py``, ``python -m stepedit_core``), and how they become
:func:`~stepedit_core.loader.load_engine` arguments, so a flag means the same thing behind every door."""
from __future__ import annotations

import argparse
import os

from .interface import Engine
from .loader import ENGINE_KINDS, load_engine

MODEL_PATH_ENV = "STEPEDIT_MODEL_PATH"
LLM_SERVER_ENV = "STEPEDIT_LLM_SERVER"
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "bfloat16", "float16", "float32")
QUANTIZATIONS = ("none", "int8", "nf4")


def add_engine_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--model-path --download --engine --device --dtype --quantization --llm-server --llm-model``."""
    group = parser.add_argument_group("engine")
    group.add_argument("--model-path", default=os.environ.get(MODEL_PATH_ENV),
                       help=f"folder holding Step-Audio-EditX/ and Step-Audio-Tokenizer/ (env {MODEL_PATH_ENV})")
    group.add_argument("--download", action="store_true", help="download the checkpoints with huggingface_hub")
    group.add_argument("--engine", choices=ENGINE_KINDS, default="auto",
                       help="auto: the real model when weights are found, else the offline lite engine")
    group.add_argument("--device", choices=DEVICES, default="auto")
    group.add_argument("--dtype", choices=DTYPES, default="auto")
    group.add_argument("--quantization", choices=QUANTIZATIONS, default="none")
    group.add_argument("--llm-server", default=os.environ.get(LLM_SERVER_ENV), metavar="URL",
                       help=f"run the LLM stage on this vLLM server (README: Serving at scale; env {LLM_SERVER_ENV})")
    group.add_argument("--llm-model", default=None, metavar="NAME",
                       help="the served model name on --llm-server (default: its only model)")
    return parser


def engine_kwargs(args: argparse.Namespace, *, download: bool = False) -> dict:
    """``load_engine`` keyword arguments from parsed engine flags ("auto" / "none" become None)."""
    return {"kind": args.engine, "model_path": args.model_path, "download": bool(args.download or download),
            "device": None if args.device == "auto" else args.device,
            "dtype": None if args.dtype == "auto" else args.dtype,
            "quantization": None if args.quantization == "none" else args.quantization,
            "llm_server": getattr(args, "llm_server", None), "llm_model": getattr(args, "llm_model", None)}


def engine_from_args(args: argparse.Namespace, *, download: bool = False) -> Engine:
    """Load the engine the flags describe; raises the loader's typed errors."""
    return load_engine(**engine_kwargs(args, download=download))


__all__ = ["add_engine_arguments", "engine_kwargs", "engine_from_args", "MODEL_PATH_ENV"]
