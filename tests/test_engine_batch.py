"""The engine's batch entries (clone_batch / edit_batch) on the tiny checkpoint (fp32): each seed's take equals
the take made alone, the prefix cache serves repeated prompts, and batches over the caps are refused up front."""
from __future__ import annotations

import numpy as np
import pytest

import stepedit_core as sc
from stepedit_core import batching
from stepedit_core.errors import InvalidInputError
from stepedit_core.model import prompts
from stepedit_core.model.prefix_cache import PREFILL_BLOCK_TOKENS
from stepedit_core.interface import CloneRequest, EditRequest
from tests.test_engine import SR, _clip, base_engine, engine, one_thread, tiny_model_path  # noqa: F401 (fixtures)

SEEDS = [11, 12, 13]


def _same_take(a: sc.EngineResult, b: sc.EngineResult) -> None:
    assert a.seed == b.seed and a.tokens == b.tokens
    assert np.array_equal(a.audio.samples, b.audio.samples)


def test_clone_candidates_in_one_batch_equal_the_candidates_made_alone(engine):
    request = CloneRequest(_clip(2.0, seed=1), "hello world", "the voice says hello to the world")
    batch = engine.clone_batch(request, SEEDS)
    alone = [engine.clone(CloneRequest(request.prompt_audio, request.prompt_text, request.target_text, s))
             for s in SEEDS]
    for a, b in zip(batch, alone):
        _same_take(a, b)
    assert len({r.tokens for r in batch}) == len(SEEDS)
    assert all(r.metadata["batch_seeds"] == tuple(SEEDS) for r in batch)
    assert "batch_seeds" not in alone[0].metadata


def test_a_batch_runs_the_flow_solver_once_for_its_rows(engine, monkeypatch):
    """decoder.rows: one solver run per piece for all candidates, each take the one made alone (bit for bit;
    rows of different lengths: tests/decoder/test_rows.py)."""
    request = EditRequest(_clip(2.0, seed=4), "hello world", "emotion", "happy")
    seeds = [21, 22, 23, 24]
    solver = engine.decoder.flow.decoder
    calls = []
    monkeypatch.setattr(solver, "forward", lambda *a, _f=solver.forward, **k: calls.append(a[0].shape) or _f(*a, **k))
    on_cpu = [rounds[0] for rounds in engine.edit_batch(request, seeds)]
    assert [shape[0] for shape in calls] == [1] * len(seeds)        # the CPU default: row by row
    calls.clear()
    monkeypatch.setattr(batching, "BATCHED_DECODER_DEVICES", frozenset({"cpu"}))   # as on a GPU
    batch = [rounds[0] for rounds in engine.edit_batch(request, seeds)]
    assert [shape[0] for shape in calls] == [len(seeds)]           # (rows, 80, longest row's frames)
    monkeypatch.undo()
    for s, take, cpu_take in zip(seeds, batch, on_cpu):
        _same_take(take, engine.edit(EditRequest(request.audio, request.audio_text, "emotion", "happy", seed=s))[0])
        _same_take(take, cpu_take)


def test_a_repeated_prompt_prefills_only_its_tail(engine):
    eng = engine.with_options()                   # its own, empty prefix cache
    request = CloneRequest(_clip(5.0, seed=2), "hello world", "a first line", 5)
    cold = eng.clone(request)
    assert cold.metadata["prefix_cache"]["reused_tokens"] == 0
    prompt_len = cold.metadata["pieces"][0]["prompt_len"]
    assert prompt_len > 256
    second = eng.clone(CloneRequest(request.prompt_audio, request.prompt_text, "a second line", 6))
    assert second.metadata["prefix_cache"]["hits"] == 1
    reused = second.metadata["prefix_cache"]["reused_tokens"]
    head = eng._clone_head(prompts.clone_speaker_name("hello world", request.prompt_audio.loaded), "hello world",
                           eng.encode_prompt(request.prompt_audio.samples, SR))[0]
    assert reused == head and prompt_len - PREFILL_BLOCK_TOKENS < head < prompt_len   # the voice part, whole
    again = eng.clone(request)                    # a cache hit gives the cold take bit for bit
    _same_take(again, cold)
    fresh = engine.with_options(prefix_cache_bytes=0)
    _same_take(fresh.clone(CloneRequest(request.prompt_audio, request.prompt_text, "a second line", 6)), second)


