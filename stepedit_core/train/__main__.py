"""Command line of the training recipes (the ``train`` extra).

    python -m stepedit_core.train build  --model-path CKPT --manifest data/train.csv --out data/train.jsonl
    python -m stepedit_core.train sft    --model-path CKPT --triplets data/train.jsonl --out tuned [--lora]
    python -m stepedit_core.train reward --model-path CKPT --pairs data/pairs.jsonl --out rm

``build`` tokenizes the manifest's audio once with the checkpoint's own audio tokenizer; ``sft`` trains and
writes ``--out`` as a checkpoint folder for ``load_engine("stepaudio", model_path=OUT)``; ``reward`` trains a
reward model on pair records (``pairs.PreferencePair.record()`` per line) and saves it with
``save_pretrained``. GRPO takes Python reward functions; see README "Fine-tuning".
Under ``accelerate launch`` every process runs the same command; only the main process writes ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import StepEditError

DTYPES = ("float32", "bfloat16")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stepedit_core.train", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="manifest (CSV / JSONL) + audio -> tokenized triplets (JSONL)")
    b.add_argument("--model-path", required=True)
    b.add_argument("--manifest", required=True)
    b.add_argument("--audio-root", default=None, help="folder the manifest's audio paths are relative to")
    b.add_argument("--out", required=True)
    b.add_argument("--device", default=None)
    for name, what in (("sft", "supervised fine-tuning"), ("reward", "reward model")):
        s = sub.add_parser(name, help=what)
        s.add_argument("--model-path", required=True, help="base (or SFT) checkpoint folder")
        s.add_argument("--out", required=True)
        s.add_argument("--max-steps", type=int, default=None)
        s.add_argument("--epochs", type=float, default=3.0 if name == "sft" else 1.0)
        s.add_argument("--lr", type=float, default=None)
        s.add_argument("--batch-size", type=int, default=1 if name == "sft" else 2)
        s.add_argument("--grad-accum", type=int, default=8)
        s.add_argument("--dtype", choices=DTYPES, default="float32", help="weights while training")
        s.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPU)")
        s.add_argument("--deepspeed", default=None, help="a DeepSpeed JSON, e.g. configs/zero2.json")
        s.add_argument("--logging-steps", type=int, default=10)
        s.add_argument("--seed", type=int, default=0)
    sft_p = sub.choices["sft"]
    sft_p.add_argument("--triplets", required=True, help="JSONL from `build`")
    sft_p.add_argument("--lora", action="store_true")
    sft_p.add_argument("--lora-r", type=int, default=16)
    sft_p.add_argument("--segment-bos", action="store_true", help="match EngineOptions.segment_bos=True")
    sub.choices["reward"].add_argument("--pairs", required=True, help="JSONL of pair records")
    return p


def _common(args, cls, default_lr: float, **more):
    extra = {"deepspeed": args.deepspeed} if args.deepspeed else {}
    return cls(output_dir=str(Path(args.out) / "trainer"), max_steps=args.max_steps,
               num_train_epochs=args.epochs, learning_rate=args.lr or default_lr,
               per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=args.grad_accum,
               bf16=args.bf16, logging_steps=args.logging_steps, seed=args.seed, extra=extra, **more)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except StepEditError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    import torch

    from . import data, export
    if args.command == "build":
        import stepedit_core as sc
        engine = sc.load_engine("stepaudio", model_path=args.model_path, device=args.device)
        rows = data.read_manifest(args.manifest, args.audio_root)
        triplets = data.build_triplets(rows, data.engine_audio_encoder(engine))
        data.save_triplets(triplets, args.out)
        print(f"{len(triplets)} triplets -> {args.out}")
        return 0
    dtype = getattr(torch, args.dtype)
    tokenizer = export.hf_tokenizer(args.model_path)
    llm = export.load_for_training(args.model_path, dtype=dtype)
    if args.command == "sft":
        from . import sft
        from ..model.text_tokenizer import load_text_tokenizer
        encode = load_text_tokenizer(export.base_paths(args.model_path).editx).encode
        records = data.sft_records(data.load_triplets(args.triplets), encode, segment_bos=args.segment_bos)
        settings = _common(args, sft.SFTSettings, 1e-4 if args.lora else 1e-5, lora=args.lora,
                           lora_r=args.lora_r, lora_alpha=2 * args.lora_r)
        trainer = sft.train_sft(llm, tokenizer, records, settings)
        # every rank takes part in gathering ZeRO-3 shards; LoRA adapters are merged from the PEFT model
        state = None if args.lora else trainer.accelerator.get_state_dict(trainer.model)
        if trainer.accelerator.is_main_process:
            export.save_for_engine(trainer.model, args.model_path, args.out, state_dict=state)
            print(f"tuned checkpoint -> {args.out}")
        return 0
    from . import reward
    lines = Path(args.pairs).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    model = reward.Step1ForSequenceScoring.from_causal_lm(llm)
    trainer = reward.train_reward(model, tokenizer, records, _common(args, reward.RewardSettings, 1e-5))
    if trainer.accelerator.is_main_process:
        trainer.model.save_pretrained(str(Path(args.out) / "reward_model"))
        print(f"reward model -> {Path(args.out) / 'reward_model'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
