"""The training command line (python -m stepedit_core.train) and the accelerate / DeepSpeed configurations."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

import stepedit_core as sc
from stepedit_core.train.__main__ import main
from stepedit_core.train.data import load_triplets

CONFIGS = Path(__file__).resolve().parents[2] / "stepedit_core" / "train" / "configs"


def test_build_then_sft_writes_a_checkpoint_the_engine_loads(ckpt, tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("a.wav", "b.wav"):
        t = np.arange(24000) / 16000
        sf.write(tmp_path / name, (0.3 * np.sin(2 * np.pi * 150 * t) + 0.01 * rng.standard_normal(t.size))
                 .astype(np.float32), 16000)
    (tmp_path / "m.jsonl").write_text(json.dumps({"source_audio": "a.wav", "source_text": "hello world",
                                                  "edit_type": "speed", "edit_info": "slower",
                                                  "target_audio": "b.wav"}) + "\n")
    assert main(["build", "--model-path", str(ckpt), "--manifest", str(tmp_path / "m.jsonl"),
                 "--out", str(tmp_path / "t.jsonl")]) == 0
    [triplet] = load_triplets(tmp_path / "t.jsonl")
    assert triplet.edit_type == "speed" and triplet.edit_info == "slower"
    out = tmp_path / "tuned"
    assert main(["sft", "--model-path", str(ckpt), "--triplets", str(tmp_path / "t.jsonl"), "--out", str(out),
                 "--max-steps", "1", "--grad-accum", "1", "--lr", "1e-3", "--logging-steps", "1"]) == 0
    engine = sc.load_engine("stepaudio", model_path=out)
    assert engine.paths.editx == out / "Step-Audio-EditX"


def test_cli_errors_are_messages_not_tracebacks(ckpt, tmp_path, capsys):
    assert main(["build", "--model-path", str(ckpt), "--manifest", str(tmp_path / "none.csv"),
                 "--out", str(tmp_path / "t.jsonl")]) == 2
    assert "manifest 'none.csv' not found" in capsys.readouterr().err
    assert main(["sft", "--model-path", str(tmp_path), "--triplets", "x", "--out", str(tmp_path / "o")]) == 2
    assert "no Step-Audio-EditX checkpoint" in capsys.readouterr().err


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
            "import stepedit_core.train.sft, stepedit_core.train.reward, stepedit_core.train.grpo\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_export_refuses_a_foreign_state_dict(ckpt, tmp_path):
    from stepedit_core.errors import CheckpointError
    from stepedit_core.train import export
    with pytest.raises(CheckpointError, match="the tuned model does not match the Step1 layout"):
        export.save_for_engine(None, ckpt, tmp_path / "x", state_dict={"lora_A.weight": np.zeros(1)})
    with pytest.raises(sc.InvalidInputError, match="base checkpoint itself"):
        export.save_for_engine(None, ckpt, ckpt, state_dict={})
