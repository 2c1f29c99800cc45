"""Find, download and verify the two official checkpoint folders (Step-Audio-EditX and Step-Audio-Tokenizer).

A checkpoint is two folders:
- ``Step-Audio-EditX`` (HF ``stepfun-ai/Step-Audio-EditX``): the Step1 LLM, its tokenizer and
  ``CosyVoice-300M-25Hz/`` (flow, HiFT, CAM++);
- ``Step-Audio-Tokenizer`` (HF ``stepfun-ai/Step-Audio-Tokenizer``): the vq02 k-means centroids, the vq06
  ONNX and the Paraformer folder.

Where they are looked for, in order: an explicit ``model_path`` holding both (the official layout of
GH:app.py, ``--model-path DIR``), ``$STEPEDIT_MODEL_PATH``, the Hugging Face cache at the pinned revisions
(any cached revision as a last resort), and, with ``download=True``, ``huggingface_hub.snapshot_download``.

Verification reads no weights: every file must exist and be complete for its format (safetensors,
``.npy`` and ONNX headers declare their own length; torch zip archives have a central directory at the
end; JSON / YAML / SentencePiece must parse). A truncated or corrupt download is therefore caught before
any model is built. Sizes of the official release are known for most files; a different size is a
warning by default (a test checkpoint or another revision) and an error with ``official_sizes=True``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .errors import CheckpointError, ModelUnavailableError

log = logging.getLogger(__name__)

EDITX_DIRNAME = "Step-Audio-EditX"
TOKENIZER_DIRNAME = "Step-Audio-Tokenizer"
EDITX_REPO = "stepfun-ai/Step-Audio-EditX"
TOKENIZER_REPO = "stepfun-ai/Step-Audio-Tokenizer"
# Pinned Hub revisions. EditX 5fe2f8a0 is the 2026-01-23 weight upload (the one public ports pin);
# 7f3de603 is the 2025-11-28 upload. The tokenizer repo has a single revision in use.
EDITX_REVISION = "5fe2f8a05c2353301ad47d3c1747b262115da138"
EDITX_REVISION_2025_11_28 = "7f3de603ae46c96dff6f06f47b1d5a45aabd34fe"
TOKENIZER_REVISION = "af7e5a3ec06175a7facae9d4100073d6e4dbb36c"
COSYVOICE_DIRNAME = "CosyVoice-300M-25Hz"
PARAFORMER_DIRNAME = "dengcunqin/speech_paraformer-large_asr_nat-zh-cantonese-en-16k-vocab8501-online"
MODEL_PATH_ENV = "STEPEDIT_MODEL_PATH"
# A Hub revision of the EditX repo to use instead of the pinned one (e.g. the 2026 model, once you have checked
# its hash yourself); the tag vocabulary that goes with it is stepedit_core/tags.py's setting.
REVISION_ENV = "STEPEDIT_MODEL_REVISION"

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class FileSpec:
    """One file of a checkpoint folder: where, in which format, and its size in the official release."""
    path: str                       # relative to its folder (EditX or Tokenizer)
    kind: str                       # json | safetensors_index | sentencepiece | yaml | torch | onnx | npy | mvn
    official_size: int | None       # bytes in the official release; None when it varies
    what: str                       # what the file is, for messages


EDITX_FILES: tuple[FileSpec, ...] = (
    FileSpec("config.json", "json", None, "Step1 LLM config (514 or 568 B depending on the revision)"),
    FileSpec("model.safetensors.index.json", "safetensors_index", None, "LLM shard index (the shards it "
             "names are verified too)"),
    FileSpec("tokenizer.model", "sentencepiece", 1_264_044, "SentencePiece text tokenizer"),
    FileSpec("tokenizer_config.json", "json", None, "tokenizer config"),
    FileSpec(f"{COSYVOICE_DIRNAME}/cosyvoice.yaml", "yaml", None, "flow / HiFT config"),
    FileSpec(f"{COSYVOICE_DIRNAME}/flow.pt", "torch", 615_274_252, "flow-matching decoder weights"),
    FileSpec(f"{COSYVOICE_DIRNAME}/hift.pt", "torch", 117_228_443, "HiFT vocoder weights"),
    FileSpec(f"{COSYVOICE_DIRNAME}/campplus.onnx", "onnx", 28_303_423, "CAM++ speaker encoder"),
)
TOKENIZER_FILES: tuple[FileSpec, ...] = (
    FileSpec("linguistic_tokenizer.npy", "npy", 2_097_280, "vq02 k-means centroids (1024, 512)"),
    FileSpec("speech_tokenizer_v1.onnx", "onnx", 522_625_011, "vq06 S3 tokenizer v1"),
    FileSpec(f"{PARAFORMER_DIRNAME}/am.mvn", "mvn", 11_203, "Paraformer CMVN"),
    FileSpec(f"{PARAFORMER_DIRNAME}/config.yaml", "yaml", 2_940, "Paraformer config"),
    FileSpec(f"{PARAFORMER_DIRNAME}/model.pt", "torch", None, "Paraformer ASR model (encoder used, ~881 MB)"),
)
# Hub download filters: only what inference reads (no README, assets, the unused speech_tokenizer_v1.onnx
# copy in CosyVoice-300M-25Hz, or remote code).
EDITX_PATTERNS = ("config.json", "model*.safetensors", "model.safetensors.index.json", "tokenizer.model",
                  "tokenizer_config.json", f"{COSYVOICE_DIRNAME}/cosyvoice.yaml", f"{COSYVOICE_DIRNAME}/flow.pt",
                  f"{COSYVOICE_DIRNAME}/hift.pt", f"{COSYVOICE_DIRNAME}/campplus.onnx")
TOKENIZER_PATTERNS = ("linguistic_tokenizer.npy", "speech_tokenizer_v1.onnx", f"{PARAFORMER_DIRNAME}/am.mvn",
                      f"{PARAFORMER_DIRNAME}/config.yaml", f"{PARAFORMER_DIRNAME}/model.pt")

_HOW_TO_GET = (
    "Get the weights with `huggingface-cli download {editx} --revision {erev} --local-dir DIR/{edir}` and "
    "`huggingface-cli download {tok} --revision {trev} --local-dir DIR/{tdir}`, then pass model_path=DIR "
    "(or set ${env}=DIR), or call with download=True."
).format(editx=EDITX_REPO, erev=EDITX_REVISION, edir=EDITX_DIRNAME, tok=TOKENIZER_REPO, trev=TOKENIZER_REVISION,
         tdir=TOKENIZER_DIRNAME, env=MODEL_PATH_ENV)


@dataclass(frozen=True)
class CheckpointPaths:
    """The two folders of one checkpoint (not necessarily siblings: Hub cache snapshots are not)."""
    editx: Path
    tokenizer: Path
    source: str = "local"              # local | env | hf-cache | download

    @property
    def cosyvoice(self) -> Path:
        return self.editx / COSYVOICE_DIRNAME

    @property
    def paraformer(self) -> Path:
        return self.tokenizer / PARAFORMER_DIRNAME


@dataclass
class VerifyReport:
    files: dict[str, int] = field(default_factory=dict)        # verified path -> size in bytes
    warnings: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


# --- format checks: each raises ValueError with a reason -------------------------------------------------

def _check_json(path: Path) -> None:
    json.loads(path.read_text(encoding="utf-8"))


def _check_safetensors(path: Path) -> None:
    """The 8-byte header length, the JSON header, and a data section exactly as long as the header says."""
    size = path.stat().st_size
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise ValueError("shorter than a safetensors header")
        (n,) = struct.unpack("<Q", raw)
        if n > min(size - 8, 100 << 20):
            raise ValueError(f"header length {n} exceeds the file")
        header = json.loads(f.read(n))
    end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        begin, stop = info["data_offsets"]
        itemsize = _SAFETENSORS_ITEMSIZE.get(info["dtype"])
        if itemsize is not None and stop - begin != math.prod(info["shape"]) * itemsize:
            raise ValueError(f"tensor {key}: {stop - begin} bytes for shape {info['shape']} {info['dtype']}")
        end = max(end, stop)
    if size != 8 + n + end:
        raise ValueError(f"{size} bytes, but the header describes {8 + n + end} (truncated download?)")


_SAFETENSORS_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                         "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def _check_safetensors_index(path: Path) -> list[str]:
    """The index parses and names at least one shard; returns the shard file names."""
    index = json.loads(path.read_text(encoding="utf-8"))
    shards = sorted(set(index.get("weight_map", {}).values()))
    if not shards:
        raise ValueError("weight_map names no shard")
    return shards


def _check_sentencepiece(path: Path) -> None:
    from sentencepiece import sentencepiece_model_pb2 as pb
    proto = pb.ModelProto()
    proto.ParseFromString(path.read_bytes())
    if not proto.pieces:
        raise ValueError("no pieces")


def _check_yaml(path: Path) -> None:
    """Syntax only: ``yaml.compose`` builds nodes without constructing, so hyperpyyaml tags (!new:, !ref)
    of cosyvoice.yaml are accepted."""
    import yaml
    if yaml.compose(path.read_text(encoding="utf-8")) is None:
        raise ValueError("empty YAML document")


def _check_torch(path: Path) -> None:
    """A torch.save zip archive: the central directory (at the end of the file) lists a pickle."""
    if not zipfile.is_zipfile(path):
        raise ValueError("not a torch zip archive (truncated, or a legacy pickle that is not supported)")
    with zipfile.ZipFile(path) as z:
        if not any(n.endswith("data.pkl") for n in z.namelist()):
            raise ValueError("zip archive without data.pkl")


def _read_varint(f) -> int | None:
    shift = result = 0
    while True:
        b = f.read(1)
        if not b:
            return None if shift == 0 else -1
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            return -1


def _check_onnx(path: Path) -> None:
    """Walk the top-level fields of the ``ModelProto`` protobuf without parsing the graph: every
    length-delimited field (the graph is one) must fit in the file, and a graph (field 7) must be present."""
    size = path.stat().st_size
    fields = set()
    with path.open("rb") as f:
        while True:
            key = _read_varint(f)
            if key is None:
                break
            if key < 0:
                raise ValueError("corrupt protobuf key")
            number, wire = key >> 3, key & 7
            if wire == 0:
                if _read_varint(f) in (None, -1):
                    raise ValueError("truncated varint")
            elif wire == 2:
                n = _read_varint(f)
                if n in (None, -1) or f.tell() + n > size:
                    raise ValueError(f"field {number} runs past the end of the file (truncated download?)")
                f.seek(n, os.SEEK_CUR)
            elif wire in (1, 5):
                f.seek(8 if wire == 1 else 4, os.SEEK_CUR)
            else:
                raise ValueError(f"unexpected protobuf wire type {wire}")
            fields.add(number)
    if 7 not in fields:
        raise ValueError("no graph in the ONNX model")


def _check_npy(path: Path) -> None:
    with path.open("rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(f)
        expected = f.tell() + math.prod(shape) * dtype.itemsize
    if path.stat().st_size != expected:
        raise ValueError(f"{path.stat().st_size} bytes, header {shape} {dtype} needs {expected}")


def _check_mvn(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    if "<AddShift>" not in text or "<Rescale>" not in text:
        raise ValueError("not a Kaldi nnet CMVN file (<AddShift>/<Rescale> missing)")


_CHECKS = {"json": _check_json, "sentencepiece": _check_sentencepiece, "yaml": _check_yaml,
           "torch": _check_torch, "onnx": _check_onnx, "npy": _check_npy, "mvn": _check_mvn,
           "safetensors": _check_safetensors}


def check_file(path: Path, kind: str) -> None:
    """Raise ValueError when ``path`` is not a complete file of format ``kind``."""
    _CHECKS[kind](path)


# --- verification -----------------------------------------------------------------------------------------

def _verify_folder(folder: Path, specs: Iterable[FileSpec], label: str, report: VerifyReport,
                   official_sizes: bool) -> None:
    missing, corrupt, wrong_size = [], [], []
    todo = []
    for spec in specs:
        path = folder / spec.path
        if not path.is_file():
            missing.append(f"{label}/{spec.path} ({spec.what})")
            continue
        todo.append((spec, path))
        if spec.kind == "safetensors_index":
            try:
                shards = _check_safetensors_index(path)
            except (ValueError, KeyError, json.JSONDecodeError) as exc:
                corrupt.append(f"{label}/{spec.path}: {exc}")
                continue
            for shard in shards:
                sp = folder / shard
                if not sp.is_file():
                    missing.append(f"{label}/{shard} (LLM weight shard named by the index)")
                else:
                    todo.append((FileSpec(shard, "safetensors", None, "LLM weight shard"), sp))
    for spec, path in todo:
        if spec.kind != "safetensors_index":
            try:
                check_file(path, spec.kind)
            except Exception as exc:  # noqa: BLE001 (parsers raise many types; all mean "corrupt")
                corrupt.append(f"{label}/{spec.path}: {exc}")
                continue
        size = path.stat().st_size
        report.files[f"{label}/{spec.path}"] = size
        if spec.official_size is not None and size != spec.official_size:
            wrong_size.append(f"{label}/{spec.path}: {size} B, official {spec.official_size} B")
    if missing or corrupt:
        raise CheckpointError(f"the {label} folder {folder} is incomplete or corrupt. {_HOW_TO_GET}",
                              missing=missing, mismatched=corrupt)
    if wrong_size:
        if official_sizes:
            raise CheckpointError(f"the {label} folder {folder} differs from the official release",
                                  mismatched=wrong_size)
        report.warnings += [f"size differs from the pinned official release: {w}" for w in wrong_size]


def verify_checkpoint(paths: CheckpointPaths, *, official_sizes: bool = False) -> VerifyReport:
    """Check every file both folders need; raise CheckpointError naming what is missing or corrupt."""
    report = VerifyReport()
    _verify_folder(paths.editx, EDITX_FILES, EDITX_DIRNAME, report, official_sizes)
    _verify_folder(paths.tokenizer, TOKENIZER_FILES, TOKENIZER_DIRNAME, report, official_sizes)
    for w in report.warnings:
        log.warning(w)
    return report


# --- locating ---------------------------------------------------------------------------------------------

def _layout(root: Path, source: str) -> CheckpointPaths | None:
    """``root/Step-Audio-EditX`` + ``root/Step-Audio-Tokenizer`` (official), or ``root`` itself being the
    EditX folder with the tokenizer folder next to it."""
    editx, tok = root / EDITX_DIRNAME, root / TOKENIZER_DIRNAME
    if editx.is_dir() and tok.is_dir():
        return CheckpointPaths(editx, tok, source)
    sibling = root.parent / TOKENIZER_DIRNAME
    if (root / "config.json").is_file() and (root / COSYVOICE_DIRNAME).is_dir() and sibling.is_dir():
        return CheckpointPaths(root, sibling, source)
    return None


def _cached_snapshot(repo: str, revision: str, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The HF cache snapshot of ``repo`` at ``revision``; else any cached snapshot (with a warning)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        return None
    try:
        return Path(snapshot_download(repo, revision=revision, cache_dir=cache_dir, local_files_only=True))
    except Exception:  # noqa: BLE001 (LocalEntryNotFoundError and friends: not cached)
        pass
    snapshots = Path(cache_dir or HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "snapshots"
    found = sorted(p for p in snapshots.glob("*") if p.is_dir()) if snapshots.is_dir() else []
    if found:
        log.warning("%s: pinned revision %s not cached; using cached snapshot %s", repo, revision, found[-1].name)
        return found[-1]
    return None


def selected_editx_revision() -> str:
    """The EditX Hub revision to look up / download: ``$STEPEDIT_MODEL_REVISION``, else the pinned one."""
    return os.environ.get(REVISION_ENV, "").strip() or EDITX_REVISION


def find_checkpoint(model_path: str | os.PathLike | None = None, *,
                    cache_dir: str | os.PathLike | None = None) -> CheckpointPaths | None:
    """The checkpoint folders, if present locally (no network). See the module docstring for the order;
    ``cache_dir`` overrides the Hugging Face cache location."""
    if model_path:
        return _layout(Path(model_path), "local")
    env = os.environ.get(MODEL_PATH_ENV)
    if env and (found := _layout(Path(env), "env")):
        return found
    editx = _cached_snapshot(EDITX_REPO, selected_editx_revision(), cache_dir)
    tok = _cached_snapshot(TOKENIZER_REPO, TOKENIZER_REVISION, cache_dir)
    if editx and tok:
        return CheckpointPaths(editx, tok, "hf-cache")
    return None


def _progress_tqdm(progress: Progress, desc: str, share: tuple[float, float]):
    """A tqdm class that forwards byte progress to ``progress(fraction, desc)`` within ``share``."""
    from tqdm.auto import tqdm

    class _Forward(tqdm):
        def update(self, n=1):
            out = super().update(n)
            if self.total:
                lo, hi = share
                progress(lo + (hi - lo) * min(1.0, self.n / self.total), desc)
            return out

    return _Forward


def download_checkpoint(model_path: str | os.PathLike | None = None, *, progress: Progress | None = None,
                        editx_revision: str | None = None,
                        tokenizer_revision: str = TOKENIZER_REVISION) -> CheckpointPaths:
    """Download both repos at pinned revisions (only the files inference reads, ~9.3 GB).

    With ``model_path`` the files land in the official layout ``model_path/Step-Audio-EditX`` and
    ``model_path/Step-Audio-Tokenizer``; without, in the Hugging Face cache. ``progress(fraction, desc)``
    advances per finished file (the EditX repo is the first 85 %, by size).
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ModelUnavailableError(f"downloading needs huggingface_hub: {exc}") from exc
    progress = progress or (lambda f, d: None)
    editx_revision = editx_revision or selected_editx_revision()
    out = []
    for (repo, rev, patterns, dirname), share in zip(
            ((EDITX_REPO, editx_revision, EDITX_PATTERNS, EDITX_DIRNAME),
             (TOKENIZER_REPO, tokenizer_revision, TOKENIZER_PATTERNS, TOKENIZER_DIRNAME)),
            ((0.0, 0.85), (0.85, 1.0))):        # shares by size: ~7.8 GB vs ~1.4 GB
        local_dir = Path(model_path) / dirname if model_path else None
        progress(share[0], f"downloading {repo}@{rev[:8]}")
        try:
            path = snapshot_download(repo, revision=rev, local_dir=local_dir, allow_patterns=list(patterns),
                                     tqdm_class=_progress_tqdm(progress, f"downloading {repo}", share))
        except Exception as exc:  # noqa: BLE001 (network, auth, disk: all mean "not available")
            raise ModelUnavailableError(f"could not download {repo}@{rev}: {exc}. {_HOW_TO_GET}") from exc
        out.append(Path(path))
    progress(1.0, "download complete")
    return CheckpointPaths(out[0], out[1], "download")


def resolve_checkpoint(model_path: str | os.PathLike | None = None, *, download: bool = False,
                       progress: Progress | None = None, official_sizes: bool = False) -> CheckpointPaths:
    """Find (or, with ``download=True``, fetch) and verify a checkpoint.

    Raises ModelUnavailableError when nothing is found (so ``load_engine("auto")`` falls back to the lite
    engine) and CheckpointError when the folders exist but are incomplete or corrupt.
    """
    paths = find_checkpoint(model_path)
    if paths is None and download:
        paths = download_checkpoint(model_path, progress=progress)
    if paths is None:
        where = (f"{model_path} has no {EDITX_DIRNAME}/ and {TOKENIZER_DIRNAME}/ folders" if model_path
                 else f"no model_path, no ${MODEL_PATH_ENV}, and nothing in the Hugging Face cache")
        raise ModelUnavailableError(f"Step-Audio-EditX weights not found: {where}. {_HOW_TO_GET}")
    verify_checkpoint(paths, official_sizes=official_sizes)
    return paths
