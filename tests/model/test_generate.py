"""Sampling loop: official processor rules, seeds, stop rules, group delivery, constrained mode."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from stepedit_core.errors import InvalidInputError
from stepedit_core.model.generate import (SamplingOptions, constrain_logits, generate, max_new_tokens_for_audio,
                                    max_new_tokens_for_text, next_token, repetition_banned_id, slot_range,
                                    warp_logits)
from stepedit_core.model.llm import Step1Config, Step1ForCausalLM
from stepedit_core.tokens import AUDIO_TOKEN_OFFSET as OFF, check_llm_output

EOT = 3
VOCAB = OFF + 5120 + 16            # room for every <audio_N> plus a few ids above


class ScriptedModel:
    """Stands in for Step1ForCausalLM: at step k it returns logits strongly preferring ``script[k]``
    (or a callable of the history), so stop rules can be checked id by id."""

    def __init__(self, script):
        self.script = script
        self.seen: list[int] = []
        self.weight = torch.zeros(1)

    def get_input_embeddings(self):
        return SimpleNamespace(weight=self.weight)

    def new_cache(self, max_len):
        return SimpleNamespace(length=0, max_len=max_len)

    def step(self, ids, cache, logits_to_keep=1):
        self.seen += ids[0].tolist()
        cache.length += ids.shape[1]
        assert cache.length <= cache.max_len
        k = len(self.seen) - self.prompt_len
        logits = torch.zeros(VOCAB)
        logits[EOT] = -5.0                  # below the flat background unless wanted
        want = self.script(self.seen) if callable(self.script) else self.script[k]
        logits[want] = 30.0
        return logits.view(1, 1, -1)

    def run(self, prompt, options, **kw):
        self.seen, self.prompt_len = [], len(prompt)
        return generate(self, prompt, options, **kw)


def audio_stream(groups: int) -> list[int]:
    out = []
    for g in range(groups):
        out += [OFF + 10 * g, OFF + 10 * g + 1, OFF + 1024 + g, OFF + 2000 + g, OFF + 5000 + g]
    return out


GREEDY = SamplingOptions(do_sample=False)
PROMPT = [1, 4, 100, 101, 3, 4, 102]


def test_repetition_rule_window_and_threshold():
    assert repetition_banned_id([7] * 9) is None                       # fewer than 10 ids: no-op
    assert repetition_banned_id([5] * 8 + [7, 7]) == 7                 # 2 of 10 > 0.1
    assert repetition_banned_id(list(range(10, 19)) + [7]) is None     # once: 0.1 is not > 0.1
    assert repetition_banned_id([7] + list(range(10, 19)) + [7]) is None  # the other 7 is 11 ids back
    assert repetition_banned_id([1, 7] + list(range(10, 17)) + [7]) == 7  # prompt ids count in the window


def test_ban_applies_before_warpers():
    logits = torch.zeros(100)
    logits[7], logits[8] = 10.0, 5.0
    history = list(range(20, 28)) + [7, 7]
    assert next_token(logits, history, 0, GREEDY, None) == 8
    assert next_token(logits, history, 0, SamplingOptions(do_sample=False, repetition_guard=False), None) == 7
    # top_k=1 after the ban still draws the runner-up, so the ban precedes top-k.
    g = torch.Generator().manual_seed(0)
    assert next_token(logits, history, 0, SamplingOptions(top_k=1, seed=0), g) == 8


def test_sampling_distribution_is_temperature_top_k():
    torch.manual_seed(0)
    logits = torch.randn(80) * 2
    g = torch.Generator().manual_seed(1)
    opts = SamplingOptions(repetition_guard=False)
    draws = torch.tensor([next_token(logits, [], 0, opts, g) for _ in range(6000)])
    expected = torch.softmax(warp_logits(logits, 0.7, 50, 1.0), -1)
    assert (expected > 0).sum() == 50
    freq = torch.bincount(draws, minlength=80).float() / len(draws)
    assert freq[expected == 0].sum() == 0                               # nothing outside the top 50
    assert (freq - expected).abs().max() < 0.02


def test_top_p_keeps_smallest_nucleus():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    kept = torch.isfinite(warp_logits(logits, 1.0, 0, 0.7))
    assert kept.tolist() == [True, True, False, False]
    assert torch.isfinite(warp_logits(logits, 1.0, 0, 1.0)).all()


def test_eot_stops_and_is_not_returned():
    body = audio_stream(3)
    r = ScriptedModel(body + [EOT]).run(PROMPT, GREEDY)
    assert r.stop_reason == "eot" and list(r.ids) == body
    assert r.prompt_len == len(PROMPT) and r.decode_steps == len(body)
    assert check_llm_output(list(r.ids) + [EOT]).groups == 3
    checked = r.audio_tokens(repair=False)
    assert checked.had_eot and checked.tokens == tuple(t - OFF for t in body)


def test_caps_drop_nothing():
    body = audio_stream(3)
    r = ScriptedModel(body + [EOT]).run(PROMPT, SamplingOptions(do_sample=False, max_new_tokens=7))
    assert r.stop_reason == "max_new_tokens" and list(r.ids) == body[:7]
    r = ScriptedModel(body + [EOT]).run(PROMPT, SamplingOptions(do_sample=False, max_total_tokens=len(PROMPT) + 9))
    assert r.stop_reason == "max_total" and list(r.ids) == body[:9]
    # EOT as the last token the cap allows is still seen as EOT.
    r = ScriptedModel(body + [EOT]).run(PROMPT, SamplingOptions(do_sample=False, max_new_tokens=len(body) + 1))
    assert r.stop_reason == "eot" and list(r.ids) == body
    with pytest.raises(InvalidInputError):
        ScriptedModel(body).run(PROMPT, SamplingOptions(max_total_tokens=len(PROMPT)))
    with pytest.raises(InvalidInputError):
        ScriptedModel(body).run([], GREEDY)
    with pytest.raises(InvalidInputError):
        ScriptedModel(body).run(torch.ones(2, 5, dtype=torch.long), GREEDY)
    capped = ScriptedModel(body + [EOT]).run(PROMPT, SamplingOptions(do_sample=False, max_new_tokens=7))
    checked = capped.audio_tokens()                       # 7 ids: one whole group kept, 2 dropped
    assert not checked.had_eot and checked.groups == 1 and checked.dropped == 2


def test_should_stop_cancels_before_the_next_step():
    body = audio_stream(4)
    model = ScriptedModel(body + [EOT])
    polls = []
    r = model.run(PROMPT, GREEDY, should_stop=lambda: polls.append(1) or len(polls) > 6)
    assert r.stop_reason == "cancelled" and r.ids == tuple(body[:7])
    assert len(model.seen) == len(PROMPT) + 6             # no model step after the cancel


def test_groups_are_delivered_complete_and_stop_at_a_broken_stream():
    body = audio_stream(3)
    got = []
    r = ScriptedModel(body[:13] + [EOT]).run(PROMPT, GREEDY, on_group=got.append)
    assert got == [tuple(t - OFF for t in body[:5]), tuple(t - OFF for t in body[5:10])]
    assert len(r.ids) == 13
    got = []
    broken = body[:5] + [OFF + 1500] + body[6:] + [EOT]          # vq06 id in a vq02 slot
    ScriptedModel(broken).run(PROMPT, GREEDY, on_group=got.append)
    assert got == [tuple(t - OFF for t in body[:5])]


def test_constrain_logits_slots_and_eot():
    for pos, (lo, hi) in [(0, (OFF, OFF + 1024)), (1, (OFF, OFF + 1024)), (2, (OFF + 1024, OFF + 5120)),
                          (4, (OFF + 1024, OFF + 5120)), (5, (OFF, OFF + 1024))]:
        assert slot_range(pos) == (lo, hi)
        out = constrain_logits(torch.zeros(VOCAB), pos)
        finite = torch.isfinite(out).nonzero().view(-1)
        allowed = set(range(lo, hi)) | ({EOT} if pos in (5,) else set())
        assert set(finite.tolist()) == allowed


def test_constrained_mode_repairs_a_bad_model():
    # This model wants text id 500 at every third step and a vq06 id everywhere else, and ends with EOT
    # mid-group: unconstrained the stream breaks; constrained it is whole groups ending in EOT.
    def wants(seen):
        k = len(seen) - len(PROMPT)
        return EOT if k >= 12 else (500 if k % 3 == 0 else OFF + 3000)

    bad = ScriptedModel(wants).run(PROMPT, SamplingOptions(do_sample=False, max_new_tokens=40))
    assert bad.ids[0] == 500
    for options in (SamplingOptions(do_sample=False, constrained=True, max_new_tokens=40),
                    SamplingOptions(constrained=True, seed=3, max_new_tokens=40)):
        r = ScriptedModel(wants).run(PROMPT, options)
        assert r.stop_reason == "eot" and len(r.ids) == 15                # EOT waits for the group boundary
        checked = check_llm_output(list(r.ids) + [EOT], repair=False)
        assert checked.groups == 3


def test_max_new_token_rules():
    n = max_new_tokens_for_audio(500)                  # 12 s of source audio
    assert n % 5 == 1 and n >= 2 * 500
    assert max_new_tokens_for_audio(1000) > n
    t = max_new_tokens_for_text("你好，世界")
    assert t % 5 == 1 and t > max_new_tokens_for_text("你好")
    assert max_new_tokens_for_text("a b") == max_new_tokens_for_text("ab")   # spaces do not count


@pytest.fixture(scope="module")
def tiny(fixtures_root):
    d = fixtures_root / "step1_llm"
    model = Step1ForCausalLM(Step1Config(**json.loads((d / "config.json").read_text()))).eval()
    model.load_state_dict(load_file(str(d / "weights.safetensors")))
    return model, load_file(str(d / "io.safetensors"))


def test_greedy_generate_matches_fixture(tiny):
    model, io = tiny
    r = generate(model, io["input_ids"], SamplingOptions(do_sample=False, repetition_guard=False, max_new_tokens=8))
    assert list(r.ids) == io["greedy_ids"][0].tolist()
    assert r.stop_reason == "max_new_tokens" and r.seed is None
    assert r.prefill_s > 0 and r.decode_steps == 7 and r.decode_tok_s > 0


def test_seeded_sampling_is_deterministic(tiny):
    model, io = tiny
    a = generate(model, io["input_ids"], SamplingOptions(seed=11, max_new_tokens=24))
    b = generate(model, io["input_ids"], SamplingOptions(seed=11, max_new_tokens=24))
    c = generate(model, io["input_ids"], SamplingOptions(seed=12, max_new_tokens=24))
    assert a.ids == b.ids and a.seed == 11
    assert a.ids != c.ids
    fresh = generate(model, io["input_ids"], SamplingOptions(max_new_tokens=24))
    again = generate(model, io["input_ids"], SamplingOptions(seed=fresh.seed, max_new_tokens=24))
    assert fresh.seed is not None and fresh.ids == again.ids
