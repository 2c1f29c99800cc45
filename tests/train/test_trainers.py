"""The three TRL stages end to end on the tiny checkpoint, on CPU, with toy tasks whose outcome is known:

- SFT (full): two target texts, each with its own fixed 2-group target; after training, the loss is below
  SFT_LOSS_BELOW, and the tuned model, saved with ``export.save_for_engine`` and loaded back through
  ``load_engine("stepaudio", model_path=...)``, greedily generates exactly the target (+ EOT) for a speaker
  prompt it never saw; SFT with LoRA trains, merges and loads the same way;
- reward model: chosen candidates use vq06 ids from one small set, rejected from another; held-out pairs are
  ranked right at least RM_HELD_OUT_ACCURACY of the time (chance: 0.5);
- GRPO: one-token completions rewarded when the id is even; the policy's exact expected reward (its top-50
  sampling mass on even ids) rises by at least GRPO_GAIN over a few steps, with the KL term active.
"""
from __future__ import annotations

import random

import pytest
import torch

import stepedit_core as sc
from stepedit_core.model.generate import SamplingOptions, generate
from stepedit_core.tokens import EOT_ID, to_llm_ids
from stepedit_core.train import data, export, grpo, pairs, reward, sft
from tests.train.conftest import random_group, random_tokens

SFT_LOSS_BELOW = 4.0            # mean assistant-token loss over the last logged steps (start: ~10.7 = ln 74752 - ...)
RM_HELD_OUT_ACCURACY = 0.85     # chance is 0.5
GRPO_GAIN = 0.05                # expected-reward gain of the policy (start ~0.5)

TEXTS = ("hello world", "happy sad")


def _clone_triplet(rng: random.Random, text: str, targets: dict, speaker: int) -> data.EditTriplet:
    return data.EditTriplet(random_tokens(rng, 2), "the voice", "clone", None, targets[text], new_text=text,
                            speaker=f"clone_{speaker:04x}")


@pytest.fixture(scope="module")
def toy_sft(text_tok):
    rng = random.Random(0)
    targets = {t: random_tokens(rng, 2) for t in TEXTS}
    train = [_clone_triplet(rng, t, targets, i) for i in range(2) for t in TEXTS]
    held_out = {t: _clone_triplet(rng, t, targets, 99) for t in TEXTS}
    return targets, data.sft_records(train, text_tok.encode), held_out


@pytest.fixture(scope="module")
def full_sft(ckpt, hf_tok, toy_sft, tmp_path_factory):
    _, records, _ = toy_sft
    model = export.load_for_training(ckpt)
    settings = sft.SFTSettings(output_dir=str(tmp_path_factory.mktemp("sft")), max_steps=8, learning_rate=2e-2,
                               per_device_train_batch_size=4, gradient_accumulation_steps=1, logging_steps=2,
                               warmup_steps=0, extra={"lr_scheduler_type": "constant"})
    return sft.train_sft(model, hf_tok, records, settings)


def _losses(trainer) -> list[float]:
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def test_sft_loss_falls_below_the_stated_value(full_sft):
    losses = _losses(full_sft)
    print(f"SFT losses (every 2 steps): {[round(x, 3) for x in losses]}")
    assert losses[0] > 9.0                                  # an untrained model on 74,752 ids
    assert losses[-1] < SFT_LOSS_BELOW, losses


def test_sft_model_saved_for_the_engine_generates_the_target(full_sft, ckpt, toy_sft, text_tok, tmp_path):
    targets, _, held_out = toy_sft
    out = export.save_for_engine(full_sft.model, ckpt, tmp_path / "tuned")
    engine = sc.load_engine("stepaudio", model_path=out)
    assert engine.paths.editx == out / "Step-Audio-EditX"
    greedy = SamplingOptions(do_sample=False, max_new_tokens=len(targets[TEXTS[0]]) + 5)
    for text, triplet in held_out.items():
        gen = generate(engine.llm, data.prompt_ids(triplet, text_tok.encode), greedy)
        assert list(gen.ids) == to_llm_ids(targets[text]) and gen.stop_reason == "eot", text
    base = sc.load_engine("stepaudio", model_path=ckpt)
    gen = generate(base.llm, data.prompt_ids(held_out[TEXTS[0]], text_tok.encode), greedy)
    assert list(gen.ids) != to_llm_ids(targets[TEXTS[0]])   # the untrained model does not already do it


def test_sft_with_lora_trains_merges_and_loads(ckpt, hf_tok, toy_sft, tmp_path):
    _, records, _ = toy_sft
    model = export.load_for_training(ckpt)
    base_q = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    settings = sft.SFTSettings(output_dir=str(tmp_path / "lora"), max_steps=4, learning_rate=5e-2, lora=True,
                               lora_r=4, lora_alpha=8, lora_dropout=0.0, per_device_train_batch_size=4,
                               gradient_accumulation_steps=1, logging_steps=1, warmup_steps=0,
                               gradient_checkpointing=True)
    trainer = sft.train_sft(model, hf_tok, records, settings)
    assert trainer.model.get_base_model().model.layers[0].gradient_checkpointing      # SFTConfig turned it on
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    assert 0 < trainable < 0.01 * total                     # adapters only
    losses = _losses(trainer)
    print(f"LoRA SFT losses {[round(x, 3) for x in losses]}; trainable {trainable} of {total}")
    assert losses[-1] < losses[0], losses
    out = export.save_for_engine(trainer.model, ckpt, tmp_path / "tuned_lora")
    engine = sc.load_engine("stepaudio", model_path=out)
    merged_q = engine.llm.model.layers[0].self_attn.q_proj.weight.float()
    assert not torch.allclose(merged_q, base_q.to(merged_q.dtype), atol=1e-3)   # the LoRA delta is in the weights
    assert not any("lora" in k for k in engine.llm.state_dict())


