"""StepAudioTokenizer: prompt audio -> the dual-codebook token stream the LLM reads (vq02 + vq06, interleaved 2:3).

    audio (any rate) -> 16 kHz, energy norm, trim_silence (audio.prepare_for_tokenizer)
        -> vq02 (16.67 Hz, 1024 codes) and vq06 (25 Hz, 4096 codes)
        -> 2 vq02 + 3 vq06 per 120 ms group (tokens.interleave_vq0206), 41.67 tokens/s

Folder layout of ``stepfun-ai/Step-Audio-Tokenizer`` (:meth:`StepAudioTokenizer.from_pretrained`)::

    linguistic_tokenizer.npy            (1024, 512) k-means centroids
    speech_tokenizer_v1.onnx            S3 tokenizer v1
    dengcunqin/speech_paraformer-large_asr_nat-zh-cantonese-en-16k-vocab8501-online/
        am.mvn  config.yaml  model.pt   (only encoder.* is used)

The file readers of that folder live here too, so vq02.py stays tensors-in, tensors-out.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import yaml

from ..audio import TOKENIZER_SAMPLE_RATE, check_audio, energy_norm, resample, trim_silence
from ..errors import CheckpointError
from ..tokens import GROUP_SIZE, interleave_vq0206, to_llm_ids, tokens_to_str
from .vq02 import ENCODER_PREFIX, EncoderConfig, FrontendConfig, Vq02Tokenizer, build_encoder
from .vq06 import Vq06Tokenizer

FUNASR_MODEL_ID = "dengcunqin/speech_paraformer-large_asr_nat-zh-cantonese-en-16k-vocab8501-online"
CENTROIDS_FILE = "linguistic_tokenizer.npy"
VQ06_FILE = "speech_tokenizer_v1.onnx"
PARAFORMER_FILES = ("am.mvn", "config.yaml", "model.pt")
FINGERPRINT_VERSION = 1      # bump when preprocessing changes the codes of the same weights (e.g. trimming)


# ------------------------------------------------------------------------------- Paraformer folder

def load_paraformer_config(path: str | Path) -> tuple[FrontendConfig, EncoderConfig]:
    """Read ``config.yaml`` as data (no class instantiation) into the two configs."""
    try:
        cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CheckpointError(f"cannot read Paraformer config {path}: {exc}") from exc
    fe, enc = dict(cfg.get("frontend_conf") or {}), dict(cfg.get("encoder_conf") or {})
    if cfg.get("encoder", "SANMEncoderChunkOpt") != "SANMEncoderChunkOpt" or \
            enc.get("input_layer", "pe_online") != "pe_online" or \
            enc.get("selfattention_layer_type", "sanm") != "sanm" or not enc.get("normalize_before", True):
        raise CheckpointError(f"{path}: not a SANMEncoderChunkOpt with pe_online input and pre-norm SANM layers")
    fields = FrontendConfig.__dataclass_fields__
    frontend = FrontendConfig(**{k: type(fields[k].default)(v) for k, v in fe.items() if k in fields})
    input_size = int(cfg.get("input_size") or frontend.n_mels * frontend.lfr_m)
    fields = EncoderConfig.__dataclass_fields__
    encoder = EncoderConfig(input_size=input_size,
                            **{k: int(v) for k, v in enc.items() if k in fields and k != "input_size"})
    return frontend, encoder


def load_cmvn(path: str | Path) -> torch.Tensor:
    """Kaldi nnet text ``am.mvn`` -> (2, D) float32: row 0 the ``<AddShift>`` (-mean), row 1 the ``<Rescale>``."""
    try:
        tokens = Path(path).read_text(encoding="utf-8").split()
    except OSError as exc:
        raise CheckpointError(f"cannot read CMVN file {path}: {exc}") from exc
    rows = []
    for tag in ("<AddShift>", "<Rescale>"):
        try:
            i = tokens.index("[", tokens.index(tag)) + 1
            j = tokens.index("]", i)
        except ValueError as exc:
            raise CheckpointError(f"{path}: no {tag} vector") from exc
        rows.append(np.asarray([float(t) for t in tokens[i:j]], dtype=np.float64).astype(np.float32))
    if len(rows[0]) != len(rows[1]):
        raise CheckpointError(f"{path}: <AddShift> and <Rescale> sizes differ")
    return torch.from_numpy(np.stack(rows))



def encoder_state_dict(model_pt: str | Path) -> dict[str, torch.Tensor]:
    """The ``encoder.*`` tensors of a FunASR ``model.pt`` (weights_only), prefix removed."""
    try:
        try:
            sd = torch.load(str(model_pt), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:                                 # legacy (non-zip) pickles cannot be mmapped
            sd = torch.load(str(model_pt), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot load {model_pt} with weights_only=True: {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise CheckpointError(f"{model_pt} does not hold a state dict")
    return {k[len(ENCODER_PREFIX):]: v for k, v in sd.items() if k.startswith(ENCODER_PREFIX)}



def load_vq02(paraformer_dir: str | Path, centroids_npy: str | Path, *, dither: float | None = 0.0,
              device: str | torch.device = "cpu") -> Vq02Tokenizer:
    """Build from the Paraformer folder (config.yaml, am.mvn, model.pt) and ``linguistic_tokenizer.npy``.

    ``dither=None`` uses the front end's own (official) value.
    """
    folder = Path(paraformer_dir)
    frontend, enc_cfg = load_paraformer_config(folder / "config.yaml")
    try:
        centroids = torch.from_numpy(np.load(str(centroids_npy)).astype(np.float32))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read k-means centroids {centroids_npy}: {exc}") from exc
    encoder = build_encoder(enc_cfg, encoder_state_dict(folder / "model.pt"))
    tok = Vq02Tokenizer(encoder, load_cmvn(folder / "am.mvn"), centroids, frontend,
                        dither=frontend.dither if dither is None else dither)
    return tok.to(device)


@dataclass(frozen=True)
class AudioTokens:
    """Tokens of one prompt. ``tokens`` are in prompt-token space (vq02 code, or 1024 + vq06 code)."""
    vq02: tuple[int, ...]
    vq06: tuple[int, ...]
    tokens: tuple[int, ...]
    num_samples: int                       # the (trimmed) 16 kHz waveform that was tokenized
    sample_rate: int = TOKENIZER_SAMPLE_RATE

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    @property
    def groups(self) -> int:
        return len(self.tokens) // GROUP_SIZE

    @property
    def llm_ids(self) -> list[int]:
        return to_llm_ids(self.tokens)

    @property
    def token_str(self) -> str:
        """The official ``"<audio_N>..."`` string (merge_vq0206_to_token_str)."""
        return tokens_to_str(self.tokens)


class StepAudioTokenizer:
    """Both codebooks behind one call. Usable on CPU; ``tokenize_batch`` runs all vq02 encoders at once.

    ``dither`` of the vq02 front end is 0 unless the tokenizer was built with another value; with a
    positive dither, pass ``seed`` for reproducible codes.
    """

    def __init__(self, vq02: Vq02Tokenizer, vq06: Vq06Tokenizer):
        self.vq02, self.vq06 = vq02, vq06
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        """``stepaudio-tok<version>:<16 hex>``: SHA-256 of everything that decides the codes (vq02 encoder
        weights, CMVN, centroids and front-end settings; the vq06 ONNX file and its split mode), computed once.
        Voices cache their prompt tokens under it, so tokens from other weights are never reused."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for name, t in [*self.vq02.named_parameters(), *self.vq02.named_buffers()]:
                data = t.detach().to("cpu").contiguous()
                h.update(f"{name}:{tuple(data.shape)}:{data.dtype}".encode())
                h.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
            h.update(repr((self.vq02.frontend, self.vq02.stream, self.vq02.dither)).encode())
            h.update(repr((self.vq06.split, self.vq06.n_mels)).encode())
            with open(self.vq06.onnx_path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            self._fingerprint = f"stepaudio-tok{FINGERPRINT_VERSION}:{h.hexdigest()[:16]}"
        return self._fingerprint

    @classmethod
    def from_pretrained(cls, folder: str | Path, *, device: str | torch.device = "cpu",
                        dither: float | None = 0.0, vq06_providers: list[str] | None = None,
                        vq06_threads: int | None = None, long_audio_split: str = "quiet",
                        funasr_model_id: str = FUNASR_MODEL_ID) -> "StepAudioTokenizer":
        """Load the official Step-Audio-Tokenizer folder (or a parent holding ``Step-Audio-Tokenizer/``).

        ``dither=None`` uses the official front-end dither (1.0, random codes); ``long_audio_split`` is
        ``"quiet"`` or ``"official"`` (see :mod:`stepedit_core.tokenizer.vq06`).
        """
        root = Path(folder)
        if not (root / CENTROIDS_FILE).exists() and (root / "Step-Audio-Tokenizer").is_dir():
            root = root / "Step-Audio-Tokenizer"
        para = root / funasr_model_id
        needed = [root / CENTROIDS_FILE, root / VQ06_FILE, *(para / f for f in PARAFORMER_FILES)]
        missing = [str(p.relative_to(root)) for p in needed if not p.is_file()]
        if missing:
            raise CheckpointError(f"incomplete Step-Audio-Tokenizer folder {root}", missing=missing)
        vq02 = load_vq02(para, root / CENTROIDS_FILE, dither=dither, device=device)
        vq06 = Vq06Tokenizer(root / VQ06_FILE, providers=vq06_providers, intra_op_threads=vq06_threads,
                             split=long_audio_split)
        return cls(vq02, vq06)

    @staticmethod
    def preprocess(wav: np.ndarray | torch.Tensor, sample_rate: int, trim: bool = True) -> np.ndarray:
        """Official ``preprocess_wav``: mono, 16 kHz (Resample transform), energy norm, trim_silence -> (N,).

        Any input rate is accepted (the official code asserts >= 16 kHz)."""
        if isinstance(wav, torch.Tensor):
            wav = wav.detach().cpu().float().numpy()
        wav16 = energy_norm(resample(check_audio(wav, sample_rate), int(sample_rate), TOKENIZER_SAMPLE_RATE,
                                     kernel="transform"))
        return trim_silence(wav16) if trim else wav16

    def tokenize(self, wav: np.ndarray | torch.Tensor, sample_rate: int, *, seed: int | None = None,
                 preprocess: bool = True, trim: bool = True) -> AudioTokens:
        return self.tokenize_batch([(wav, sample_rate)], seed=seed, preprocess=preprocess, trim=trim)[0]

    def tokenize_batch(self, items: Sequence[tuple[np.ndarray | torch.Tensor, int]], *,
                       seed: int | None = None, preprocess: bool = True, trim: bool = True) -> list[AudioTokens]:
        """One :class:`AudioTokens` per (waveform, sample rate), as the official ``wav2token``.

        ``preprocess=False`` takes waveforms that are already preprocessed 16 kHz audio."""
        if preprocess:
            wavs = [self.preprocess(w, sr, trim) for w, sr in items]
        else:
            if any(int(sr) != TOKENIZER_SAMPLE_RATE for _, sr in items):
                raise ValueError("preprocess=False needs 16 kHz waveforms")
            wavs = [np.asarray(w.detach().cpu() if isinstance(w, torch.Tensor) else w, np.float32).reshape(-1)
                    for w, _ in items]
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        codes02 = self.vq02([torch.from_numpy(w) for w in wavs], gen)
        out = []
        for w, c02 in zip(wavs, codes02):
            v02, v06 = tuple(int(c) for c in c02), tuple(int(c) for c in self.vq06(w))
            out.append(AudioTokens(v02, v06, tuple(interleave_vq0206(v02, v06)), num_samples=len(w)))
        return out

    def __call__(self, wav: np.ndarray | torch.Tensor, sample_rate: int) -> str:
        """The official ``StepAudioTokenizer.__call__``: the ``<audio_N>`` string, **without** trimming
        (as official; the edit/clone path uses :meth:`tokenize`, which trims like ``wav2token``)."""
        return self.tokenize(wav, sample_rate, trim=False).token_str
