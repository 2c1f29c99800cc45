"""Write a synthetic Step-Audio-EditX checkpoint at the REAL sizes (random weights) for the real-size benchmarks.

Every file is in its official format and folder layout (tests/tiny_checkpoint.py, whose writers are reused):

    Step-Audio-EditX/
        config.json, model-0000k-of-0000n.safetensors (bf16, 291 tensors = manifests/step1_llm_3b.json, sharded
        at ~2 GB so generation never holds the 7.1 GB at once) + model.safetensors.index.json,
        tokenizer.model (74,752 pieces, official id layout), tokenizer_config.json
        CosyVoice-300M-25Hz/  cosyvoice.yaml (real sizes), flow.pt (605 tensors = manifests/flow_pt.json),
                              hift.pt (328 tensors = manifests/hift_pt.json), campplus.onnx (the tiny stand-in:
                              CAM++ is ~7 M parameters and runs once per prompt, so it is not timed here)
    Step-Audio-Tokenizer/
        <paraformer>/ config.yaml, am.mvn, model.pt (50 SANM blocks, 652 encoder tensors = manifests/
        paraformer_encoder.json), linguistic_tokenizer.npy (1024, 512),
        speech_tokenizer_v1.onnx: the S3 v1 network at its real size (~130 M parameters:
        2 convs, positional table, 6 pre-LN blocks 20 x 64 heads with MLP 5120, L2-normalised nearest codeword
        of 4096); random weights, so the codes are random but the compute is the real one.

The folder is ~8.6 GB; it is written once into ``--out`` (default /work/cache/stepedit-realsize) and never
committed. ``--check`` only verifies an existing folder against the manifests.

Run:  python bench/make_realsize_checkpoint.py [--out DIR]     (~2-4 minutes, < 3 GB RAM)
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import tests.tiny_checkpoint as tc  # noqa: E402
from tests.tiny_cosyvoice import _random_state, cosyvoice_yaml, hift_checkpoint_form  # noqa: E402

DEFAULT_OUT = Path("/work/cache/stepedit-realsize")
MANIFESTS = ROOT / "tests" / "fixtures" / "manifests"
SHARD_BYTES = 2 * 1024 ** 3          # ~2 GB per safetensors shard
S3 = dict(n_mels=128, width=1280, heads=20, layers=6, mlp=5120, positions=1500, codebook=4096)   # arch. §5


def manifest(name: str) -> dict:
    return json.loads((MANIFESTS / f"{name}.json").read_text())


# -- LLM -------------------------------------------------------------------------------------------------
def write_llm(folder: Path, seed: int = 0) -> None:
    """config.json with the real sizes, bf16 shards in manifest order, index; tokenizer files (tiny writer)."""
    m = manifest("step1_llm_3b")
    tc.write_llm(folder, seed)                          # tokenizer.model, tokenizer_config.json (+ tiny weights)
    for f in folder.glob("model*.safetensors"):
        f.unlink()
    config = json.loads((folder / "config.json").read_text())
    config.update(m["config"])
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    g = torch.Generator().manual_seed(seed)
    groups, cur, size = [], [], 0
    for t in m["tensors"]:
        n = math.prod(t["shape"]) * 2
        if cur and size + n > SHARD_BYTES:
            groups.append(cur)
            cur, size = [], 0
        cur.append(t)
        size += n
    groups.append(cur)
    weight_map, total = {}, 0
    for i, group in enumerate(groups, 1):
        name = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
        sd = {}
        for t in group:
            shape = tuple(t["shape"])
            if len(shape) == 1:                          # RMSNorm gains
                sd[t["key"]] = torch.ones(shape, dtype=torch.bfloat16)
            else:                                        # N(0, 1/fan_in); the embedding N(0, 1)
                scale = 1.0 if t["key"].endswith("embed_tokens.weight") else shape[1] ** -0.5
                sd[t["key"]] = (torch.randn(shape, generator=g) * scale).to(torch.bfloat16)
            weight_map[t["key"]] = name
            total += sd[t["key"]].numel() * 2
        save_file(sd, str(folder / name), metadata={"format": "pt"})
        del sd
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))


# -- CosyVoice decoder -----------------------------------------------------------------------------------
def write_cosyvoice(folder: Path, seed: int = 0) -> None:
    from stepedit_core.decoder.cosyvoice import read_configs
    from stepedit_core.decoder.flow import CausalMaskedDiffWithXvec
    from stepedit_core.decoder.hift import HiFTGenerator
    from tests.tiny_onnx import write_tiny_campplus

    cfg = manifest("flow_pt")["config"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cosyvoice.yaml").write_text(cosyvoice_yaml(flow=cfg["flow"], encoder=cfg["encoder"],
                                                          dit=cfg["estimator"], hift_base=512), encoding="utf-8")
    flow_cfg, hift_cfg = read_configs(folder)
    gen = torch.Generator().manual_seed(seed)
    torch.save(_random_state(CausalMaskedDiffWithXvec(flow_cfg), gen), folder / "flow.pt")
    hift = HiFTGenerator(hift_cfg)
    torch.save(hift_checkpoint_form(hift, _random_state(hift, gen)), folder / "hift.pt")
    write_tiny_campplus(folder / "campplus.onnx", seed=seed)


# -- audio tokenizer -------------------------------------------------------------------------------------
def write_audio_tokenizer(folder: Path, seed: int = 0) -> None:
    real = manifest("paraformer_encoder")["config"]
    tc.TINY_PARAFORMER = {k: real[k] for k in ("output_size", "attention_heads", "linear_units", "num_blocks")}
    folder.mkdir(parents=True, exist_ok=True)
    dim = tc.write_paraformer(folder / tc.PARAFORMER, seed)
    rng = np.random.default_rng(seed + 1)
    np.save(folder / "linguistic_tokenizer.npy", rng.standard_normal((1024, dim)).astype(np.float32))
    write_s3_tokenizer(folder / "speech_tokenizer_v1.onnx", seed)


def write_s3_tokenizer(path: Path, seed: int = 0) -> None:
    """The S3 v1 25 Hz network as an ONNX graph with random weights, official I/O:
    feats (1, 128, T) float32, feats_length (1,) int32 -> indices (1, 1, ceil(T/4)) int64."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w, h, d = S3["width"], S3["heads"], S3["width"] // S3["heads"]
    inits, nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def rand(name, *shape, fan_in=None):
        return init(name, (rng.standard_normal(shape) / math.sqrt(fan_in or shape[0])).astype(np.float32))

    def node(op, ins, out, **kw):
        nodes.append(helper.make_node(op, ins, [out], **kw))
        return out

    def gelu(x, name):      # exact GELU from Erf (opset 17 has no Gelu op)
        e = node("Erf", [node("Mul", [x, init(f"{name}.isq2", np.float32(2 ** -0.5))], f"{name}.s")], f"{name}.e")
        half = node("Mul", [x, init(f"{name}.half", np.float32(0.5))], f"{name}.h")
        return node("Mul", [half, node("Add", [e, init(f"{name}.one", np.float32(1.0))], f"{name}.e1")], name)

    def layer_norm(x, name):
        return node("LayerNormalization", [x, init(f"{name}.weight", np.ones(w, np.float32)),
                                           init(f"{name}.bias", np.zeros(w, np.float32))], name, axis=-1,
                    epsilon=1e-5)

    conv = dict(kernel_shape=[3], strides=[2], pads=[1, 1])
    x = gelu(node("Conv", ["feats", rand("encoders.conv1.weight", w, S3["n_mels"], 3, fan_in=3 * S3["n_mels"]),
                           init("encoders.conv1.bias", np.zeros(w, np.float32))], "c1", **conv), "g1")
    x = gelu(node("Conv", [x, rand("encoders.conv2.weight", w, w, 3, fan_in=3 * w),
                           init("encoders.conv2.bias", np.zeros(w, np.float32))], "c2", **conv), "g2")
    x = node("Transpose", [x], "xt", perm=[0, 2, 1])                                       # (1, T', W)
    t_len = node("Shape", [x], "t_len", start=1, end=2)
    pos = node("Slice", [init("encoders.positional_embedding", 0.02 * rng.standard_normal(
        (S3["positions"], w)).astype(np.float32)), init("zero1", np.array([0], np.int64)), t_len,
        init("axis0", np.array([0], np.int64))], "pos")
    x = node("Add", [x, pos], "x0")
    heads_shape = init("heads_shape", np.array([0, -1, h, d], np.int64))
    back_shape = init("back_shape", np.array([0, -1, w], np.int64))
    qk_scale = init("qk_scale", np.float32(d ** -0.25))
    for i in range(S3["layers"]):
        p = f"/blocks.{i}"
        a = layer_norm(x, f"encoders.blocks.{i}.attn_ln")
        proj = {}
        for n in ("query", "key", "value"):
            y = node("MatMul", [a, rand(f"{p}/attn/{n}/MatMul.w", w, w)], f"{p}.{n}")
            if n != "key":
                y = node("Add", [y, init(f"{p}/attn/{n}.bias", np.zeros(w, np.float32))], f"{p}.{n}.b")
            y = node("Transpose", [node("Reshape", [y, heads_shape], f"{p}.{n}.r")], f"{p}.{n}.t", perm=[0, 2, 1, 3])
            proj[n] = y if n == "value" else node("Mul", [y, qk_scale], f"{p}.{n}.s")
        kt = node("Transpose", [proj["key"]], f"{p}.kt", perm=[0, 1, 3, 2])
        att = node("Softmax", [node("MatMul", [proj["query"], kt], f"{p}.qk")], f"{p}.att", axis=-1)
        o = node("Reshape", [node("Transpose", [node("MatMul", [att, proj["value"]], f"{p}.av")], f"{p}.avt",
                                  perm=[0, 2, 1, 3]), back_shape], f"{p}.o")
        x = node("Add", [x, node("MatMul", [o, rand(f"{p}/attn/out/MatMul.w", w, w)], f"{p}.out")], f"{p}.x1")
        m = layer_norm(x, f"encoders.blocks.{i}.mlp_ln")
        m = gelu(node("MatMul", [m, rand(f"{p}/mlp/0/MatMul.w", w, S3["mlp"])], f"{p}.m1"), f"{p}.mg")
        x = node("Add", [x, node("MatMul", [m, rand(f"{p}/mlp/2/MatMul.w", S3["mlp"], w)], f"{p}.m2")], f"{p}.x2")
    norm = node("ReduceL2", [x], "l2", axes=[-1], keepdims=1)       # opset 17: axes is an attribute
    x = node("Div", [x, node("Max", [norm, init("eps", np.float32(1e-12))], "l2e")], "xn")
    cb = rng.standard_normal((w, S3["codebook"])).astype(np.float32)
    cb /= np.linalg.norm(cb, axis=0, keepdims=True)                    # unit columns: max dot = min distance
    scores = node("MatMul", [x, init("/quantizer/rq/model/layers.0/_codebook/MatMul.w", cb)], "scores")
    len_0 = node("Mul", [node("Cast", ["feats_length"], "len_f", to=TensorProto.FLOAT), init("zero", np.float32(0))],
                 "len_0")
    idx = node("ArgMax", [node("Add", [scores, len_0], "scores_l")], "idx", axis=-1, keepdims=0)
    node("Unsqueeze", [idx, init("one_axis", np.array([1], np.int64))], "indices")
    graph = helper.make_graph(
        nodes, "s3_tokenizer_v1_25hz_realsize",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, S3["n_mels"], "T"]),
         helper.make_tensor_value_info("feats_length", TensorProto.INT32, [1])],
        [helper.make_tensor_value_info("indices", TensorProto.INT64, [1, 1, "T_out"])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


# -- check -----------------------------------------------------------------------------------------------
def check(root: Path) -> dict[str, int]:
    """Tensor counts and shapes of the written files against the manifests; raises on any difference."""
    from stepedit_core.model.loading import check_state_dict_layout, manifest_layout, weight_files

    editx = root / tc.EDITX
    found = {}
    for f in weight_files(editx):
        with safe_open(str(f), framework="pt") as sf:
            found.update({k: tuple(sf.get_slice(k).get_shape()) for k in sf.keys()})
    check_state_dict_layout(found, manifest_layout(MANIFESTS / "step1_llm_3b.json"), "realsize LLM")
    flow = torch.load(editx / tc.COSYVOICE / "flow.pt", map_location="meta", weights_only=True)
    check_state_dict_layout({k: tuple(v.shape) for k, v in flow.items()}, manifest_layout(MANIFESTS / "flow_pt.json"),
                            "realsize flow.pt")
    hift = torch.load(editx / tc.COSYVOICE / "hift.pt", map_location="meta", weights_only=True)
    check_state_dict_layout({k: tuple(v.shape) for k, v in hift.items()}, manifest_layout(MANIFESTS / "hift_pt.json"),
                            "realsize hift.pt")
    para = torch.load(root / tc.TOKENIZER / tc.PARAFORMER / "model.pt", map_location="meta", weights_only=True)
    check_state_dict_layout({k: tuple(v.shape) for k, v in para.items() if k.startswith("encoder.")},
                            manifest_layout(MANIFESTS / "paraformer_encoder.json"), "realsize paraformer")
    return {"llm": len(found), "flow": len(flow), "hift": len(hift), "paraformer_encoder": len(para) - 1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="only verify an existing folder")
    args = ap.parse_args()
    if not args.check:
        t0 = time.perf_counter()
        editx = args.out / tc.EDITX
        editx.mkdir(parents=True, exist_ok=True)
        write_llm(editx, args.seed)
        write_cosyvoice(editx / tc.COSYVOICE, args.seed)
        write_audio_tokenizer(args.out / tc.TOKENIZER, args.seed)
        print(f"written in {time.perf_counter() - t0:.0f} s")
    print("matches the manifests:", check(args.out))


if __name__ == "__main__":
    main()
