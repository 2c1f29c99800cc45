"""Tests of the vLLM plugin, run in the vLLM venv (vllm_plugin/make_venv.sh), never in the main suite:

    $(bash vllm_plugin/make_venv.sh | tail -1)/bin/python -m pytest vllm_plugin/tests

vLLM runs in-process (VLLM_ENABLE_V1_MULTIPROCESSING=0), fp32, eager, a 64 MiB KV cache; the repository root
is on sys.path so the project's own Step1 and tiny checkpoints are importable next to vLLM."""
import os
import sys
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")      # a shared CI machine: no core pinning

FIXTURE = Path(os.environ.get("STEPEDIT_FIXTURES_DIR", ROOT / "tests" / "fixtures")) / "step1_llm"
KV_CACHE_BYTES = 64 << 20
# CPU_ATTN's kernels take head_dim a multiple of 16 (the main suite's tiny LLM has 8): hidden 128 / 2 heads = 64
VLLM_TINY_LLM = dict(hidden_size=128, intermediate_size=256, num_attention_heads=2, num_attention_groups=1,
                     num_hidden_layers=2)


def vllm_llm(model: Path, **kwargs):
    from vllm import LLM
    return LLM(model=str(model), skip_tokenizer_init=True, dtype="float32", enforce_eager=True, seed=0,
               kv_cache_memory_bytes=KV_CACHE_BYTES, **kwargs)


@pytest.fixture(scope="session")
def fixture_model(tmp_path_factory):
    """The official parity fixture as a model folder vLLM reads (config.json + *.safetensors)."""
    folder = tmp_path_factory.mktemp("step1_fixture")
    (folder / "config.json").write_bytes((FIXTURE / "config.json").read_bytes())
    (folder / "model.safetensors").write_bytes((FIXTURE / "weights.safetensors").read_bytes())
    return folder


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """The LLM of the main suite's tiny checkpoint (tests/tiny_checkpoint.write_llm, random weights, untied
    lm_head) with head_dim 64, laid out as a checkpoint root (``<root>/Step-Audio-EditX``)."""
    from tests import tiny_checkpoint
    root = tmp_path_factory.mktemp("tiny_vllm")
    (root / tiny_checkpoint.EDITX).mkdir()
    with mock.patch.dict(tiny_checkpoint.TINY_LLM, VLLM_TINY_LLM):
        tiny_checkpoint.write_llm(root / tiny_checkpoint.EDITX)
    return root


@pytest.fixture(scope="session")
def tiny_llm_dir(tiny_root):
    from tests.tiny_checkpoint import EDITX
    return tiny_root / EDITX
