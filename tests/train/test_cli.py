"""The training command line (python -m stepedit_core.train) and the accelerate / DeepSpeed configurations."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

import stepedit_core as sc
from stepedit_core.train.cli import main
from stepedit_core.train.data import load_triplets
from stepedit_core.train.pairs import PreferencePair
from tests.train.conftest import random_tokens

CONFIGS = Path(__file__).resolve().parents[2] / "stepedit_core" / "train" / "configs"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """Two 1.5 s clips and a one-row manifest (a "slower" speed edit of a.wav into b.wav)."""
    root = tmp_path_factory.mktemp("cli_audio")
    rng = np.random.default_rng(0)
    for name in ("a.wav", "b.wav"):
        t = np.arange(24000) / 16000
        sf.write(root / name, (0.3 * np.sin(2 * np.pi * 150 * t) + 0.01 * rng.standard_normal(t.size))
                 .astype(np.float32), 16000)
    (root / "m.jsonl").write_text(json.dumps({"source_audio": "a.wav", "source_text": "hello world",
                                              "edit_type": "speed", "edit_info": "slower",
                                              "target_audio": "b.wav"}) + "\n")
    return root / "m.jsonl"


TINY_RUN = ["--max-steps", "1", "--grad-accum", "1", "--lr", "1e-3", "--logging-steps", "1"]


def test_build_then_sft_writes_a_checkpoint_the_engine_loads(ckpt, manifest, tmp_path):
    assert main(["build", "--model-path", str(ckpt), "--manifest", str(manifest),
                 "--out", str(tmp_path / "t.jsonl")]) == 0
    [triplet] = load_triplets(tmp_path / "t.jsonl")
    assert triplet.edit_type == "speed" and triplet.edit_info == "slower"
    out = tmp_path / "tuned"
    assert main(["sft", "--model-path", str(ckpt), "--triplets", str(tmp_path / "t.jsonl"), "--out", str(out),
                 "--gradient-checkpointing", *TINY_RUN]) == 0
    engine = sc.load_engine("stepaudio", model_path=out)
    assert engine.paths.editx == out / "Step-Audio-EditX"


@pytest.fixture(scope="module")
def reward_dir(ckpt, tmp_path_factory):
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    prompt = list(range(65536, 65546))
    pairs_ = [PreferencePair(tuple(prompt), random_tokens(rng, 2), random_tokens(rng, 2), 1.0) for _ in range(2)]
    path.write_text("".join(json.dumps(p.record()) + "\n" for p in pairs_))
    out = path.parent / "rm"
    assert main(["reward", "--model-path", str(ckpt), "--pairs", str(path), "--out", str(out), "--batch-size", "2",
                 *TINY_RUN]) == 0
    return out / "reward_model"


def test_reward_writes_a_model_that_scores(reward_dir):
    from stepedit_core.train.reward import Step1ForSequenceScoring
    rm = Step1ForSequenceScoring.from_pretrained(reward_dir)
    import torch
    assert rm(torch.tensor([[1, 2, 3]])).logits.shape == (1, 1)


def test_grpo_with_the_reward_model_and_a_rule_writes_a_checkpoint(ckpt, manifest, reward_dir, tmp_path, capsys):
    out = tmp_path / "rl"
    assert main(["grpo", "--model-path", str(ckpt), "--manifest", str(manifest), "--out", str(out),
                 "--reward-model", str(reward_dir), "--rules", "duration", "--reward-weights", "1,0.5",
                 "--num-generations", "2", "--batch-size", "2", "--max-completion-length", "10", *TINY_RUN]) == 0
    assert f"tuned checkpoint -> {out}" in capsys.readouterr().out
    engine = sc.load_engine("stepaudio", model_path=out)
    assert engine.paths.editx == out / "Step-Audio-EditX"


@pytest.mark.parametrize("argv, code, message", [
    (["build", "--manifest", "{tmp}/none.csv", "--out", "{tmp}/t.jsonl"], 2, "manifest 'none.csv' not found"),
    (["sft", "--triplets", "x", "--out", "{tmp}/o", "--max-steps", "0"], 2, "--max-steps must be at least 1"),
    (["reward", "--pairs", "{tmp}/none.jsonl", "--out", "{tmp}/o"], 2, "pairs file 'none.jsonl' not found"),
    (["grpo", "--manifest", "m", "--out", "{tmp}/o"], 2, "GRPO needs --reward-model and / or --rules"),
    (["grpo", "--manifest", "m", "--out", "{tmp}/o", "--rules", "mos"], 2, "unknown rule reward(s) mos"),
    (["grpo", "--manifest", "m", "--out", "{tmp}/o", "--rules", "wer", "--reward-weights", "1,2"], 2,
     "--reward-weights has 2 values for 1 rewards"),
    (["grpo", "--manifest", "m", "--out", "{tmp}/o", "--rules", "wer", "--batch-size", "3"], 2,
     "--batch-size 3 is not a multiple of --num-generations 8"),
    (["grpo", "--manifest", "{tmp}/none.csv", "--out", "{tmp}/o", "--rules", "wer"], 2, "manifest 'none.csv'"),
])
def test_cli_errors_are_messages_with_exit_codes(ckpt, tmp_path, capsys, argv, code, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main([argv[0], "--model-path", str(ckpt), *argv[1:]]) == code
    err = capsys.readouterr().err
    assert f"error: {message}" in err and "Traceback" not in err and str(tmp_path) not in err


def test_cli_missing_checkpoint_and_bad_usage(tmp_path, capsys):
    assert main(["sft", "--model-path", str(tmp_path), "--triplets", "x", "--out", str(tmp_path / "o")]) == 4
    assert "no Step-Audio-EditX checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["grpo", "--model-path", "x"])                       # --manifest / --out missing
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    shown = capsys.readouterr().out
    assert "examples:" in shown and all(f"stepedit_core.train {c} --model-path" in shown
                                        for c in ("build", "sft", "reward", "grpo"))


@pytest.mark.parametrize("name, stage", [("accelerate_zero2.yaml", 2), ("accelerate_zero3.yaml", 3)])
def test_deepspeed_configs_point_at_their_zero_stage(name, stage):
    cfg = yaml.safe_load((CONFIGS / name).read_text())
    assert cfg["distributed_type"] == "DEEPSPEED" and cfg["mixed_precision"] == "bf16"
    ds_file = Path(cfg["deepspeed_config"]["deepspeed_config_file"])
    ds = json.loads((CONFIGS.parents[2] / ds_file).read_text())
    assert ds["zero_optimization"]["stage"] == stage
    assert ds["train_micro_batch_size_per_gpu"] == "auto"        # the Trainer's arguments fill it in


def test_multi_gpu_config():
    cfg = yaml.safe_load((CONFIGS / "accelerate_multi_gpu.yaml").read_text())
    assert cfg["distributed_type"] == "MULTI_GPU" and cfg["num_processes"] >= 2


def test_the_core_and_the_data_side_import_without_trl():
    """trl / peft / datasets blocked (``sys.modules[name] = None`` makes any import of them fail): the core and
    the pure data side still import; the trainers say what to install. (transformers itself imports
    accelerate whenever it is installed, so accelerate is not blocked.)"""
    import subprocess
    import sys
    code = ("import sys\n"
            "for m in ('trl', 'peft', 'datasets'): sys.modules[m] = None\n"
            "import stepedit_core, stepedit_core.train.data, stepedit_core.train.pairs, stepedit_core.train.export\n"
            "import stepedit_core.train.sft, stepedit_core.train.reward, stepedit_core.train.grpo\n"
            "import stepedit_core.train.rules, stepedit_core.train.cli\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_export_refuses_a_foreign_state_dict(ckpt, tmp_path):
    from stepedit_core.errors import CheckpointError
    from stepedit_core.train import export
    with pytest.raises(CheckpointError, match="the tuned model does not match the Step1 layout"):
        export.save_for_engine(None, ckpt, tmp_path / "x", state_dict={"lora_A.weight": np.zeros(1)})
    with pytest.raises(sc.InvalidInputError, match="base checkpoint itself"):
        export.save_for_engine(None, ckpt, ckpt, state_dict={})
