"""The engine's batch entries (clone_batch / edit_batch) on the tiny checkpoint (fp32): each seed's take equals
the take made alone, the prefix cache serves repeated prompts, and batches over the caps are refused up front."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import stepedit_core as sc
from stepedit_core import batching, stream_rows
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


def test_streamed_candidates_decode_as_one_batch_and_equal_the_streams_made_alone(engine, monkeypatch):
    """stream_clone_batch: one generate_batch for all rows, every row streaming while it runs (chunks of
    several rows interleave), and each row's chunks equal that seed's own stream sample for sample (fp32)."""
    request = CloneRequest(_clip(2.0, seed=1), "hello world", "the voice says hello to the world")
    batches = []
    real = stream_rows.generate_batch
    monkeypatch.setattr(stream_rows, "generate_batch",
                        lambda model, ids, seeds, *a, **k: batches.append(list(seeds)) or real(model, ids, seeds,
                                                                                                *a, **k))
    pairs = list(engine.stream_clone_batch(request, SEEDS))
    assert len(batches) == 1 and len(batches[0]) == len(SEEDS)          # one batch (one piece of text)
    rows = [np.concatenate([c for r, c in pairs if r == i]) for i in range(len(SEEDS))]
    order = [r for r, _ in pairs]
    assert order != sorted(order)                                       # the rows streamed side by side
    for seed, row in zip(SEEDS, rows):
        alone = np.concatenate(list(engine.stream_clone(CloneRequest(request.prompt_audio, request.prompt_text,
                                                                     request.target_text, seed))))
        assert np.array_equal(row, alone)
    assert len({r.tobytes() for r in rows}) == len(SEEDS)


def test_streamed_candidates_stop_when_asked_and_are_refused_over_the_cap(engine, monkeypatch):
    request = CloneRequest(_clip(2.0, seed=1), "hello world", "the voice says hello to the world")
    seen = []
    for row, chunk in engine.stream_clone_batch(request, SEEDS, should_stop=lambda: len(seen) >= 2):
        seen.append(row)
    assert len(seen) == 2                                               # no tails after a stop
    one = engine.estimate_seconds("clone", 2.0, len(request.target_text))
    monkeypatch.setattr(engine, "request_cap", lambda: one * 1.01)
    with pytest.raises(InvalidInputError, match="1 candidate fits"):
        next(engine.stream_clone_batch(request, SEEDS))


def test_the_app_streams_candidates_as_one_batch_and_replays_them(engine, tmp_path, monkeypatch):
    """Studio.clone_stream: candidate 1 plays, all candidates come from one stream_clone_batch; the recipe says
    so (stream_batch) and replays bit for bit; a recipe without the flag (made before batched streams)
    replays its candidates one stream after another."""
    import soundfile as sf
    from app_ui.history import TakeTree
    from app_ui.runner import EngineRunner
    from app_ui.studio import Studio
    path = tmp_path / "prompt.wav"
    sf.write(path, _clip(2.0, seed=1).samples, SR)
    calls = []
    real = type(engine).stream_clone_batch
    monkeypatch.setattr(type(engine), "stream_clone_batch",
                        lambda self, r, seeds, *a: calls.append(list(seeds)) or real(self, r, seeds, *a))
    studio = Studio(EngineRunner(engine), tmp_path / "root", check=False)
    tree = studio.ensure_workdir(TakeTree(), "s")
    stream = studio.clone_stream(tree, str(path), "hello world", "the voice says hello", [21, 22])
    played = []
    while True:
        try:
            played.append(next(stream))
        except StopIteration as stop:
            tree, ids = stop.value
            break
    assert calls == [[21, 22]] and len(ids) == 2
    assert tree.actions[-1].params["stream_batch"] is True
    assert len(np.concatenate(played)) == len(sf.read(tree.get(ids[0]).audio)[0])   # candidate 1 is what played
    recipe = studio.export_recipe(tree)
    _, _, report = studio.replay(studio.ensure_workdir(TakeTree(), "r"), recipe)
    assert calls[-1] == [21, 22] and "2/2 are bit-identical" in report
    old = json.loads(Path(recipe).read_text(encoding="utf-8"))
    del old["actions"][0]["params"]["stream_batch"]
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    calls.clear()
    _, _, report = studio.replay(studio.ensure_workdir(TakeTree(), "o"), str(tmp_path / "old.json"))
    assert calls == [] and "2/2 are bit-identical" in report          # fp32: one by one gives the same takes
