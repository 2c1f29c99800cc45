"""What training needs from Step1ForCausalLM (labels -> assistant-only loss, an attention mask for padded
batches) and the large-margin pair miner (stepedit_core.train.pairs)."""
from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from stepedit_core.errors import InvalidInputError
from stepedit_core.model.generate import SamplingOptions
from stepedit_core.model.llm import CACHE_FIELD, IGNORE_INDEX
from stepedit_core.tokens import EOT_ID, GROUP_SIZE, check_groups
from stepedit_core.train import data, export, pairs
from tests.train.conftest import random_tokens


@pytest.fixture(scope="module")
def llm(ckpt):
    return export.load_for_training(ckpt).eval()


@pytest.fixture(scope="module")
def example(text_tok):
    rng = random.Random(0)
    t = data.EditTriplet(random_tokens(rng, 2), "hello", "clone", None, random_tokens(rng, 2), "hello world",
                         "clone_0")
    return data.triplet_example(t, text_tok.encode)


def test_loss_is_on_the_assistant_tokens_only(llm, example):
    ids = torch.tensor([example.input_ids])
    labels = torch.tensor([example.labels])
    out = llm(ids, labels=labels, use_cache=False)
    p = example.prompt_len
    manual = F.cross_entropy(out.logits[0, p - 1:-1].float(), ids[0, p:])    # position t predicts t + 1
    assert out.loss.item() == pytest.approx(manual.item(), rel=1e-5)
    everything = llm(ids, labels=ids, use_cache=False).loss                 # prompt included: another value
    assert abs(everything.item() - out.loss.item()) > 1e-3
    summed = llm(ids, labels=labels, use_cache=False, num_items_in_batch=2 * (len(ids[0]) - p)).loss
    assert summed.item() == pytest.approx(out.loss.item() / 2, rel=1e-5)   # sum / items of all micro-batches
    with pytest.raises(InvalidInputError, match="logits_to_keep"):
        llm(ids, labels=labels, logits_to_keep=1, use_cache=False)


def test_padded_batches_match_single_sequences(llm, example):
    ids = list(example.input_ids)
    short = ids[:-7]
    single = llm(torch.tensor([short]), use_cache=False).logits[0]
    pad = len(ids) - len(short)
    left = torch.tensor([[0] * pad + short, ids])                            # left padding (generation)
    mask = torch.tensor([[0] * pad + [1] * len(short), [1] * len(ids)])
    out = llm(left, attention_mask=mask, use_cache=False).logits
    assert torch.allclose(out[0, pad:], single, atol=1e-4)
    assert torch.allclose(out[1], llm(torch.tensor([ids]), use_cache=False).logits[0], atol=1e-4)
    right = torch.tensor([short + [0] * pad, ids])                           # right padding (training)
    out = llm(right, attention_mask=mask.flip(-1), use_cache=False).logits
    assert torch.allclose(out[0, :len(short)], single, atol=1e-4)
    with pytest.raises(InvalidInputError, match="attention_mask"):
        llm(left, attention_mask=mask[:, 1:], use_cache=False)


def test_mine_pair_keeps_only_large_margins():
    rng = random.Random(1)
    cands = [pairs.Candidate(random_tokens(rng, 1), key=k) for k in ("a", "b", "c")]
    judge = pairs.labels_judge({"a": 0.2, "b": 0.9, "c": 0.5})
    pair = pairs.mine_pair(None, [1, 2], cands, judge, margin=0.6)
    assert pair.chosen == cands[1].tokens and pair.rejected == cands[0].tokens
    assert pair.margin == pytest.approx(0.7)
    rec = pair.record(with_margin=True)
    assert rec["chosen_ids"][:2] == [1, 2] and rec["chosen_ids"][-1] == EOT_ID and rec["margin"] == pytest.approx(0.7)
    assert pairs.mine_pair(None, [1, 2], cands, judge, margin=0.8) is None
    assert len(pairs.mine_pairs([(None, [1], cands), (None, [2], cands[:1])], judge, 0.1)) == 1
    with pytest.raises(InvalidInputError, match="no label"):
        pairs.mine_pair(None, [1], cands + [pairs.Candidate(cands[0].tokens, key="z")], judge)


def test_duration_judge_prefers_the_wanted_length():
    judge = pairs.duration_judge(lambda req: req)
    short = pairs.Candidate((0, 1, 1024, 1025, 1026))
    long = pairs.Candidate((0, 1, 1024, 1025, 1026) * 8)
    assert judge(40 / 41.666666666666664, long) > judge(40 / 41.666666666666664, short)


def test_sample_candidates_with_the_engine_sampler(llm, example):
    prompt = list(example.input_ids[:example.prompt_len])
    cands = pairs.sample_candidates(llm, prompt, seeds=[1, 2, 3], source_tokens=10,
                                    options=SamplingOptions(constrained=True, max_new_tokens=2 * GROUP_SIZE))
    assert [c.seed for c in cands] == [1, 2, 3]
    for c in cands:
        check_groups(c.tokens)
        assert 0 < len(c.tokens) <= 2 * GROUP_SIZE
    again = pairs.sample_candidates(llm, prompt, seeds=[1], source_tokens=10,
                                    options=SamplingOptions(constrained=True, max_new_tokens=2 * GROUP_SIZE))
    assert again[0].tokens == cands[0].tokens                                  # seeded


def _grads(model, example) -> dict[str, torch.Tensor]:
    model.zero_grad()
    ids = torch.tensor([example.input_ids])
    model(ids, labels=torch.tensor([example.labels]), use_cache=False).loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_gives_the_same_gradients(ckpt, example):
    model = export.load_for_training(ckpt).train()
    plain = _grads(model, example)
    model.gradient_checkpointing_enable()                # what SFTConfig(gradient_checkpointing=True) calls
    assert model.is_gradient_checkpointing and all(l.gradient_checkpointing for l in model.model.layers)
    mlp, calls = model.model.layers[0].mlp, []
    mlp.forward = lambda x, f=mlp.forward: calls.append(1) or f(x)    # counts runs, recompute included
    checkpointed = _grads(model, example)
    del mlp.forward
    assert len(calls) == 2                              # the block ran again in the backward pass
    assert plain.keys() == checkpointed.keys() and len(plain) == len(list(model.parameters()))
    worst = max((plain[k] - checkpointed[k]).abs().max().item() for k in plain)
    print(f"max |grad difference| with checkpointing: {worst:.2e}")
    assert worst < 1e-5
    with pytest.raises(InvalidInputError, match="gradient checkpointing"):
        model(torch.tensor([example.input_ids]), cache=model.new_cache(len(example.input_ids) + 8))
    out = model(torch.tensor([example.input_ids]))      # use_cache defaults off while checkpointing
    assert getattr(out, CACHE_FIELD) is None
    with torch.no_grad():                              # no backward: generation keeps its cache
        assert model(torch.tensor([example.input_ids]), use_cache=True).logits.shape[1] == len(example.input_ids)
