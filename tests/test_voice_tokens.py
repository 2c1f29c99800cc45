"""A library voice's cached prompt tokens on the real engine (tiny checkpoint, tests/tiny_checkpoint.py).

The first clone from a voice tokenizes its prompt (vq02 + vq06) and stores the tokens in the voice under the
tokenizer's fingerprint; later clones from that voice, even from a fresh engine with an empty in-memory
prompt cache (as after a restart), read them instead of tokenizing, and give bit-identical audio. Tokens
written by a tokenizer with other weights are never used. Each ``engine.with_options()`` below is a fresh
engine over the same loaded models with its own empty prompt cache."""
from __future__ import annotations

import logging

import numpy as np
import pytest

import stepedit_core as sc
from stepedit_core.script import parse_script, render_script
from stepedit_core.tokens import GROUP_SIZE, check_groups
from stepedit_core.voices import VoiceLibrary
from tests.tiny_checkpoint import build_tiny_checkpoint
from tests.torch_threads import torch_threads

SR = 16000
CAP = 15                     # new-token cap: 3 whole groups (enough to compare outputs, fast on 2 cores)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def _load(path):
    logging.getLogger("stepedit_core.checkpoint").setLevel(logging.ERROR)   # tiny sizes != official sizes
    return sc.load_engine("stepaudio", model_path=path).with_options(constrained=True, max_new_tokens=CAP)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return _load(build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_a"), seed=0))


@pytest.fixture()
def calls(engine, monkeypatch):
    """How often the audio tokenizer of ``engine`` (shared by its with_options copies) really tokenizes."""
    count = {"n": 0}
    real = engine.audio_tokenizer.tokenize

    def counting(*args, **kwargs):
        count["n"] += 1
        return real(*args, **kwargs)
    monkeypatch.setattr(engine.audio_tokenizer, "tokenize", counting)
    return count


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wav = sum(np.sin(2 * np.pi * 150.0 * k * t) / k for k in range(1, 6))
    wav = wav * (0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t)) * 0.2 + 0.005 * rng.standard_normal(t.size)
    return wav.astype(np.float32)


@pytest.fixture()
def library(tmp_path):
    lib = VoiceLibrary(tmp_path / "voices")
    lib.save("Ann", sc.AudioClip.from_array(_speechlike(1.5, 1), SR), "hello there")
    return lib


def _clone(engine, lib, store: bool, seed: int = 5) -> sc.EngineResult:
    voice = lib.get("Ann")
    return engine.clone(sc.CloneRequest(voice.clip(), voice.text, "good morning", seed=seed,
                                        prompt_store=lib.token_store("Ann") if store else None))


def test_second_clone_from_a_voice_reads_its_cached_tokens(engine, library, calls):
    plain = _clone(engine.with_options(), library, store=False)
    assert calls["n"] == 1 and library.get("Ann").prompt_tokens == {}        # no store: nothing written

    first = _clone(engine.with_options(), library, store=True)
    assert calls["n"] == 2
    cached = library.get("Ann").prompt_tokens
    (key, tokens), = cached.items()
    assert key.startswith(engine.audio_tokenizer.fingerprint() + "/")
    assert tuple(tokens) == first.metadata["prompt_tokens"] and len(tokens) % GROUP_SIZE == 0
    check_groups(tokens)

    second = _clone(engine.with_options(), library, store=True)               # fresh engine: empty LRU
    assert calls["n"] == 2, "the cached prompt tokens were not used"
    assert "tokenize" in second.timings and second.metadata["prompt_cache"]["hits"] == 0
    for take in (first, second):                                               # bit-identical to uncached
        assert np.array_equal(take.audio.samples, plain.audio.samples)
        assert take.tokens == plain.tokens
        assert take.metadata["prompt_tokens"] == plain.metadata["prompt_tokens"]
        assert take.metadata["pieces"][0]["prompt_ids"] == plain.metadata["pieces"][0]["prompt_ids"]


def test_broken_cache_entry_is_retokenized_and_replaced(engine, library, calls):
    first = _clone(engine.with_options(), library, store=True)
    (key, tokens), = library.get("Ann").prompt_tokens.items()
    library.cache_prompt_tokens("Ann", key, tokens[:-1])                       # not whole 2+3 groups
    again = _clone(engine.with_options(), library, store=True)
    assert calls["n"] == 2 and np.array_equal(again.audio.samples, first.audio.samples)
    assert library.get("Ann").prompt_tokens[key] == list(tokens)


def test_tokens_of_another_tokenizer_are_not_used(engine, library, calls, tmp_path):
    _clone(engine.with_options(), library, store=True)
    (key_a, tokens_a), = library.get("Ann").prompt_tokens.items()
    other = _load(build_tiny_checkpoint(tmp_path / "tiny_b", seed=1))         # other tokenizer weights
    fp_b = other.audio_tokenizer.fingerprint()
    assert fp_b != engine.audio_tokenizer.fingerprint()
    # even a planted entry with A's tokens under B's fingerprint but for other samples is not used
    library.cache_prompt_tokens("Ann", f"{fp_b}/{'0' * 16}", tokens_a)
    b_calls = {"n": 0}
    real = other.audio_tokenizer.tokenize

    def counting(*args, **kwargs):
        b_calls["n"] += 1
        return real(*args, **kwargs)
    other.audio_tokenizer.tokenize = counting
    with_store = _clone(other, library, store=True)
    assert b_calls["n"] == 1, "tokens cached by another tokenizer were used"
    plain = _clone(other.with_options(), library, store=False)
    assert np.array_equal(with_store.audio.samples, plain.audio.samples)
    keys = library.get("Ann").prompt_tokens
    assert keys[key_a] == list(tokens_a) and len(keys) == 3                   # A's entry kept, B's added
    (key_b,) = [k for k in keys if k.startswith(fp_b) and not k.endswith("0" * 16)]
    assert tuple(keys[key_b]) == with_store.metadata["prompt_tokens"]


def test_script_lines_use_the_voice_cache(engine, library, calls):
    script = parse_script("Ann: good morning.\nAnn: see you soon.", voices=library.names())
    first = render_script(engine.with_options(), script, library, seed=3)
    assert calls["n"] == 1 and len(library.get("Ann").prompt_tokens) == 1
    again = render_script(engine.with_options(), script, library, seed=3)    # fresh engine, cached voice
    assert calls["n"] == 1
    assert np.array_equal(again.master, first.master)


def test_a_request_with_a_voice_store_crosses_a_process_boundary(engine, library, calls):
    """ZeroGPU pickles the app's CloneRequest into its GPU worker: the store goes with it (a folder and a
    name) and the worker's write lands in the voice on disk."""
    import pickle  # noqa: PLC0415
    voice = library.get("Ann")
    request = sc.CloneRequest(voice.clip(), voice.text, "good morning", seed=5,
                              prompt_store=library.token_store("Ann"))
    shipped = pickle.loads(pickle.dumps(request))
    result = engine.with_options().clone(shipped)
    assert calls["n"] == 1
    (tokens,) = library.get("Ann").prompt_tokens.values()
    assert tuple(tokens) == result.metadata["prompt_tokens"]
    library.rename("Ann", "Anna")                         # a renamed voice stops caching; the clone still works
    again = engine.with_options().clone(shipped)
    assert calls["n"] == 2 and np.array_equal(again.audio.samples, result.audio.samples)
