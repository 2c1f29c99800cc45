"""Multi-process training without GPUs: SFT under ``accelerate launch`` with two CPU processes (torch DDP over
gloo). accelerate's ``--cpu`` alone starts one process unless MPI is installed, so the test launches with
torchrun (``--multi_gpu``) and ``ACCELERATE_USE_CPU=true``, which makes accelerate pick MULTI_CPU / gloo.
Both ranks must finish, each step must have counted both ranks' examples, and the folder written by rank 0 must load in the
engine with trained weights."""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import stepedit_core as sc
from stepedit_core.train import data, export
from tests.train.conftest import random_tokens

ROOT = Path(__file__).resolve().parents[2]


ZERO2_JSON = ROOT / "stepedit_core" / "train" / "configs" / "zero2.json"
LAUNCH = {
    # torchrun + ACCELERATE_USE_CPU: accelerate's MULTI_CPU (DDP over gloo)
    "ddp": (["--multi_gpu"], {"ACCELERATE_USE_CPU": "true"}, "MULTI_CPU", []),
}
# DeepSpeed ZeRO-2 on its CPU accelerator ran this test with ZERO2 in place of LAUNCH["ddp"] (deepspeed 0.19.8)
# (not a pinned dependency: README "Fine-tuning"); CI has no deepspeed, so it is not part of the suite.
ZERO2 = (["--use_deepspeed", "--deepspeed_config_file", str(ZERO2_JSON)], {"DS_ACCELERATOR": "cpu"},
         "DEEPSPEED", ["--deepspeed", str(ZERO2_JSON)])


@pytest.mark.parametrize("mode", list(LAUNCH))
def test_sft_on_two_cpu_processes(mode, ckpt, text_tok, tmp_path):
    launcher_args, launcher_env, distributed_type, cli_args = LAUNCH[mode]
    rng = random.Random(0)
    triplets = [data.EditTriplet(random_tokens(rng, 2), "the voice", "clone", None, random_tokens(rng, 2),
                                 new_text="hello world", speaker=f"clone_{i}") for i in range(4)]
    data.save_triplets(triplets, tmp_path / "t.jsonl")
    out = tmp_path / "tuned"
    env = {**os.environ, **launcher_env, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    port = str(random.Random().randrange(20000, 40000))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *launcher_args, "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", port,
           "-m", "stepedit_core.train", "sft", "--model-path", str(ckpt), "--triplets", str(tmp_path / "t.jsonl"),
           "--out", str(out), "--max-steps", "2", "--batch-size", "1", "--grad-accum", "1", "--lr", "1e-3",
           "--logging-steps", "1", *cli_args]
    run = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    ranks = sorted(re.findall(r"rank (\d) of (\d) \((\w+)\): (\d+) steps done", log))
    assert ranks == [("0", "2", distributed_type, "2"), ("1", "2", distributed_type, "2")], log[-3000:]
    assert log.count("tuned checkpoint ->") == 1                       # only the main process writes
    tokens = [int(t) for t in re.findall(r"'num_tokens': '(\d+)'", log)]
    longest = max(len(data.triplet_example(t, text_tok.encode).input_ids) for t in triplets)
    assert tokens and tokens[0] > longest                  # one step counted both ranks' examples (batch 1 each)
    engine = sc.load_engine("stepaudio", model_path=out)
    base = export.load_for_training(ckpt)
    tuned = engine.llm.lm_head.weight.float()
    assert not torch.allclose(tuned, base.lm_head.weight.float().to(tuned.device), atol=1e-4)
