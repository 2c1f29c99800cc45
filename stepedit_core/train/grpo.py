"""GRPO for the Step1 LLM with TRL's ``GRPOTrainer``: the reward model of :mod:`.reward` plus optional rule
rewards, a KL penalty (``beta``) to the starting (SFT) model.

Prompts are the engine's exact inference prompts (:func:`.data.prompt_ids`), so they never go through a text
tokenizer: the dataset's ``prompt`` column holds a key, and TRL's ``rollout_func`` hook samples completions
for it with the engine's own sampler (:func:`stepedit_core.model.generate.generate`: the official repetition
guard, temperature 0.7, top-k 50, one seeded draw per completion). TRL then scores the completions, computes
group-relative advantages and the clipped policy loss with the KL term, exactly as for any causal LM.

A reward function takes ``(prompts, completion_ids, **columns)`` and returns one float per completion:
:func:`reward_model_reward` (Bradley-Terry scores), :func:`validity_reward` (clean 2+3 groups closed by
``<|EOT|>``), :func:`duration_reward` (closeness to a wanted duration, per row), and :func:`tokens_reward`, the
adapter for anything that scores audio tokens; :mod:`.rules` builds on it the rewards computed from decoded
audio (WER / CER, speaker similarity, duration ratio).
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from ..errors import InvalidInputError, TokenStreamError
from ..model.generate import TEMPERATURE, TOP_K, SamplingOptions, generate
from ..tokens import EOT_ID, TOKEN_RATE_HZ, check_llm_output
from .deps import require_train_deps

PROMPT_KEY = "p{}"


@dataclass
class GRPOSettings:
    output_dir: str = "grpo-out"
    max_steps: int = 100
    learning_rate: float = 1e-6
    num_generations: int = 8                 # completions per prompt (the group)
    per_device_train_batch_size: int = 8     # completions per device step; a multiple of num_generations
    gradient_accumulation_steps: int = 1
    beta: float = 0.04                       # KL coefficient to the starting (SFT) model; 0 = no reference
    max_completion_length: int = 1024       # new tokens (41.67 per second of audio)
    temperature: float = TEMPERATURE        # official sampling
    top_k: int = TOP_K
    reward_weights: Sequence[float] | None = None
    bf16: bool = False
    gradient_checkpointing: bool = False    # recompute activations (less memory, ~1/3 more time)
    logging_steps: int = 10
    save_strategy: str = "no"
    seed: int = 0
    extra: dict = field(default_factory=dict)


def grpo_dataset(prompts: Sequence[Sequence[int]], columns: dict[str, Sequence] | None = None):
    """(dataset, key -> prompt ids): one row per prompt; ``columns`` are per-prompt values handed to the rewards
    (e.g. ``{"target_seconds": [...]}``)."""
    from datasets import Dataset

    if not prompts:
        raise InvalidInputError("no GRPO prompts")
    keys = [PROMPT_KEY.format(i) for i in range(len(prompts))]
    rows = {"prompt": keys}
    for name, values in (columns or {}).items():
        if len(values) != len(prompts):
            raise InvalidInputError(f"column {name!r} has {len(values)} values for {len(prompts)} prompts")
        rows[name] = list(values)
    return Dataset.from_dict(rows), {k: [int(t) for t in p] for k, p in zip(keys, prompts)}


def _policy(trainer):
    """The Step1ForCausalLM inside the trainer's (maybe PEFT / DDP-wrapped) model, LoRA layers active."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def make_rollout(prompt_map: dict[str, list[int]], settings: GRPOSettings, seed: int = 0):
    """TRL ``rollout_func``: one completion per prompt row (TRL repeats each prompt num_generations times),
    each with its own seed, by the engine's sampler; completions end with ``<|EOT|>`` when the model stopped."""
    counter = itertools.count(seed * 1_000_003)

    def rollout(prompts: list, trainer) -> dict:
        llm = _policy(trainer)
        opts = SamplingOptions(temperature=settings.temperature, top_k=settings.top_k,
                               max_new_tokens=settings.max_completion_length)
        prompt_ids, completion_ids = [], []
        was_training = llm.training
        llm.eval()
        for key in prompts:
            if key not in prompt_map:
                raise InvalidInputError(f"unknown GRPO prompt key {key!r}")
            ids = prompt_map[key]
            gen = generate(llm, ids, SamplingOptions(**{**opts.__dict__, "seed": next(counter)}))
            prompt_ids.append(ids)
            completion_ids.append(list(gen.ids) + ([EOT_ID] if gen.stop_reason == "eot" else []))
        llm.train(was_training)
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None}

    return rollout


# -- rewards -------------------------------------------------------------------------------------------------

def _named(fn, name: str):
    fn.__name__ = name                      # TRL logs each reward under its function name
    return fn


