"""``python -m stepedit_core.train``: the training recipes from a shell (the ``train`` extra).

``build`` tokenizes a manifest's audio once with the checkpoint's own audio tokenizer; ``sft`` fine-tunes (full
or LoRA) and writes ``--out`` as a checkpoint folder ``load_engine("stepaudio", model_path=OUT)`` loads;
``reward`` trains a Bradley-Terry reward model on pair records (``pairs.PreferencePair.record()`` per line);
``grpo`` runs GRPO from an SFT checkpoint on a manifest's requests with the reward model and / or the rule
rewards (WER / CER, speaker similarity, duration: the outputs are decoded and checked, :mod:`.rules`) and
writes a checkpoint folder like ``sft``. Under ``accelerate launch`` every process runs the same command;
only the main process writes ``--out``.

Exit codes are the main CLI's (stepedit_core.cli): 0 done, 1 unexpected failure, 2 bad usage or input,
4 model or weights unavailable, 6 a file could not be read or written.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ..cli import EXIT_ERROR, EXIT_OK, _exit_code
from ..errors import InvalidInputError, StepEditError

PROG = "python -m stepedit_core.train"
DTYPES = ("float32", "bfloat16")
log = logging.getLogger("stepedit.train")

EXAMPLES = {
    "build": f"""  {PROG} build --model-path ckpt --manifest data/train.csv --out data/train.jsonl
  (manifest columns: source_audio, source_text, edit_type, edit_info, new_text, target_audio)""",
    "sft": f"""  {PROG} sft --model-path ckpt --triplets data/train.jsonl --out tuned --lora --bf16
  accelerate launch --config_file stepedit_core/train/configs/accelerate_zero2.yaml \\
      -m stepedit_core.train sft --model-path ckpt --triplets data/train.jsonl --out tuned --bf16""",
    "reward": f"""  {PROG} reward --model-path tuned --pairs data/pairs.jsonl --out rm
  (writes rm/reward_model; pair lines are pairs.PreferencePair.record())""",
    "grpo": f"""  {PROG} grpo --model-path tuned --manifest data/rl.csv --out tuned-rl --reward-model rm/reward_model
  {PROG} grpo --model-path tuned --manifest data/rl.csv --out tuned-rl --rules wer,duration --lora
  (the manifest's target_audio sets each request's wanted duration)""",
}


def _examples(*names: str) -> str:
    return "examples:\n" + "\n".join(EXAMPLES[n] for n in names)


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=36)


def _trainer_args(s: argparse.ArgumentParser, name: str) -> None:
    s.add_argument("--model-path", required=True, help="base (or SFT) checkpoint folder")
    s.add_argument("--out", required=True, help="output folder")
    if name == "grpo":
        s.add_argument("--max-steps", type=int, default=100, help="optimizer steps")
    else:
        s.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: whole epochs)")
        s.add_argument("--epochs", type=float, default=3.0 if name == "sft" else 1.0)
    s.add_argument("--lr", type=float, default=None, help="learning rate (default: the recipe's)")
    s.add_argument("--batch-size", type=int, default={"sft": 1, "reward": 2, "grpo": 8}[name],
                   help="per device" + (" (completions; a multiple of --num-generations)" if name == "grpo" else ""))
    s.add_argument("--grad-accum", type=int, default=1 if name == "grpo" else 8)
    s.add_argument("--dtype", choices=DTYPES, default="float32", help="weights while training")
    s.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPU)")
    s.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations (less memory)")
    s.add_argument("--deepspeed", default=None, help="a DeepSpeed JSON, e.g. stepedit_core/train/configs/zero2.json")
    s.add_argument("--logging-steps", type=int, default=10)
    s.add_argument("--seed", type=int, default=0)
    if name != "reward":
        s.add_argument("--lora", action="store_true", help="train LoRA adapters (merged into the saved weights)")
        s.add_argument("--lora-r", type=int, default=16)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[1], formatter_class=_formatter,
                                epilog=_examples(*EXAMPLES))
    sub = p.add_subparsers(dest="command", required=True, metavar="{build,sft,reward,grpo}")
    b = sub.add_parser("build", help="manifest (CSV / JSONL) + audio -> tokenized triplets (JSONL)",
                       epilog=_examples("build"), formatter_class=_formatter)
    b.add_argument("--model-path", required=True)
    b.add_argument("--manifest", required=True)
    b.add_argument("--audio-root", default=None, help="folder the manifest's audio paths are relative to")
    b.add_argument("--out", required=True)
    b.add_argument("--device", default=None)
    for name, what in (("sft", "supervised fine-tuning"), ("reward", "Bradley-Terry reward model"),
                       ("grpo", "GRPO with a reward model and rule rewards")):
        _trainer_args(sub.add_parser(name, help=what, epilog=_examples(name), formatter_class=_formatter), name)
    sft_p = sub.choices["sft"]
    sft_p.add_argument("--triplets", required=True, help="JSONL from `build`")
    sft_p.add_argument("--segment-bos", action="store_true", help="match EngineOptions.segment_bos=True")
    sub.choices["reward"].add_argument("--pairs", required=True, help="JSONL of pair records")
    g = sub.choices["grpo"]
    g.add_argument("--manifest", required=True, help="the requests (CSV / JSONL, the `build` format)")
    g.add_argument("--audio-root", default=None)
    g.add_argument("--reward-model", default=None, help="folder saved by `reward` (its reward_model/)")
    g.add_argument("--rules", default="", help="comma-separated rule rewards: wer, speaker, duration")
    g.add_argument("--reward-weights", default=None,
                   help="comma-separated, one per reward: the reward model first, then the rules in order")
    g.add_argument("--num-generations", type=int, default=8, help="completions per prompt (the group)")
    g.add_argument("--max-completion-length", type=int, default=1024, help="new tokens (41.67 per second)")
    g.add_argument("--beta", type=float, default=0.04, help="KL coefficient to the starting model")
    g.add_argument("--device", default=None, help="device of the engine that tokenizes and decodes")
    return p


def _common(args, cls, default_lr: float, **more):
    extra = {**({"deepspeed": args.deepspeed} if args.deepspeed else {}), **getattr(args, "trainer_extra", {})}
    return cls(output_dir=str(Path(args.out) / "trainer"), max_steps=args.max_steps,
               num_train_epochs=args.epochs, learning_rate=args.lr or default_lr,
               per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=args.grad_accum,
               bf16=args.bf16, gradient_checkpointing=args.gradient_checkpointing,
               logging_steps=args.logging_steps, seed=args.seed, extra=extra, **more)


def _check_numbers(args) -> None:
    for name in ("max_steps", "batch_size", "grad_accum", "logging_steps", "lora_r", "num_generations",
                 "max_completion_length"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise InvalidInputError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    for name in ("epochs", "lr"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise InvalidInputError(f"--{name} must be positive, got {value}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        _check_numbers(args)
        return _run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (StepEditError, OSError) as exc:
        message = str(exc) if not isinstance(exc, OSError) or not exc.strerror else \
            f"{exc.strerror}: {Path(exc.filename).name}" if exc.filename else exc.strerror
        print(f"error: {message}", file=sys.stderr)
        return _exit_code(exc)
    except Exception as exc:  # noqa: BLE001 -- one line for the user, the traceback in the log at debug level
        log.debug("unexpected failure", exc_info=True)
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _finished(trainer) -> None:
    """One line per process: under ``accelerate launch`` every rank reports (the multi-process proof)."""
    acc = trainer.accelerator
    print(f"rank {acc.process_index} of {acc.num_processes} ({acc.distributed_type.value}): "
          f"{trainer.state.global_step} steps done", flush=True)


def _save_tuned(trainer, args) -> None:
    from . import export
    _finished(trainer)
    # every rank takes part in gathering ZeRO-3 shards; LoRA adapters are merged from the PEFT model
    state = None if getattr(args, "lora", False) else trainer.accelerator.get_state_dict(trainer.model)
    if trainer.accelerator.is_main_process:
        export.save_for_engine(trainer.model, args.model_path, args.out, state_dict=state)
        print(f"tuned checkpoint -> {args.out}")


def _deepspeed_on_cpu() -> dict:
    """Under ``accelerate launch --use_deepspeed`` without CUDA, accelerate names no process-group backend and
    then counts one process (the DeepSpeed batch sizes then disagree with the world size): set its state up
    with gloo, the backend of DeepSpeed's CPU accelerator, and have the Trainer keep it. Returns the extra
    trainer arguments for that ({} in every other case)."""
    import torch
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() != "true" or torch.cuda.is_available():
        return {}
    from accelerate import PartialState
    PartialState(backend="gloo")
    return {"accelerator_config": {"use_configured_state": True}}


def _run(args) -> int:
    import torch

    from . import data, export
    if args.command != "build":
        args.trainer_extra = _deepspeed_on_cpu()
    if args.command == "build":
        import stepedit_core as sc
        rows = data.read_manifest(args.manifest, args.audio_root)
        engine = sc.load_engine("stepaudio", model_path=args.model_path, device=args.device)
        triplets = data.build_triplets(rows, data.engine_audio_encoder(engine))
        data.save_triplets(triplets, args.out)
        print(f"{len(triplets)} triplets -> {args.out}")
        return EXIT_OK
    dtype = getattr(torch, args.dtype)
    tokenizer = export.hf_tokenizer(args.model_path)
    if args.command == "grpo":
        return _grpo(args, tokenizer, dtype)
    llm = export.load_for_training(args.model_path, dtype=dtype)
    if args.command == "sft":
        from . import sft
        from ..model.text_tokenizer import load_text_tokenizer
        encode = load_text_tokenizer(export.base_paths(args.model_path).editx).encode
        records = data.sft_records(data.load_triplets(args.triplets), encode, segment_bos=args.segment_bos)
        settings = _common(args, sft.SFTSettings, 1e-4 if args.lora else 1e-5, lora=args.lora,
                           lora_r=args.lora_r, lora_alpha=2 * args.lora_r)
        _save_tuned(sft.train_sft(llm, tokenizer, records, settings), args)
        return EXIT_OK
    from . import reward
    records = _read_pairs(args.pairs)
    model = reward.Step1ForSequenceScoring.from_causal_lm(llm)
    trainer = reward.train_reward(model, tokenizer, records, _common(args, reward.RewardSettings, 1e-5))
    _finished(trainer)
    if trainer.accelerator.is_main_process:
        trainer.model.save_pretrained(str(Path(args.out) / "reward_model"))
        print(f"reward model -> {Path(args.out) / 'reward_model'}")
    return EXIT_OK


def _read_pairs(path: str) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"pairs file {p.name!r} not found")
    from . import data
    return data.read_jsonl(p)


def _floats(text: str | None, what: str) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise InvalidInputError(f"{what} must be comma-separated numbers, got {text!r}") from None


def _grpo(args, tokenizer, dtype) -> int:
    import stepedit_core as sc
    from . import data, export, grpo, rules, sft
    from ..interface import AudioClip

    rule_names = [r.strip() for r in args.rules.split(",") if r.strip()]
    if rule_names:
        rules._check_rules(rule_names)
    if not rule_names and not args.reward_model:
        raise InvalidInputError("GRPO needs --reward-model and / or --rules")
    weights = _floats(args.reward_weights, "--reward-weights")
    n_rewards = len(rule_names) + bool(args.reward_model)
    if weights is not None and len(weights) != n_rewards:
        raise InvalidInputError(f"--reward-weights has {len(weights)} values for {n_rewards} rewards")
    if args.batch_size % args.num_generations:
        raise InvalidInputError(f"--batch-size {args.batch_size} is not a multiple of --num-generations "
                                f"{args.num_generations}")
    rows = data.read_manifest(args.manifest, args.audio_root)
    engine = sc.load_engine("stepaudio", model_path=args.model_path, device=args.device)
    triplets = data.build_triplets(rows, data.engine_audio_encoder(engine))
    prompts = [data.prompt_ids(t, engine.text_tokenizer.encode) for t in triplets]
    targets = [rules.RewardTarget.for_edit(r.edit_type, r.edit_info, AudioClip.from_file(str(r.source_audio)),
                                           r.source_text, r.new_text,
                                           target_seconds=AudioClip.from_file(str(r.target_audio)).duration)
               for r in rows]
    funcs = rules.grpo_rewards(rules.AudioScorer(engine, rules=rule_names), targets) if rule_names else []
    reward_model = None
    if args.reward_model:
        from .reward import Step1ForSequenceScoring
        if not (Path(args.reward_model) / "config.json").is_file():
            raise InvalidInputError(f"no reward model in {Path(args.reward_model).name!r} (expected the "
                                    "reward_model/ folder written by `reward`)")
        reward_model = Step1ForSequenceScoring.from_pretrained(args.reward_model, dtype=dtype)
    llm = export.load_for_training(args.model_path, dtype=dtype)
    settings = grpo.GRPOSettings(
        output_dir=str(Path(args.out) / "trainer"), max_steps=args.max_steps,
        learning_rate=args.lr or (1e-5 if args.lora else 1e-6), num_generations=args.num_generations,
        per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=args.grad_accum,
        beta=args.beta, max_completion_length=args.max_completion_length, reward_weights=weights,
        bf16=args.bf16, gradient_checkpointing=args.gradient_checkpointing, logging_steps=args.logging_steps,
        seed=args.seed, extra={**({"deepspeed": args.deepspeed} if args.deepspeed else {}), **args.trainer_extra})
    peft = sft.lora_config(sft.SFTSettings(lora_r=args.lora_r, lora_alpha=2 * args.lora_r)) if args.lora else None
    trainer = grpo.train_grpo(llm, tokenizer, prompts, funcs, reward_model=reward_model, settings=settings,
                              peft_config=peft)
    _save_tuned(trainer, args)
    return EXIT_OK
