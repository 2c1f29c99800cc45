"""Supervised fine-tuning of the Step1 LLM on edit triplets with TRL's ``SFTTrainer`` (full or LoRA via PEFT).

The dataset is pre-tokenized by :mod:`.data` (``input_ids`` + ``labels`` with -100 on the prompt), so TRL
keeps the labels as given: the loss is the next-token cross entropy of the assistant's audio tokens and
``<|EOT|>`` only (``Step1ForCausalLM.forward(labels=...)``). trl / peft are imported when a run starts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

from ..errors import InvalidInputError
from .deps import require_train_deps

# LoRA on every projection of the decoder blocks (attention and SwiGLU); embeddings and lm_head stay frozen.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class SFTSettings:
    output_dir: str = "sft-out"
    # total optimizer steps; None trains num_train_epochs epochs
    max_steps: int | None = None
    num_train_epochs: float = 3.0
    learning_rate: float = 1e-5            # full fine-tuning; LoRA takes ~1e-4
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 8
    warmup_steps: float = 0.03               # < 1: a fraction of the run (transformers 5)
    weight_decay: float = 0.0
    # False: full fine-tuning; True: LoRA adapters (merged into the weights when saved for the engine)
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: Sequence[str] = field(default_factory=lambda: list(LORA_TARGETS))
    bf16: bool = False                     # True on Ampere+ GPUs
    gradient_checkpointing: bool = False   # recompute activations in the backward pass (less memory)
    logging_steps: int = 10
    save_strategy: str = "no"              # "steps" / "epoch" for long runs
    seed: int = 0
    # extra SFTConfig fields (e.g. {"deepspeed": "configs/zero2.json"}); see TRL's SFTConfig
    extra: dict = field(default_factory=dict)


def lora_config(settings: SFTSettings, task_type: str = "CAUSAL_LM"):
    require_train_deps()
    from peft import LoraConfig
    return LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=list(settings.lora_targets), bias="none", task_type=task_type)


def sft_config(settings: SFTSettings):
    require_train_deps()
    from trl import SFTConfig

    steps = {"max_steps": settings.max_steps} if settings.max_steps else {}
    return SFTConfig(output_dir=settings.output_dir, num_train_epochs=settings.num_train_epochs,
                     learning_rate=settings.learning_rate,
                     per_device_train_batch_size=settings.per_device_train_batch_size,
                     gradient_accumulation_steps=settings.gradient_accumulation_steps,
                     warmup_steps=settings.warmup_steps, weight_decay=settings.weight_decay,
                     bf16=settings.bf16, gradient_checkpointing=settings.gradient_checkpointing,
                     logging_steps=settings.logging_steps, save_strategy=settings.save_strategy,
                     seed=settings.seed, report_to="none", max_length=None, packing=False,
                     dataset_num_proc=None, **steps, **settings.extra)


def _dataset(records: Sequence[dict], what: str):
    from datasets import Dataset

    if not records:
        raise InvalidInputError(f"the {what} set is empty")
    for i, r in enumerate(records):
        if set(r) != {"input_ids", "labels"} or len(r["input_ids"]) != len(r["labels"]):
            raise InvalidInputError(f"{what} record {i}: expected input_ids and labels of equal length "
                                    "(data.TrainingExample.record())")
    return Dataset.from_list(list(records))


def train_sft(model, tokenizer, records: Sequence[dict], settings: SFTSettings = SFTSettings(),
              eval_records: Sequence[dict] | None = None):
    """Run SFT; returns the trainer (``trainer.model`` is the tuned model, a PEFT model with LoRA;
    ``trainer.state.log_history`` holds the losses). Save for the engine with ``export.save_for_engine``."""
    require_train_deps()
    from trl import SFTTrainer

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    trainer = SFTTrainer(model=model, args=sft_config(settings), train_dataset=_dataset(records, "training"),
                         eval_dataset=_dataset(eval_records, "evaluation") if eval_records else None,
                         processing_class=tokenizer, peft_config=lora_config(settings) if settings.lora else None)
    trainer.train()
    return trainer
