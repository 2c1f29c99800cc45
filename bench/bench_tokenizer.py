"""Tokenizer time per second of audio on this CPU, at the real model sizes with random weights.

vq02: the 50-block Paraformer encoder (158 M params), window-batched path and the official chunk loop.
vq06: an ONNX of the S3 tokenizer v1 shape (2 stride-2 convs, 6 blocks x 1280 wide x 20 heads, 4096 codes)
exported from random weights with torch.onnx, run through onnxruntime's CPU provider.

    PYTHONPATH=. python bench/bench_tokenizer.py [--seconds 10] [--threads 1]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stepedit_core.tokenizer import vq02, vq06
from stepedit_core.tokenizer.audio_tokenizer import StepAudioTokenizer


class Block(nn.Module):
    """Whisper-style pre-LN block: q, k, v scaled by d_head^-0.25, key without bias, GELU MLP."""

    def __init__(self, d, heads):
        super().__init__()
        self.h = heads
        self.attn_ln, self.mlp_ln = nn.LayerNorm(d), nn.LayerNorm(d)
        self.query, self.key, self.value, self.out = (nn.Linear(d, d), nn.Linear(d, d, bias=False),
                                                      nn.Linear(d, d), nn.Linear(d, d))
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        b, t, d = x.shape
        y = self.attn_ln(x)
        s = (d // self.h) ** -0.25
        q, k, v = (f(y).reshape(b, -1, self.h, d // self.h).transpose(1, 2) for f in (self.query, self.key, self.value))
        a = torch.softmax((q * s) @ (k * s).transpose(-1, -2), dim=-1) @ v
        x = x + self.out(a.transpose(1, 2).reshape(b, -1, d))
        return x + self.mlp(self.mlp_ln(x))


class S3V1Shape(nn.Module):
    """Random-weight stand-in with the real S3 tokenizer v1 layer sizes (stepedit_core/tokenizer/vq06.py)."""

    def __init__(self, d=1280, heads=20, blocks=6, codes=4096):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(128, d, 3, 2, 1), nn.Conv1d(d, d, 3, 2, 1)
        self.pos = nn.Parameter(torch.randn(1500, d) * 0.02)
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(blocks)])
        self.codebook = nn.Parameter(torch.randn(d, codes))

    def forward(self, feats, feats_length):
        x = nn.functional.gelu(self.conv2(nn.functional.gelu(self.conv1(feats)))).transpose(1, 2)
        x = x + self.pos[: x.shape[1]] + 0 * feats_length.float()
        for b in self.blocks:
            x = b(x)
        x = nn.functional.normalize(x, dim=-1)
        return (x @ self.codebook).argmax(-1)[:, None, :]


def timed(fn, repeat=2):
    fn()                                                     # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    enc = vq02.SANMEncoderChunkOpt(vq02.EncoderConfig()).eval()
    cmvn = torch.stack([torch.full((560,), -10.0), torch.full((560,), 0.25)])
    t02 = vq02.Vq02Tokenizer(enc, cmvn, torch.randn(1024, 512))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s3v1.onnx"
        model = S3V1Shape().eval()
        torch.onnx.export(model, (torch.randn(1, 128, 300), torch.tensor([300], dtype=torch.int32)), str(path),
                          input_names=["feats", "feats_length"], output_names=["indices"], dynamo=False,
                          dynamic_axes={"feats": {2: "T"}, "indices": {2: "T_out"}})
        t06 = vq06.Vq06Tokenizer(path, providers=["CPUExecutionProvider"], intra_op_threads=args.threads)
        tok = StepAudioTokenizer(t02, t06)
        n = int(args.seconds * 16000)
        rng = np.random.default_rng(0)
        wav = (rng.standard_normal(n) * 0.1).astype(np.float32)
        w = torch.from_numpy(wav)
        rows = {
            "vq02 batched windows": timed(lambda: t02([w])),
            "vq02 official chunk loop": timed(lambda: t02.encode([w], streaming=True), repeat=1),
            "vq06 ONNX (S3 v1 shape)": timed(lambda: t06(wav)),
            "full tokenize (both + interleave)": timed(lambda: tok.tokenize(wav, 16000, preprocess=False)),
            "full tokenize_batch x4": timed(lambda: tok.tokenize_batch([(wav, 16000)] * 4, preprocess=False)) / 4,
        }
    print(f"audio {args.seconds:.1f} s, torch threads {args.threads}, {torch.__version__}")
    print("| stage | s per s of audio | x real time |\n|---|---|---|")
    for name, sec in rows.items():
        print(f"| {name} | {sec / args.seconds:.4f} | {args.seconds / sec:.1f} |")


if __name__ == "__main__":
    main()