def test_edit_batch_rounds_equal_the_edits_made_alone(engine):
    request = EditRequest(_clip(2.0, seed=3), "hello world", "emotion", "happy", n_iterations=2)
    batch = engine.edit_batch(request, SEEDS[:2])
    for s, rounds in zip(SEEDS[:2], batch):
        alone = engine.edit(EditRequest(request.audio, request.audio_text, "emotion", "happy", n_iterations=2,
                                        seed=s))
        assert len(rounds) == 2 and [r.iteration for r in rounds] == [1, 2]
        for a, b in zip(rounds, alone):
            _same_take(a, b)


def test_batches_over_the_work_cap_or_the_memory_bound_are_refused_naming_what_fits(engine):
    request = CloneRequest(_clip(2.0, seed=1), "hello world", "the voice says hello to the world")
    one = engine.estimate_seconds("clone", 2.0, len(request.target_text))
    two = engine.estimate_seconds("clone", 2.0, len(request.target_text), candidates=2)
    four = engine.estimate_seconds("clone", 2.0, len(request.target_text), candidates=4)
    assert one < two < four < 4 * one                        # rows share the prefill and the weight reads
    capped = engine.with_options(max_request_seconds=(two + four) / 2)
    with pytest.raises(InvalidInputError, match=r"these 4 candidates would take about \d+ s on the "
                                                r"Step-Audio-EditX; one request may take at most \d+ s: "
                                                r"[23] candidates fit"):
        capped.clone_batch(request, [1, 2, 3, 4])
    assert len(capped.clone_batch(request, [1, 2])) == 2
    per_token = batching.row_kv_bytes(engine.llm.config, 1, 0)
    small = engine.with_options(max_batch_kv_bytes=per_token * 1000)     # a row holds ~350 positions here
    with pytest.raises(InvalidInputError, match=r"these 3 candidates would hold about .* MiB .*: "
                                                r"(1 candidate|2 candidates) fit"):
        small.clone_batch(request, [1, 2, 3])


@pytest.mark.parametrize("seeds, message", [([], "between 1 and"), (list(range(9)), "between 1 and"),
                                            ([1, 1], "must differ"), ([1, -1], "whole number >= 0"),
                                            ([1, "x"], "seed"), ((), "between 1 and")])
def test_bad_seed_lists_are_refused(seeds, message):
    with pytest.raises(InvalidInputError, match=message):
        batching.check_seeds(seeds)


def test_engines_without_batching_loop_over_the_seeds():
    from tests.fake_engine import FakeEngine
    fake = FakeEngine()
    request = CloneRequest(_clip(1.0), "hi there", "hello", None)
    takes = fake.clone_batch(request, [3, 4])
    assert [t.seed for t in takes] == [3, 4]


def test_the_app_runner_sends_candidates_as_one_batch(engine, monkeypatch):
    from app_ui.runner import CloneJob, EngineRunner
    runner = EngineRunner(engine, zero_gpu=False)
    clip = _clip(2.0, seed=1)
    requests = [CloneRequest(clip, "hello world", "the voice says hello", s) for s in SEEDS]
    job = CloneJob(tuple(requests))
    assert runner.estimate(job) == engine.estimate_seconds("clone", 2.0, len("the voice says hello"), candidates=3)
    assert runner.estimate(job) < sum(runner.estimate(CloneJob((r,))) for r in requests)
    calls = []
    real = type(engine).clone_batch
    monkeypatch.setattr(type(engine), "clone_batch", lambda self, *a: calls.append(a[1]) or real(self, *a))
    takes = runner.clone(requests)
    assert calls == [SEEDS] and [t.seed for t in takes] == SEEDS
    assert all(t.metadata["batch_seeds"] == tuple(SEEDS) for t in takes)
    runner.clone([requests[0]])                              # one request: the plain path
    assert len(calls) == 1
