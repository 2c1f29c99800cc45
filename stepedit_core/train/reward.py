"""A Bradley-Terry reward model for edits: the Step1 backbone with a scalar scoring head, trained with TRL's
``RewardTrainer`` on large-margin pairs (:mod:`.pairs`).

Score of a sequence (prompt + candidate audio tokens + ``<|EOT|>``) = ``score(h_last)``, the linear head on the
final-norm hidden state of its last real token (right padding; the attention mask finds it). The loss is
TRL's ``-log sigmoid(r_chosen - r_rejected [- margin])``. The backbone starts from the SFT (or base) LLM.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutputWithPast

from ..errors import InvalidInputError
from ..model.llm import Step1Config, Step1Model, Step1PreTrainedModel
from .deps import require_train_deps


class Step1ForSequenceScoring(Step1PreTrainedModel):
    """Step1 backbone + ``score`` (C -> num_labels, no bias); ``num_labels`` is 1 for a reward model."""

    def __init__(self, config: Step1Config):
        super().__init__(config)
        config.validate_shapes()
        self.num_labels = config.num_labels
        self.model = Step1Model(config)
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    @classmethod
    def from_causal_lm(cls, llm, num_labels: int = 1) -> "Step1ForSequenceScoring":
        """Share nothing, copy the backbone of a Step1ForCausalLM (the lm_head is dropped); the head starts at 0
        so that every sequence first scores 0."""
        config = Step1Config(**{k: v for k, v in llm.config.to_dict().items()
                                if k not in ("architectures", "transformers_version", "id2label", "label2id")})
        config.num_labels = num_labels
        config.architectures = [cls.__name__]
        model = cls(config).to(dtype=llm.activation_dtype)
        model.model.load_state_dict(llm.model.state_dict())
        nn.init.zeros_(model.score.weight)
        return model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, return_dict: bool | None = None,
                **unused) -> SequenceClassifierOutputWithPast:
        """(B, T) ids (right-padded) -> (B, num_labels) scores at each row's last real token."""
        x = self.model(input_ids, attention_mask=attention_mask).last_hidden_state     # (B, T, C)
        if attention_mask is None:
            last = torch.full((input_ids.shape[0],), input_ids.shape[1] - 1, device=input_ids.device)
        else:
            last = attention_mask.long().sum(-1) - 1
            if bool((last < 0).any()):
                raise InvalidInputError("a row of the batch has no tokens")
        pooled = x[torch.arange(x.shape[0], device=x.device), last]                    # (B, C)
        logits = self.score(pooled)
        loss = None
        if labels is not None:                                  # plain regression on given scores (optional)
            loss = nn.functional.mse_loss(logits.squeeze(-1).float(), labels.float())
        return SequenceClassifierOutputWithPast(loss=loss, logits=logits)


@dataclass
class RewardSettings:
    output_dir: str = "reward-out"
    max_steps: int | None = None
    num_train_epochs: float = 1.0
    learning_rate: float = 1e-5
    per_device_train_batch_size: int = 2        # pairs per device step (each pair is two sequences)
    gradient_accumulation_steps: int = 8
    warmup_steps: float = 0.03
    # TRL's center_rewards_coefficient: keeps scores near 0 (useful when the reward feeds GRPO / PPO)
    center_rewards_coefficient: float | None = 0.01
    use_margin: bool = False                    # subtract each pair's judge margin inside the sigmoid
    bf16: bool = False
    gradient_checkpointing: bool = False        # recompute activations (less memory, ~1/3 more time)
    logging_steps: int = 10
    save_strategy: str = "no"
    seed: int = 0
    extra: dict = field(default_factory=dict)


def _pairs_dataset(records: Sequence[dict], what: str):
    from datasets import Dataset

    if not records:
        raise InvalidInputError(f"the {what} pair set is empty")
    for i, r in enumerate(records):
        if not {"chosen_ids", "rejected_ids"} <= set(r):
            raise InvalidInputError(f"{what} pair {i}: expected chosen_ids and rejected_ids "
                                    "(pairs.PreferencePair.record())")
    return Dataset.from_list(list(records))


def train_reward(model: Step1ForSequenceScoring, tokenizer, records: Sequence[dict],
                 settings: RewardSettings = RewardSettings(), eval_records: Sequence[dict] | None = None):
    """Train the reward model on pair records; returns the trainer (``trainer.model`` is the reward model)."""
    require_train_deps()
    from trl import RewardConfig, RewardTrainer

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    if not settings.use_margin:
        records = [{k: v for k, v in r.items() if k != "margin"} for r in records]
    steps = {"max_steps": settings.max_steps} if settings.max_steps else {}
    args = RewardConfig(output_dir=settings.output_dir, num_train_epochs=settings.num_train_epochs,
                        learning_rate=settings.learning_rate,
                        per_device_train_batch_size=settings.per_device_train_batch_size,
                        gradient_accumulation_steps=settings.gradient_accumulation_steps,
                        warmup_steps=settings.warmup_steps,
                        center_rewards_coefficient=settings.center_rewards_coefficient, bf16=settings.bf16,
                        gradient_checkpointing=settings.gradient_checkpointing,
                        logging_steps=settings.logging_steps, save_strategy=settings.save_strategy,
                        seed=settings.seed, report_to="none", max_length=None, dataset_num_proc=None,
                        **steps, **settings.extra)
    trainer = RewardTrainer(model=model, args=args, train_dataset=_pairs_dataset(records, "training"),
                            eval_dataset=_pairs_dataset(eval_records, "evaluation") if eval_records else None,
                            processing_class=tokenizer)
    trainer.train()
    return trainer


@torch.no_grad()
def score_sequences(model: Step1ForSequenceScoring, sequences: Sequence[Sequence[int]]) -> list[float]:
    """Reward of each full sequence (prompt + completion + EOT), one forward per sequence (no padding)."""
    device = model.get_input_embeddings().weight.device
    was_training = model.training
    model.eval()
    out = [float(model(torch.tensor([list(s)], device=device)).logits[0, 0]) for s in sequences]
    model.train(was_training)
    return out


def pair_accuracy(model: Step1ForSequenceScoring, records: Sequence[dict]) -> float:
    """Share of pairs whose chosen sequence scores above the rejected one."""
    if not records:
        raise InvalidInputError("no pairs to evaluate")
    chosen = score_sequences(model, [r["chosen_ids"] for r in records])
    rejected = score_sequences(model, [r["rejected_ids"] for r in records])
    return sum(c > r for c, r in zip(chosen, rejected)) / len(records)
