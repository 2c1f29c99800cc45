"""Batched decoding (generate_batch) and the prefix KV cache on the tiny checkpoint's LLM (fp32)."""
from __future__ import annotations

import pytest
import torch

from stepedit_core.errors import InvalidInputError
from stepedit_core.model.generate import SamplingOptions, generate, generate_batch
from stepedit_core.model.loading import load_step1
from stepedit_core.model.prefix_cache import (PREFILL_BLOCK_TOKENS, PrefixCache, block_ends, prefill,
                                               weights_identity)
from stepedit_core.tokens import AUDIO_TOKEN_OFFSET, EOT_ID
from tests.tiny_checkpoint import write_llm
from tests.torch_threads import torch_threads

SEEDS = [5, 6, 7, 8]
EOT_BOOST = 4.0          # added to the <|EOT|> logit so that rows stop after different numbers of steps


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_llm")
    write_llm(folder)
    return load_step1(folder, device="cpu", dtype=torch.float32).eval()


def prompt(n: int, seed: int = 0) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return [1, 4] + (AUDIO_TOKEN_OFFSET + torch.randint(0, 5120, (n - 2,), generator=g)).tolist()


class EotBoost:
    """The tiny LLM with a constant added to the <|EOT|> logit (the same for every row, alone or batched)."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def step(self, ids, cache, logits_to_keep=1):
        logits = self.model.step(ids, cache, logits_to_keep)
        logits[..., EOT_ID] += EOT_BOOST
        return logits


def test_a_candidate_alone_and_in_a_batch_draw_the_same_ids(llm):
    ids = prompt(300)
    options = SamplingOptions(max_new_tokens=24)
    batch = generate_batch(llm, ids, SEEDS, options)
    alone = [generate(llm, ids, SamplingOptions(max_new_tokens=24, seed=s)) for s in SEEDS]
    assert [r.ids for r in batch] == [r.ids for r in alone]
    assert [r.seed for r in batch] == SEEDS
    assert len({r.ids for r in batch}) == len(SEEDS)          # each seed its own take
    assert all(r.stop_reason == "max_new_tokens" and r.decode_steps == 23 for r in batch)


def test_finished_rows_drop_out_and_the_others_go_on(llm):
    model = EotBoost(llm)
    ids = prompt(200, seed=1)
    options = SamplingOptions(max_new_tokens=60)
    seeds = list(range(20, 26))
    batch = generate_batch(model, ids, seeds, options)
    alone = [generate(model, ids, SamplingOptions(max_new_tokens=60, seed=s)) for s in seeds]
    assert [r.ids for r in batch] == [r.ids for r in alone]
    assert [r.stop_reason for r in batch] == [r.stop_reason for r in alone]
    lengths = {len(r.ids) for r in batch}
    assert len(lengths) > 2 and "eot" in {r.stop_reason for r in batch}     # rows stopped at different steps
    assert all(r.decode_steps == (len(r.ids) if r.stop_reason == "eot" else len(r.ids) - 1) for r in batch)


def test_every_row_streams_its_groups(llm):
    got: dict[int, list] = {}
    batch = generate_batch(llm, prompt(150), [1, 2], SamplingOptions(max_new_tokens=30, constrained=True),
                           on_group=lambda row, group: got.setdefault(row, []).append(group))
    for row, result in enumerate(batch):
        assert [t for g in got[row] for t in g] == [t - AUDIO_TOKEN_OFFSET for t in result.ids[:30]]
        assert len(got[row]) == 6


def test_cancel_stops_every_row(llm):
    calls = []
    batch = generate_batch(llm, prompt(50), [1, 2, 3], SamplingOptions(max_new_tokens=50),
                           should_stop=lambda: calls.append(1) or len(calls) > 3)
    assert [r.stop_reason for r in batch] == ["cancelled"] * 3 and all(len(r.ids) == 4 for r in batch)


def test_no_seeds_is_refused(llm):
    with pytest.raises(InvalidInputError, match="at least one row"):
        generate_batch(llm, prompt(10), [], SamplingOptions(max_new_tokens=5))


def test_prefix_cache_hit_gives_the_cold_logits_and_ids(llm):
    shared = prompt(2 * PREFILL_BLOCK_TOKENS + 40)
    first, second = shared + prompt(22, seed=2)[2:], shared + prompt(50, seed=3)[2:]
    cold = llm.new_cache(len(second))
    cold_logits = prefill(llm, second, cold)
    cache = PrefixCache()
    prefill(llm, first, llm.new_cache(len(first)), cache)
    assert cache.hits == 0 and len(cache) == 2                # the first prompt's two whole blocks
    warm = llm.new_cache(len(second))
    warm_logits = prefill(llm, second, warm, cache)
    assert cache.hits == 1 and cache.reused_tokens == 2 * PREFILL_BLOCK_TOKENS
    assert torch.equal(warm_logits, cold_logits)
    assert all(torch.equal(a[:, :, :len(second)], b[:, :, :len(second)]) for a, b in zip(warm.k, cold.k))
    options = SamplingOptions(max_new_tokens=30)
    hit = generate_batch(llm, second, SEEDS, options, prefix_cache=cache)
    assert [r.ids for r in hit] == [r.ids for r in generate_batch(llm, second, SEEDS, options)]
    assert cache.hits == 2


def test_a_boundary_makes_the_whole_shared_head_reusable(llm):
    head = prompt(PREFILL_BLOCK_TOKENS + 30)
    first, second = head + prompt(20, seed=4)[2:], head + prompt(45, seed=5)[2:]
    assert block_ends(len(first), (len(head),)) == [PREFILL_BLOCK_TOKENS, len(head), len(first)]
    cache = PrefixCache()
    prefill(llm, first, llm.new_cache(len(first)), cache, (len(head),))
    warm = prefill(llm, second, llm.new_cache(len(second)), cache, (len(head),))
    assert cache.reused_tokens == len(head)                   # without the boundary: one block only
    assert torch.equal(warm, prefill(llm, second, llm.new_cache(len(second)), None, (len(head),)))


def test_prefix_cache_never_reuses_the_last_token_block(llm):
    ids = prompt(2 * PREFILL_BLOCK_TOKENS)
    cache = PrefixCache()
    prefill(llm, ids, llm.new_cache(len(ids)), cache)
    again = llm.new_cache(len(ids))
    assert cache.restore(weights_identity(llm), ids, again) == PREFILL_BLOCK_TOKENS   # block 2 holds the last id


def test_prefix_cache_is_bounded_lru_and_per_model(llm, tmp_path):
    ids = prompt(4 * PREFILL_BLOCK_TOKENS + 1)
    probe = PrefixCache()
    prefill(llm, ids[:PREFILL_BLOCK_TOKENS + 1], llm.new_cache(PREFILL_BLOCK_TOKENS + 1), probe)
    block = probe.bytes
    assert block == 2 * 2 * 2 * PREFILL_BLOCK_TOKENS * 8 * 4     # k+v, layers, groups, positions, head dim, fp32
    cache = PrefixCache(max_bytes=2 * block)
    prefill(llm, ids, llm.new_cache(len(ids)), cache)
    assert len(cache) == 2 and cache.bytes == 2 * block
    # the first blocks were evicted first: nothing of this prompt's head is left to reuse
    assert cache.restore(weights_identity(llm), ids, llm.new_cache(len(ids))) == 0
    write_llm(tmp_path, seed=1)
    other = load_step1(tmp_path, device="cpu", dtype=torch.float32).eval()
    cache = PrefixCache()
    prefill(llm, ids, llm.new_cache(len(ids)), cache)
    assert cache.restore(weights_identity(other), ids, other.new_cache(len(ids))) == 0
    before = weights_identity(llm)
    with torch.no_grad():
        llm.model.norm.weight.mul_(1.0)                       # an in-place change names new weights
    assert weights_identity(llm) != before
    assert cache.restore(weights_identity(llm), ids, llm.new_cache(len(ids))) == 0
    with pytest.raises(ValueError):
        PrefixCache(max_bytes=-1)


def test_cache_rows_expand_and_drop(llm):
    cache = llm.new_cache(8)
    llm.step(torch.tensor([prompt(5)]), cache)
    rows = cache.expand(3)
    assert rows.batch == 3 and rows.length == 5 and rows.nbytes == 3 * cache.nbytes
    rows.k[0][2, :, 5] = 7.0
    rows.keep_rows([2, 0])
    assert rows.batch == 2 and bool((rows.k[0][0, :, 5] == 7.0).all()) and torch.equal(rows.k[0][1], cache.k[0][0])


def test_the_draw_pool_draws_the_ids_each_row_draws_alone():
    """model.generate.draw_rows: rows with their own generators draw on a pool of threads (2 threads here);
    every id, and every generator's state after it, is what torch.multinomial gives row by row."""
    import threading

    from stepedit_core.model import generate as gen_mod
    vocab, rows, steps = 74752, 4, 12                     # the real vocabulary
    g = torch.Generator().manual_seed(3)
    pooled = [torch.Generator().manual_seed(40 + r) for r in range(rows)]
    serial = [torch.Generator().manual_seed(40 + r) for r in range(rows)]
    threads = set()
    real_draw = gen_mod._draw

    def spy(probs, generator):
        threads.add(threading.current_thread().name)
        return real_draw(probs, generator)
    with torch_threads(2), torch.inference_mode():
        for _ in range(steps):
            probs = torch.softmax(3 * torch.randn(rows, vocab, generator=g), dim=-1)
            gen_mod._draw, drawn = spy, None
            try:
                drawn = gen_mod.draw_rows(probs, pooled)
            finally:
                gen_mod._draw = real_draw
            assert drawn == [int(torch.multinomial(probs[b], 1, generator=s)) for b, s in enumerate(serial)]
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(pooled, serial))
    assert threads and all(name.startswith("stepedit-draw") for name in threads)


