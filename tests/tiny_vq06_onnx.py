"""Test helper: a tiny stand-in for speech_tokenizer_v1.onnx with the official I/O contract.

Inputs ``feats`` (1, 128, T) float32 and ``feats_length`` (1,) int32; output ``indices`` (1, 1, T') int64 with
T' = ceil(ceil(T/2)/2), i.e. 25 codes/s from the 100 Hz log-mel, as the real S3 tokenizer v1. The network is
two stride-2 convolutions (k 3, p 1) and a nearest-codeword search by dot product over ``codebook`` rows.
``feats_length`` is consumed (added times zero) so the graph keeps both inputs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_tiny_vq06(path: str | Path, *, width: int = 16, codebook: int = 4096, n_mels: int = 128,
                   seed: int = 0, second_stride: int = 2) -> Path:
    """Write the model to ``path``; ``second_stride=1`` makes a wrong-rate (50 Hz) model for error tests."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((width, n_mels, 3)) / np.sqrt(3 * n_mels)).astype(np.float32)
    w2 = (rng.standard_normal((width, width, 3)) / np.sqrt(3 * width)).astype(np.float32)
    cb = rng.standard_normal((width, codebook)).astype(np.float32)
    inits = [numpy_helper.from_array(a, name) for a, name in
             ((w1, "encoders.conv1.weight"), (w2, "encoders.conv2.weight"), (cb, "codebook"),
              (np.array([1], np.int64), "one_axis"), (np.array(0.0, np.float32), "zero"))]
    conv = dict(kernel_shape=[3], strides=[2], pads=[1, 1])
    nodes = [
        helper.make_node("Conv", ["feats", "encoders.conv1.weight"], ["h1"], name="/conv1/Conv", **conv),
        helper.make_node("Tanh", ["h1"], ["a1"]),
        helper.make_node("Conv", ["a1", "encoders.conv2.weight"], ["h2"], name="/conv2/Conv",
                         **{**conv, "strides": [second_stride]}),
        helper.make_node("Cast", ["feats_length"], ["len_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["len_f", "zero"], ["len_0"]),
        helper.make_node("Add", ["h2", "len_0"], ["h3"]),
        helper.make_node("Transpose", ["h3"], ["x"], perm=[0, 2, 1]),               # (1, T', width)
        helper.make_node("MatMul", ["x", "codebook"], ["scores"]),                 # (1, T', codebook)
        helper.make_node("ArgMax", ["scores"], ["idx"], axis=-1, keepdims=0),      # (1, T') int64
        helper.make_node("Unsqueeze", ["idx", "one_axis"], ["indices"]),          # (1, 1, T')
    ]
    graph = helper.make_graph(
        nodes, "tiny_s3_tokenizer_v1",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, n_mels, "T"]),
         helper.make_tensor_value_info("feats_length", TensorProto.INT32, [1])],
        [helper.make_tensor_value_info("indices", TensorProto.INT64, [1, 1, "T_out"])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path