# -- reward model ------------------------------------------------------------------------------------------

GOOD = range(1024, 1036)        # vq06 ids of "good" candidates (toy)
BAD = range(3072, 3084)
VQ02 = range(12)


def _pair(rng: random.Random, text_tok) -> dict:
    source = random_tokens(rng, 2, vq02=VQ02, vq06=list(GOOD) + list(BAD))
    triplet = data.EditTriplet(source, "the voice", "clone", None, source, new_text="hello world",
                               speaker=f"clone_{rng.randrange(1 << 16):04x}")
    prompt = data.prompt_ids(triplet, text_tok.encode)
    chosen = [pairs.Candidate(random_tokens(rng, 2, vq02=VQ02, vq06=GOOD), key="good")]
    rejected = [pairs.Candidate(random_tokens(rng, 2, vq02=VQ02, vq06=BAD), key="bad")]
    pair = pairs.mine_pair(None, prompt, chosen + rejected, pairs.labels_judge({"good": 1.0, "bad": 0.0}), 0.5)
    return pair.record(with_margin=True)


def test_reward_model_ranks_held_out_pairs(ckpt, hf_tok, text_tok, tmp_path):
    rng = random.Random(5)
    train = [_pair(rng, text_tok) for _ in range(8)]
    held_out = [_pair(rng, text_tok) for _ in range(12)]
    rm = reward.Step1ForSequenceScoring.from_causal_lm(export.load_for_training(ckpt))
    assert reward.pair_accuracy(rm, held_out) == 0.0        # zero head: all ties, no pair ranked right
    settings = reward.RewardSettings(output_dir=str(tmp_path / "rm"), max_steps=8, learning_rate=1e-2,
                                     per_device_train_batch_size=4, gradient_accumulation_steps=1,
                                     logging_steps=2, warmup_steps=0)
    trainer = reward.train_reward(rm, hf_tok, train, settings)
    losses = _losses(trainer)
    assert losses[-1] < losses[0] < 0.7, losses             # Bradley-Terry starts at ln 2 = 0.693
    accuracy = reward.pair_accuracy(trainer.model, held_out)
    print(f"reward-model losses {[round(x, 3) for x in losses]}, held-out pair accuracy {accuracy:.3f}")
    assert accuracy >= RM_HELD_OUT_ACCURACY


# -- GRPO --------------------------------------------------------------------------------------------------

def _even_mass(model, prompt: list[int], top_k: int = 50) -> float:
    """Exact expected reward of one top-k sample: the renormalised top-k mass on even ids."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt]), use_cache=False).logits[0, -1].float()
    top = torch.topk(logits, top_k)
    p = torch.softmax(top.values, -1)
    return float(p[top.indices % 2 == 0].sum())


def _even_first_token(prompts, completion_ids=None, **_):
    return [1.0 if c and c[0] % 2 == 0 else 0.0 for c in completion_ids]


def test_grpo_raises_the_expected_reward(ckpt, hf_tok, text_tok, tmp_path):
    rng = random.Random(0)
    triplet = data.EditTriplet(tuple(random_group(rng)), "hi", "clone", None, tuple(random_group(rng)),
                               new_text="hello world", speaker="clone_0")
    prompt = data.prompt_ids(triplet, text_tok.encode)
    model = export.load_for_training(ckpt)
    before = _even_mass(model, prompt)
    settings = grpo.GRPOSettings(output_dir=str(tmp_path / "grpo"), max_steps=4, learning_rate=3e-3,
                                 num_generations=8, per_device_train_batch_size=8, max_completion_length=1,
                                 temperature=1.0, top_k=50, beta=0.04, logging_steps=1)
    trainer = grpo.train_grpo(model, hf_tok, [prompt], [_even_first_token], settings=settings)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logs) == 4 and logs[-1]["kl"] > 0            # the KL to the starting model is computed
    assert (tmp_path / "grpo" / "reference" / "config.json").is_file()
    after = _even_mass(trainer.model, prompt)
    print(f"GRPO expected reward {before:.3f} -> {after:.3f}; logged rewards {[h['reward'] for h in logs]}, "
          f"kl {[round(h['kl'], 3) for h in logs]}")
    assert after > before + GRPO_GAIN, (before, after)


def test_grpo_rule_rewards():
    ids = to_llm_ids(random_tokens(random.Random(2), 2)) + [EOT_ID]
    assert grpo.validity_reward(["p0", "p0"], completion_ids=[ids, ids[:4]]) == [1.0, 0.0]
    dur = grpo.duration_reward()(["p0"], completion_ids=[ids], target_seconds=[10 / 41.666666666666664])
    assert dur == [pytest.approx(0.0, abs=1e-9)]
    with pytest.raises(sc.InvalidInputError, match="target_seconds"):
        grpo.duration_reward()(["p0"], completion_ids=[ids])
