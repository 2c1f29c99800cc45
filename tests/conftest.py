"""Shared pytest configuration.

Parity tests read their golden data from a fixture root (default: ``tests/fixtures``, a copy of
``../shared/fixtures``). Point ``--fixtures-dir`` or ``STEPEDIT_FIXTURES_DIR`` at any folder of the same
format to run them against another fixture set.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

DEFAULT_FIXTURES = Path(__file__).parent / "fixtures"

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: outside the quick tier (tests/tiers.py); run by the full suite")


def pytest_collection_modifyitems(config, items):
    from tests.tiers import is_slow  # noqa: PLC0415
    for item in items:
        if is_slow(item.nodeid):
            item.add_marker(pytest.mark.slow)


def pytest_addoption(parser):
    parser.addoption("--fixtures-dir", default=None,
                     help="root folder of parity fixtures (subfolders step1_llm, flow, hift, frontend, vq02)")


@pytest.fixture(scope="session")
def fixtures_root(request) -> Path:
    root = request.config.getoption("--fixtures-dir") or os.environ.get("STEPEDIT_FIXTURES_DIR")
    path = Path(root) if root else DEFAULT_FIXTURES
    assert path.is_dir(), f"fixture root {path} does not exist"
    return path