def test_a_batch_on_two_threads_draws_what_each_row_draws_alone(llm):
    """generate_batch with the draw pool (2 threads): each row's ids are its solo run's (fp32)."""
    ids = prompt(40)
    opts = SamplingOptions(max_new_tokens=12, constrained=True)
    with torch_threads(2):
        batch = generate_batch(llm, ids, SEEDS, opts)
        alone = [generate(llm, ids, SamplingOptions(max_new_tokens=12, constrained=True, seed=s)) for s in SEEDS]
    assert [r.ids for r in batch] == [r.ids for r in alone]
    assert len({r.ids for r in batch}) == len(SEEDS)


class StepRows(EotBoost):
    """EotBoost that records how many rows each decode step ran."""

    def __init__(self, model):
        super().__init__(model)
        self.rows: list[int] = []

    def step(self, ids, cache, logits_to_keep=1):
        self.rows.append(ids.shape[0])
        return super().step(ids, cache, logits_to_keep)


@pytest.mark.parametrize("quantization, int8_head", [(None, False), ("int8", False), ("int8", True)])
def test_three_rows_padded_to_four_draw_what_three_rows_draw(llm, tmp_path_factory, quantization, int8_head,
                                                            monkeypatch):
    """PAD_ROWS: a step of 3 live rows runs 4 (a copy of the first); the live rows' ids are those of the
    unpadded 3-row steps, bit for bit, in fp32 and int8 (fp32 or int8 lm_head)."""
    from stepedit_core.model import generate as gen_mod
    model = llm
    if quantization:
        folder = tmp_path_factory.mktemp("tiny_llm_int8")
        write_llm(folder)
        model = load_step1(folder, device="cpu", dtype=torch.float32, quantization=quantization,
                           int8_lm_head=int8_head).eval()
    ids, opts = prompt(120, seed=2), SamplingOptions(max_new_tokens=40)
    runs = {}
    for pad in ({3: 4}, {}):
        monkeypatch.setattr(gen_mod, "PAD_ROWS", pad)
        for seeds in ([30, 31, 32], list(range(33, 39))):
            spy = StepRows(model)
            runs[(bool(pad), len(seeds))] = ([r.ids for r in generate_batch(spy, ids, seeds, opts)], spy.rows)
    for n in (3, 6):
        (padded, steps_padded), (plain, steps_plain) = runs[(True, n)], runs[(False, n)]
        assert padded == plain
        assert 3 in steps_plain and 3 not in steps_padded and 4 in steps_padded     # 3 live rows ran as 4
    assert len({len(i) for i in runs[(True, 6)][0]}) > 2                           # rows stopped at different steps
