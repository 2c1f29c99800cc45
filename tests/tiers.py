"""The quick test tier: ``python -m pytest -m "not slow"`` skips the tests listed here (marked ``slow`` at
collection by conftest.py) and still imports every module of the package and the app (test_layout.py) and
runs each door and the service on the fake engine. The full suite (CI, ``.ci/run``) runs everything.

A test is slow when it launches a server or a browser, loads a lite model (Kokoro, Whisper, DeepFilterNet),
builds a tiny neural checkpoint, trains, or checks numerical parity against the fixtures.
"""
from __future__ import annotations

# node-id prefixes (a file, or file::test)
SLOW: tuple[str, ...] = (
    # servers, browsers, subprocesses
    "tests/test_app.py", "tests/test_browser.py", "tests/test_browser_first.py", "tests/test_app_api.py",
    "tests/test_mcp_hostile.py", "tests/test_cli.py::test_module_entry_point_clones_on_the_lite_engine",
    "tests/test_llm_server.py::test_flag_reaches_every_door_and_a_dead_server_stops_serve",
    "tests/test_server_auth.py::test_a_real_60s_192k_8ch_voice",
    "tests/test_app_units.py::test_importing_app_loads_nothing_and_builds_with_the_lite_engine",
    # lite models (Kokoro TTS, Whisper ASR, speaker embedder, denoiser)
    "tests/test_lite_", "tests/test_server_lite.py", "tests/test_script_lite.py", "tests/test_asr_window.py",
    "tests/test_streaming.py", "tests/test_checks.py", "tests/test_regions.py", "tests/test_validation.py",
    "tests/test_app_script.py", "tests/test_words.py::test_lite_engine_edits_real_speech",
    "tests/test_tags_2026.py::test_every_tag_renders_audibly_and_distinctly",
    # tiny neural checkpoints, parity with the fixtures, training
    "tests/model/", "tests/decoder/", "tests/tokenizer/", "tests/train/", "tests/test_engine.py",
    "tests/test_longform.py", "tests/test_voice_tokens.py",
    # the input fuzzer (hundreds of cases; a sample of each kind stays quick: QUICK_FUZZ)
    "tests/test_fuzz.py",
)
# kept in the quick tier although under a slow prefix: one of a kind
QUICK: tuple[str, ...] = ()


def is_slow(nodeid: str) -> bool:
    return any(nodeid.startswith(p) for p in SLOW) and not any(nodeid.startswith(q) for q in QUICK)
