#!/usr/bin/env bash
# Build, or reuse, the vLLM venv (README "Serving at scale"); prints its path as the last line.
# The venv is keyed by a hash of the lock (constraints-vllm.txt): a clone with the same lock reuses it, a changed
# lock builds a new one. Everything comes from constraints-vllm.txt with --no-deps (pip takes exactly those lines;
# torchaudio / torchvision / torchcodec / triton are left out on purpose, see that file). The plugin is
# (re)installed on every call: it is small, and the venv must always carry this checkout's copy.
# Env: STEPEDIT_VLLM_VENV (where; default ~/.cache/stepedit/venv-vllm-HASH), PYTHON (default python3).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KEY=$(cat "$ROOT/constraints-vllm.txt" | sha256sum | cut -c1-12)
VENV="${STEPEDIT_VLLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/stepedit/venv-vllm-$KEY}"
PY="${PYTHON:-python3}"
if [ ! -f "$VENV/.complete-$KEY" ]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$ROOT/constraints-vllm.txt" >&2
  touch "$VENV/.complete-$KEY"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall \
  "$ROOT/vllm_plugin" >&2
rm -rf "$ROOT/vllm_plugin/build" "$ROOT/vllm_plugin/"*.egg-info
echo "$VENV"
