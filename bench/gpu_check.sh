#!/usr/bin/env bash
# One-command check of the GPU path on a machine with an NVIDIA GPU (never run on this project's CPU-only
# machines): installs vLLM 0.32.0 (CUDA build) + stepedit-vllm-plugin into a venv and runs the plugin's tests
# there: official fixture parity, untied lm_head, the attention backend (TRITON_ATTN, the one with sqrt-ALiBi),
# batched prompts vs the project's Step1, prefix caching, the sampling processors, and the end-to-end
# serve --llm-server take. Usage: bash bench/gpu_check.sh   (env VENV: where the venv goes)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
V="${VENV:-${TMPDIR:-/tmp}/stepedit-vllm-gpu}"
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -m venv "$V"
"$V/bin/pip" install -q vllm==0.32.0 pytest==9.0.3 soundfile==0.14.0 soxr==1.1.0 httpx
"$V/bin/pip" install -q --no-deps "$ROOT/vllm_plugin"
"$V/bin/python" -m pytest -q "$ROOT/vllm_plugin/tests"
