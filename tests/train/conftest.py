"""Shared fixtures of the training tests: one tiny checkpoint (tests/tiny_checkpoint.py), its text tokenizer,
the HF tokenizer the TRL trainers take, and toy audio-token data."""
from __future__ import annotations

import logging
import random

import pytest

from tests.tiny_checkpoint import EDITX, build_tiny_checkpoint
from tests.torch_threads import torch_threads


@pytest.fixture(scope="package", autouse=True)
def two_threads():
    """The tiny models gain nothing from more threads on the shared 2-core machine."""
    with torch_threads(2):
        yield


@pytest.fixture(scope="package")
def ckpt(tmp_path_factory):
    logging.getLogger("stepedit_core.checkpoint").setLevel(logging.ERROR)   # tiny sizes != official sizes
    return build_tiny_checkpoint(tmp_path_factory.mktemp("train_ckpt"))


@pytest.fixture(scope="package")
def text_tok(ckpt):
    from stepedit_core.model.text_tokenizer import load_text_tokenizer
    return load_text_tokenizer(ckpt / EDITX)


@pytest.fixture(scope="package")
def hf_tok(ckpt):
    from stepedit_core.train.export import hf_tokenizer
    return hf_tokenizer(ckpt)


def random_group(rng: random.Random, vq02=range(1024), vq06=range(1024, 5120)) -> list[int]:
    """One 2+3 group in prompt-token space."""
    return [rng.choice(vq02), rng.choice(vq02)] + [rng.choice(vq06) for _ in range(3)]


def random_tokens(rng: random.Random, groups: int, **kw) -> tuple[int, ...]:
    return tuple(t for _ in range(groups) for t in random_group(rng, **kw))
