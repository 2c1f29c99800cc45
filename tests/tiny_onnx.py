"""A tiny CAM++-shaped ONNX model for tests (the real campplus.onnx is not available offline).

Graph: ``input`` (batch, frames, 80) float -> ReduceMean over frames -> MatMul (80, 192) -> Add bias ->
``output`` (batch, 192). Same signature as campplus.onnx (names per stepedit_core.decoder.speaker's assumption), so
``CampPlusEmbedder`` and the engine can run on it. ``tiny_campplus_reference`` is the numpy twin.

Usage from other tests::

    from tests.tiny_onnx import write_tiny_campplus
    weights = write_tiny_campplus(tmp_path / "campplus.onnx", seed=0)
"""
from __future__ import annotations

import os

import numpy as np

from stepedit_core.decoder.speaker import (CAMPPLUS_EMBED_DIM, CAMPPLUS_FEAT_DIM, CAMPPLUS_INPUT_NAME,
                                   CAMPPLUS_OUTPUT_NAME)

TINY_OPSET = 13      # ReduceMean still takes `axes` as an attribute at opset 13


def tiny_campplus_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"proj": (rng.standard_normal((CAMPPLUS_FEAT_DIM, CAMPPLUS_EMBED_DIM)) / np.sqrt(CAMPPLUS_FEAT_DIM)
                     ).astype(np.float32),
            "bias": (0.1 * rng.standard_normal(CAMPPLUS_EMBED_DIM)).astype(np.float32)}


def write_tiny_campplus(path: str | os.PathLike, seed: int = 0, *, input_name: str = CAMPPLUS_INPUT_NAME,
                        output_name: str = CAMPPLUS_OUTPUT_NAME, embed_dim: int = CAMPPLUS_EMBED_DIM
                        ) -> dict[str, np.ndarray]:
    """Write the tiny graph to ``path``; returns its weights. ``embed_dim`` != 192 builds a wrong model."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = tiny_campplus_weights(seed)
    if embed_dim != CAMPPLUS_EMBED_DIM:
        weights = {"proj": weights["proj"][:, :1].repeat(embed_dim, axis=1),
                   "bias": np.zeros(embed_dim, np.float32)}
    nodes = [helper.make_node("ReduceMean", [input_name], ["pooled"], axes=[1], keepdims=0),
             helper.make_node("MatMul", ["pooled", "proj"], ["projected"]),
             helper.make_node("Add", ["projected", "bias"], [output_name])]
    graph = helper.make_graph(
        nodes, "tiny_campplus",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", "frames", CAMPPLUS_FEAT_DIM])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", embed_dim])],
        initializer=[numpy_helper.from_array(weights["proj"], "proj"),
                     numpy_helper.from_array(weights["bias"], "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", TINY_OPSET)])
    model.ir_version = 8      # readable by every onnxruntime >= 1.10
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return weights


def tiny_campplus_reference(feat: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    """numpy twin of the tiny graph: feat (B, T, 80) -> (B, 192), in float64."""
    pooled = np.asarray(feat, np.float64).mean(axis=1)
    return pooled @ weights["proj"].astype(np.float64) + weights["bias"].astype(np.float64)
