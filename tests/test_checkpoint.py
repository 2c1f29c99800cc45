"""Checkpoint discovery and verification on a tiny checkpoint: layout, truncation detection per format,
typed errors that name the missing files, and the HF-cache lookup."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from stepedit_core import checkpoint as ck
from stepedit_core.errors import CheckpointError, ModelUnavailableError
from tests.tiny_checkpoint import EDITX, TOKENIZER, write_audio_tokenizer, write_llm


def _fake_cosyvoice(folder):
    """Minimal well-formed files of each decoder format (verification reads formats, not contents)."""
    import onnx
    from onnx import TensorProto, helper
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cosyvoice.yaml").write_text("flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithXvec\n"
                                           "    input_size: 512\nhift: !ref <flow>\n")
    torch.save({"w": torch.zeros(3)}, str(folder / "flow.pt"))
    torch.save({"w": torch.zeros(3)}, str(folder / "hift.pt"))
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(folder / "campplus.onnx"))


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    (root / EDITX).mkdir()
    write_llm(root / EDITX)
    _fake_cosyvoice(root / EDITX / ck.COSYVOICE_DIRNAME)
    write_audio_tokenizer(root / TOKENIZER)
    return root


@pytest.fixture
def root(tiny_root, tmp_path):
    dst = tmp_path / "m"
    shutil.copytree(tiny_root, dst)
    return dst


def test_complete_checkpoint_verifies(root):
    paths = ck.resolve_checkpoint(root)
    assert paths.editx == root / EDITX and paths.tokenizer == root / TOKENIZER
    report = ck.verify_checkpoint(paths)
    expected = {f"{EDITX}/{s.path}" for s in ck.EDITX_FILES} | {f"{TOKENIZER}/{s.path}" for s in ck.TOKENIZER_FILES}
    expected.add(f"{EDITX}/model-00001.safetensors")
    assert set(report.files) == expected
    # tiny files differ from the official sizes: a warning by default, an error when asked for
    assert any("tokenizer.model" in w for w in report.warnings)
    with pytest.raises(CheckpointError, match="differs from the official release"):
        ck.verify_checkpoint(paths, official_sizes=True)


def test_editx_folder_given_directly(root):
    paths = ck.resolve_checkpoint(root / EDITX)           # the tokenizer folder sits next to it
    assert paths.editx == root / EDITX and paths.tokenizer == root / TOKENIZER


def test_missing_folder_is_model_unavailable(tmp_path):
    with pytest.raises(ModelUnavailableError, match="huggingface-cli download stepfun-ai/Step-Audio-EditX"):
        ck.resolve_checkpoint(tmp_path)


@pytest.mark.parametrize("rel", ["Step-Audio-EditX/CosyVoice-300M-25Hz/hift.pt",
                                 "Step-Audio-EditX/model-00001.safetensors",
                                 "Step-Audio-Tokenizer/" + ck.PARAFORMER_DIRNAME + "/am.mvn"])
def test_missing_file_is_named(root, rel):
    (root / rel).unlink()
    with pytest.raises(CheckpointError) as err:
        ck.resolve_checkpoint(root)
    assert any(rel.split("/", 1)[1] in m for m in err.value.missing), err.value.missing


@pytest.mark.parametrize("rel", ["Step-Audio-EditX/model-00001.safetensors",
                                 "Step-Audio-EditX/CosyVoice-300M-25Hz/flow.pt",
                                 "Step-Audio-Tokenizer/speech_tokenizer_v1.onnx",
                                 "Step-Audio-Tokenizer/linguistic_tokenizer.npy",
                                 "Step-Audio-Tokenizer/" + ck.PARAFORMER_DIRNAME + "/model.pt"])
def test_truncated_file_is_detected(root, rel):
    path = root / rel
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - max(1, len(data) // 10)])      # an interrupted download
    with pytest.raises(CheckpointError) as err:
        ck.resolve_checkpoint(root)
    assert any(rel.split("/", 1)[1] in m for m in err.value.mismatched), err.value.mismatched


@pytest.mark.parametrize("rel,content", [("Step-Audio-EditX/config.json", b"{not json"),
                                         ("Step-Audio-EditX/tokenizer.model", b"\x00garbage\xff" * 10),
                                         ("Step-Audio-EditX/CosyVoice-300M-25Hz/cosyvoice.yaml", b"a: [1, 2\n"),
                                         ("Step-Audio-EditX/CosyVoice-300M-25Hz/campplus.onnx", b"hello")],
                         ids=["json", "sentencepiece", "yaml", "onnx"])
def test_corrupt_file_is_detected(root, rel, content):
    (root / rel).write_bytes(content)
    with pytest.raises(CheckpointError, match="incomplete or corrupt"):
        ck.resolve_checkpoint(root)


def test_index_naming_absent_shard(root):
    index_path = root / EDITX / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"]["lm_head.weight"] = "model-00002.safetensors"
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError) as err:
        ck.resolve_checkpoint(root)
    assert any("model-00002.safetensors" in m for m in err.value.missing)


def test_safetensors_and_npy_checks_are_exact(tmp_path):
    from safetensors.torch import save_file
    f = tmp_path / "x.safetensors"
    save_file({"a": torch.zeros(3, 4), "b": torch.ones(5, dtype=torch.bfloat16)}, str(f))
    ck.check_file(f, "safetensors")
    f.write_bytes(f.read_bytes() + b"\0")                       # trailing garbage is also wrong
    with pytest.raises(ValueError):
        ck.check_file(f, "safetensors")
    n = tmp_path / "c.npy"
    np.save(n, np.zeros((1024, 8), np.float32))
    ck.check_file(n, "npy")


def test_env_and_hf_cache_lookup(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv(ck.MODEL_PATH_ENV, str(tiny_root))
    assert ck.find_checkpoint().source == "env"
    monkeypatch.delenv(ck.MODEL_PATH_ENV)
    # a Hugging Face cache with snapshots of both repos at the pinned revisions
    cache = tmp_path / "hub"
    for repo, rev, sub in ((ck.EDITX_REPO, ck.EDITX_REVISION, EDITX),
                           (ck.TOKENIZER_REPO, ck.TOKENIZER_REVISION, TOKENIZER)):
        base = cache / f"models--{repo.replace('/', '--')}"
        shutil.copytree(tiny_root / sub, base / "snapshots" / rev)
        (base / "refs").mkdir()
        (base / "refs" / "main").write_text(rev)
    found = ck.find_checkpoint(cache_dir=cache)
    assert found is not None and found.source == "hf-cache"
    assert found.editx.name == ck.EDITX_REVISION and found.tokenizer.name == ck.TOKENIZER_REVISION
    ck.verify_checkpoint(found)
    # another cached revision is used as a last resort
    base = cache / f"models--{ck.EDITX_REPO.replace('/', '--')}"
    (base / "snapshots" / ck.EDITX_REVISION).rename(base / "snapshots" / ("0" * 40))
    (base / "refs" / "main").write_text("0" * 40)
    assert ck.find_checkpoint(cache_dir=cache).editx.name == "0" * 40


def test_download_without_network_is_model_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(ck.MODEL_PATH_ENV, raising=False)
    monkeypatch.setattr(ck, "_cached_snapshot", lambda repo, rev, cache_dir=None: None)
    with pytest.raises(ModelUnavailableError):
        ck.resolve_checkpoint(None, download=True)


def test_download_lays_out_the_official_folders(tiny_root, tmp_path, monkeypatch):
    """snapshot_download replaced by a local copy: pinned revisions, file filters, layout, progress."""
    import huggingface_hub
    calls, seen = [], []

    def fake_snapshot_download(repo, *, revision, local_dir, allow_patterns, tqdm_class):
        calls.append((repo, revision, tuple(allow_patterns)))
        src = tiny_root / (EDITX if repo == ck.EDITX_REPO else TOKENIZER)
        files = [p for p in src.rglob("*") if p.is_file()]
        bar = tqdm_class(total=len(files))
        for f in files:
            dst = local_dir / f.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dst)
            bar.update(1)
        bar.close()
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    paths = ck.resolve_checkpoint(tmp_path / "models", download=True,
                                  progress=lambda f, d: seen.append(f))
    assert paths.editx == tmp_path / "models" / EDITX and paths.tokenizer == tmp_path / "models" / TOKENIZER
    assert [(c[0], c[1]) for c in calls] == [(ck.EDITX_REPO, ck.EDITX_REVISION),
                                            (ck.TOKENIZER_REPO, ck.TOKENIZER_REVISION)]
    assert "CosyVoice-300M-25Hz/campplus.onnx" in calls[0][2] and "README.md" not in calls[0][2]
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert any(0.0 < f < 0.85 for f in seen) and any(0.85 < f < 1.0 for f in seen)   # per-file, both repos
    assert ck.find_checkpoint(tmp_path / "models").source == "local"          # found again without network