def reward_model_reward(reward_model, prompt_map: dict[str, list[int]]):
    """Bradley-Terry score of prompt + completion (completions without EOT get one, as in the pairs)."""
    def reward(prompts, completions=None, completion_ids=None, **_):
        device = reward_model.get_input_embeddings().weight.device
        out = []
        with torch.no_grad():
            for key, comp in zip(prompts, completion_ids):
                comp = list(comp) if comp and comp[-1] == EOT_ID else list(comp) + [EOT_ID]
                ids = torch.tensor([prompt_map[key] + comp], device=device)
                out.append(float(reward_model(ids).logits[0, 0]))
        return out
    return _named(reward, "reward_model")


def validity_reward(prompts, completions=None, completion_ids=None, **_) -> list[float]:
    """1 for whole 2+3 groups of audio ids closed by EOT, else 0 (what tokens.check_llm_output would repair)."""
    out = []
    for comp in completion_ids:
        try:
            checked = check_llm_output(list(comp), repair=True)
        except TokenStreamError:                   # nothing repairable: no whole group
            out.append(0.0)
            continue
        out.append(1.0 if checked.problem is None and checked.tokens else 0.0)
    return out


def _audio_tokens(comp) -> tuple[int, ...]:
    """Repaired whole groups of a completion, or () when it holds none."""
    try:
        return check_llm_output(list(comp), repair=True).tokens
    except TokenStreamError:
        return ()


def duration_reward(column: str = "target_seconds"):
    """Minus the relative error of the completion's duration (41.67 tokens/s) against ``column`` of the row."""
    def reward(prompts, completions=None, completion_ids=None, **cols):
        if column not in cols:
            raise InvalidInputError(f"duration_reward needs the dataset column {column!r}")
        return [-abs(len([t for t in c if t != EOT_ID]) / TOKEN_RATE_HZ - float(w)) / float(w)
                for c, w in zip(completion_ids, cols[column])]
    return _named(reward, "duration")


def tokens_reward(fn: Callable[[str, tuple[int, ...], dict], float], name: str):
    """Adapter: ``fn(prompt_key, audio tokens (prompt-token space, repaired), row columns) -> float``; e.g.
    decode with the engine's decoder, then WER / CER from an ASR or speaker similarity from CAM++."""
    def reward(prompts, completions=None, completion_ids=None, **cols):
        out = []
        for i, (key, comp) in enumerate(zip(prompts, completion_ids)):
            row = {k: v[i] for k, v in cols.items() if isinstance(v, list) and len(v) == len(prompts)}
            out.append(float(fn(key, _audio_tokens(comp), row)))
        return out
    return _named(reward, name)


# -- training ------------------------------------------------------------------------------------------------

def train_grpo(model, tokenizer, prompts: Sequence[Sequence[int]], reward_funcs: Sequence[Callable] | None = None,
               *, reward_model=None, settings: GRPOSettings = GRPOSettings(),
               columns: dict[str, Sequence] | None = None, peft_config=None):
    """Run GRPO from ``model`` (the SFT model; the KL reference is a frozen copy of it); returns the trainer.
    ``reward_model`` (a Step1ForSequenceScoring) is added before ``reward_funcs``."""
    require_train_deps()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl import GRPOConfig, GRPOTrainer

    if settings.per_device_train_batch_size % settings.num_generations:
        raise InvalidInputError("per_device_train_batch_size must be a multiple of num_generations")
    dataset, prompt_map = grpo_dataset(prompts, columns)
    funcs = list(reward_funcs or [])
    if reward_model is not None:
        reward_model.requires_grad_(False).eval()
        funcs.insert(0, reward_model_reward(reward_model, prompt_map))
    if not funcs:
        raise InvalidInputError("GRPO needs at least one reward (a reward model or a reward function)")
    if settings.beta > 0 and peft_config is None and not hasattr(model, "get_base_model"):
        # TRL builds the KL reference from ``config._name_or_path``: snapshot the starting model there
        reference = Path(settings.output_dir) / "reference"
        model.save_pretrained(str(reference))
        model.config._name_or_path = str(reference)
    args = GRPOConfig(output_dir=settings.output_dir, max_steps=settings.max_steps,
                      learning_rate=settings.learning_rate, num_generations=settings.num_generations,
                      per_device_train_batch_size=settings.per_device_train_batch_size,
                      gradient_accumulation_steps=settings.gradient_accumulation_steps, beta=settings.beta,
                      max_completion_length=settings.max_completion_length, temperature=settings.temperature,
                      top_k=settings.top_k, reward_weights=settings.reward_weights, bf16=settings.bf16,
                      gradient_checkpointing=settings.gradient_checkpointing,
                      logging_steps=settings.logging_steps, save_strategy=settings.save_strategy,
                      seed=settings.seed, report_to="none", remove_unused_columns=False, **settings.extra)
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=dataset,
                          processing_class=tokenizer, rollout_func=make_rollout(prompt_map, settings, settings.seed),
                          peft_config=peft_config)
    trainer.train()
    return trainer
