"""CAM++ embedder on a tiny CAM++-shaped ONNX graph (tests/tiny_onnx.py); the real campplus.onnx is offline."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stepedit_core.decoder.features import campplus_input
from stepedit_core.decoder.speaker import CAMPPLUS_EMBED_DIM, CampPlusEmbedder, load_campplus
from stepedit_core.errors import CheckpointError, InvalidInputError
from tests.tiny_onnx import tiny_campplus_reference, write_tiny_campplus


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("campplus") / "campplus.onnx"
    weights = write_tiny_campplus(path, seed=3)
    return path, weights


def test_embed_matches_numpy_reference(tiny, fixtures_root):
    path, weights = tiny
    embedder = CampPlusEmbedder(path)
    assert embedder.providers == ["CPUExecutionProvider"]
    wav16 = load_file(str(fixtures_root / "frontend" / "io.safetensors"))["wav16_functional_resample"]
    emb = embedder.embed(wav16)
    assert emb.shape == (1, CAMPPLUS_EMBED_DIM) and emb.dtype == torch.float32
    ref = tiny_campplus_reference(campplus_input(wav16).numpy(), weights)
    np.testing.assert_allclose(emb.numpy(), ref, atol=1e-5, rtol=0)
    # the feed is the official one: fbank minus its time mean, so the pooled mean is ~0 and the tiny model
    # returns ~bias; check a non-normalised feed too so the projection is exercised
    feat = torch.randn(2, 50, 80)
    np.testing.assert_allclose(embedder.embed_features(feat).numpy(), tiny_campplus_reference(feat.numpy(), weights),
                               atol=1e-5, rtol=0)


def test_folder_path_and_1d_input(tiny):
    path, weights = tiny
    embedder = load_campplus(path.parent)
    assert embedder.path == path
    wav = torch.randn(16000) * 0.1
    torch.testing.assert_close(embedder(wav), embedder.embed(wav[None]), atol=0, rtol=0)


def test_errors(tmp_path, tiny):
    with pytest.raises(CheckpointError):
        CampPlusEmbedder(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx graph")
    with pytest.raises(CheckpointError):
        CampPlusEmbedder(bad)
    wrong = tmp_path / "wrong.onnx"
    write_tiny_campplus(wrong, embed_dim=64)
    with pytest.raises(CheckpointError, match="192"):
        CampPlusEmbedder(wrong)
    embedder = CampPlusEmbedder(tiny[0])
    with pytest.raises(InvalidInputError):
        embedder.embed(torch.zeros(1, 100))
    with pytest.raises(InvalidInputError):
        embedder.embed_features(torch.zeros(1, 10, 40))
