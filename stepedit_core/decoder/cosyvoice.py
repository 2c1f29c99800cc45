"""The ``CosyVoice-300M-25Hz`` folder: read cosyvoice.yaml as data, load flow.pt / hift.pt strictly, token2wav.

cosyvoice.yaml is hyperpyyaml: ``!new:pkg.Class`` builds an object, ``!name:`` a partial, ``!apply:`` calls a
function, ``!ref <key>`` points at another entry. Executing it would import and run the official code, so
:func:`read_cosyvoice_yaml` parses every tag into an inert :class:`Tagged` node; the ``flow`` and ``hift``
nodes are then turned into our config dataclasses (unknown classes or arguments raise CheckpointError).

:class:`CosyVoiceDecoder` is the decoder facade (the official ``CosyVoice`` + ``token2wav_nonstream``,
the official token2wav): mixed 2+3 tokens -> ``_reshape`` rows -> flow mel -> HiFT 24 kHz waveform.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
import yaml

from ..errors import CheckpointError, ModelUnavailableError
from .bigvgan import BigVGAN, BigVGANConfig, is_bigvgan_block, load_bigvgan
from .flow import DEFAULT_NOISE_SEED, CausalMaskedDiffWithXvec, DiTConfig, FlowConfig, flow_rows
from .flow_encoder import EncoderConfig
from .hift import HiFTConfig, HiFTGenerator, load_hift
from .rows import token2wav_rows
from .streaming import Token2WavStream

YAML_NAME, FLOW_NAME, HIFT_NAME, CAMPPLUS_NAME = "cosyvoice.yaml", "flow.pt", "hift.pt", "campplus.onnx"
DEFAULT_HIFT_SEED = 0
OUTPUT_SAMPLE_RATE = 24000
# expected classes of the flow sub-modules (last component of the ``!new:`` target)
FLOW_CLASSES = {"flow": "CausalMaskedDiffWithXvec", "input_embedding": "DualCodebookEmbedding",
                "encoder": "UpsampleConformerEncoderV2", "decoder": "CausalConditionalCFM", "estimator": "DiT"}


# -- cosyvoice.yaml as data ----------------------------------------------------------------------------
@dataclass
class Tagged:
    """An unexecuted hyperpyyaml node: ``tag`` ("!new:" / "!name:" / "!apply:" / "!ref" / ...), ``target``
    (e.g. "stepvocoder.cosyvoice2.flow.flow.CausalMaskedDiffWithXvec") and its arguments."""
    tag: str
    target: str
    kwargs: dict
    args: list

    @property
    def class_name(self) -> str:
        return self.target.rsplit(".", 1)[-1]


class _InertLoader(yaml.SafeLoader):
    """SafeLoader that turns every ``!tag`` into a Tagged node instead of refusing or executing it."""


def _construct_tagged(loader: _InertLoader, suffix: str, node: yaml.Node) -> Tagged:
    tag, _, target = ("!" + suffix).partition(":")
    tag = tag + (":" if _ else "")
    if isinstance(node, yaml.MappingNode):
        return Tagged(tag, target, loader.construct_mapping(node, deep=True), [])
    if isinstance(node, yaml.SequenceNode):
        return Tagged(tag, target, {}, loader.construct_sequence(node, deep=True))
    value = loader.construct_scalar(node)
    return Tagged(tag, target, {}, [value] if value != "" else [])


_InertLoader.add_multi_constructor("!", _construct_tagged)
_REF = re.compile(r"<([^<>]+)>")


def read_cosyvoice_yaml(path: str | Path) -> dict:
    """Parse cosyvoice.yaml without executing anything; ``!ref <key>`` entries are resolved to the values."""
    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_InertLoader)
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a mapping")

    def lookup(expr: str, depth: int):
        node: Any = data
        for part in re.split(r"[.\[\]]+", expr.strip()):
            if part:
                if not isinstance(node, dict) or part not in node:
                    raise CheckpointError(f"{path}: !ref <{expr}> points at nothing")
                node = node[part]
        return resolve(node, depth + 1)

    def resolve(node, depth: int = 0):
        if depth > 50:
            raise CheckpointError(f"{path}: !ref cycle")
        if isinstance(node, Tagged) and node.tag == "!ref":
            text = str(node.args[0]) if node.args else ""
            whole = _REF.fullmatch(text.strip())
            if whole:
                return lookup(whole.group(1), depth)
            return _REF.sub(lambda m: str(lookup(m.group(1), depth)), text)
        if isinstance(node, Tagged):
            return Tagged(node.tag, node.target, {k: resolve(v, depth) for k, v in node.kwargs.items()},
                          [resolve(v, depth) for v in node.args])
        if isinstance(node, dict):
            return {k: resolve(v, depth) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v, depth) for v in node]
        return node

    return resolve(data)


def _plain(node) -> dict:
    """A Tagged ``!new:`` node -> {"class": name, **kwargs}, recursively (the fixture config.json style)."""
    if isinstance(node, Tagged):
        return {"class": node.class_name, **{k: _plain(v) if isinstance(v, Tagged) else v
                                             for k, v in node.kwargs.items()}}
    return node


def _expect(block: Mapping, role: str) -> dict:
    block = dict(block)
    name = block.pop("class", FLOW_CLASSES[role])
    if name != FLOW_CLASSES[role]:
        raise ModelUnavailableError(f"cosyvoice.yaml {role} is {name!r}; only {FLOW_CLASSES[role]} is implemented")
    return block


def _build(cls, block: Mapping, what: str):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(block) - known)
    if unknown:
        raise CheckpointError(f"unsupported {what} arguments in cosyvoice.yaml: {unknown}")
    try:
        return cls(**block)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"bad {what} config: {exc}") from exc


def flow_config_from_dict(cfg: Mapping) -> FlowConfig:
    """FlowConfig from either the nested yaml ``flow`` block (input_embedding / encoder / decoder.estimator
    inside it) or the flat fixture / manifest layout (flow, input_embedding, encoder, decoder, estimator)."""
    cfg = _plain(cfg)
    if "flow" in cfg:                                         # flat layout
        flow = dict(cfg["flow"])
        emb, enc, dec = cfg.get("input_embedding", {}), cfg["encoder"], dict(cfg.get("decoder", {}))
        est = cfg.get("estimator") or dec.pop("estimator")
        n_timesteps = cfg.get("n_timesteps")
    else:                                                     # the yaml ``flow:`` node itself
        flow = dict(cfg)
        emb, enc, dec = flow.pop("input_embedding", {}), flow.pop("encoder"), dict(flow.pop("decoder"))
        est, n_timesteps = dec.pop("estimator"), None
    flow = _expect(flow, "flow")
    dec = _expect(dec, "decoder")
    dec.pop("estimator", None)
    emb = _expect(emb, "input_embedding")
    if emb.get("vocab_size", flow.get("vocab_size")) != flow.get("vocab_size", emb.get("vocab_size")):
        raise CheckpointError("input_embedding vocab_size differs from flow vocab_size")
    extra = {k: v for k, v in dec.items() if k != "inference_cfg_rate"}
    if extra:
        raise CheckpointError(f"unsupported decoder arguments in cosyvoice.yaml: {sorted(extra)}")
    out = _build(FlowConfig, {**flow, "embedding_input_size": emb.get("input_size", flow.get("input_size", 512)),
                              "encoder": _build(EncoderConfig, _expect(enc, "encoder"), "encoder"),
                              "estimator": _build(DiTConfig, _expect(est, "estimator"), "estimator"),
                              **({"inference_cfg_rate": dec["inference_cfg_rate"]}
                                 if "inference_cfg_rate" in dec else {}),
                              **({"n_timesteps": int(n_timesteps)} if n_timesteps else {})}, "flow")
    if out.output_type != "mel":
        raise CheckpointError(f"flow output_type {out.output_type!r} is not supported")
    return out


def vocoder_config_from_dict(block: Mapping) -> HiFTConfig | BigVGANConfig:
    """The ``hift:`` block as a config: BigVGANConfig when it names BigVGAN, else HiFTConfig."""
    return BigVGANConfig.from_dict(block) if is_bigvgan_block(block) else HiFTConfig.from_dict(block)


def load_vocoder(state_dict: Mapping[str, torch.Tensor], config: HiFTConfig | BigVGANConfig, *,
                 device="cpu") -> HiFTGenerator | BigVGAN:
    """hift.pt -> the vocoder its config describes (strict keys, weight norm folded, eval mode)."""
    if isinstance(config, BigVGANConfig):
        return load_bigvgan(state_dict, config, device=device)
    return load_hift(state_dict, config, device=device)


def read_configs(folder: str | Path) -> tuple[FlowConfig, HiFTConfig | BigVGANConfig]:
    """The flow and vocoder (HiFT or BigVGAN) configs of a CosyVoice-300M-25Hz folder, from its cosyvoice.yaml."""
    data = read_cosyvoice_yaml(Path(folder) / YAML_NAME)
    for key in ("flow", "hift"):
        if not isinstance(data.get(key), Tagged):
            raise CheckpointError(f"{folder}/{YAML_NAME} has no `{key}: !new:...` entry")
    return flow_config_from_dict(data["flow"]), vocoder_config_from_dict(_plain(data["hift"]))


# -- weights -----------------------------------------------------------------------------------------
def check_layout(found: Mapping[str, Sequence[int]], expected: Mapping[str, Sequence[int]], what: str) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(f"{k} {tuple(found[k])} != {tuple(expected[k])}" for k in set(found) & set(expected)
                        if tuple(found[k]) != tuple(expected[k]))
    if missing or unexpected or mismatched:
        raise CheckpointError(f"{what} does not match", missing=missing, unexpected=unexpected,
                              mismatched=mismatched)


def manifest_layout(manifest: Mapping | str | Path) -> dict[str, tuple[int, ...]]:
    """Key -> shape from a manifest JSON (``tensors: [{key, shape}]``, e.g. manifests/flow_pt.json)."""
    if not isinstance(manifest, Mapping):
        manifest = json.loads(Path(manifest).read_text())
    return {t["key"]: tuple(t["shape"]) for t in manifest["tensors"]}


def load_flow(state_dict: Mapping[str, torch.Tensor], config: FlowConfig, *, device="cpu") -> CausalMaskedDiffWithXvec:
    """Build on the meta device, check keys and shapes strictly, then assign the tensors (fp32, eval)."""
    with torch.device("meta"):
        model = CausalMaskedDiffWithXvec(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_layout({k: tuple(v.shape) for k, v in state_dict.items()}, expected, "flow state dict")
    model.load_state_dict({k: v.to(device=device, dtype=torch.float32) for k, v in state_dict.items()},
                          strict=True, assign=True)
    return model.requires_grad_(False).eval()


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelUnavailableError(f"{path} is missing")
    try:
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:     # legacy (non-zip) serialization cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:    # noqa: BLE001 - any unpickling failure is a bad checkpoint
        raise CheckpointError(f"{path} cannot be read as a plain state dict: {exc}") from exc
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path} is not a state dict of tensors")
    return sd


# -- the decoder facade ------------------------------------------------------------------------------
def align_prompt_feat(prompt_feat: torch.Tensor, prompt_rows: int, up_rate: int = 2) -> torch.Tensor:
    """(1, T_mel, 80) -> (1, up_rate·prompt_rows, 80) by nearest interpolation (official ``token2wav``)."""
    return F.interpolate(prompt_feat.transpose(1, 2), size=up_rate * prompt_rows, mode="nearest").transpose(1, 2)


class CosyVoiceDecoder:
    """flow + HiFT in fp32 (+ the prompt front end when stepedit_core.decoder.features / speaker are present)."""

    def __init__(self, flow: CausalMaskedDiffWithXvec, hift: HiFTGenerator | BigVGAN, *, n_timesteps: int | None = None,
                 bf16_roundtrip: bool = True, frontend=None, device="cpu"):
        self.flow, self.hift, self.frontend = flow, hift, frontend
        self.n_timesteps = n_timesteps or flow.cfg.n_timesteps
        self.bf16_roundtrip = bf16_roundtrip     # official tts.py rounds prompt mel and x-vector through bf16
        self.device = torch.device(device)

    @classmethod
    def from_pretrained(cls, folder: str | Path, device="cpu", *, n_timesteps: int | None = None,
                        bf16_roundtrip: bool = True, flow_manifest: Mapping | str | Path | None = None,
                        hift_manifest: Mapping | str | Path | None = None) -> "CosyVoiceDecoder":
        """Load a CosyVoice-300M-25Hz folder (cosyvoice.yaml, flow.pt, hift.pt, optional campplus.onnx).
        Keys and shapes are checked strictly against the modules the yaml describes, and also against the
        manifests when given (manifests/flow_pt.json: the 605 real tensors; hift_pt.json: 328)."""
        folder = Path(folder)
        flow_cfg, hift_cfg = read_configs(folder)
        flow_sd, hift_sd = _torch_load(folder / FLOW_NAME), _torch_load(folder / HIFT_NAME)
        for sd, manifest, name in ((flow_sd, flow_manifest, FLOW_NAME), (hift_sd, hift_manifest, HIFT_NAME)):
            if manifest is not None:
                check_layout({k: tuple(v.shape) for k, v in sd.items()}, manifest_layout(manifest),
                             f"{folder}/{name} vs manifest")
        flow = load_flow(flow_sd, flow_cfg, device=device)
        hift = load_vocoder(hift_sd, hift_cfg, device=device)
        return cls(flow, hift.eval(), n_timesteps=n_timesteps, bf16_roundtrip=bf16_roundtrip,
                   frontend=_load_frontend(folder, device), device=device)

    def prepare(self, token, prompt_token, prompt_feat: torch.Tensor, embedding: torch.Tensor):
        """Official input preparation: ``_reshape`` both streams, bf16 round-trip (optional), align the mel."""
        token, prompt = flow_rows(token).to(self.device), flow_rows(prompt_token).to(self.device)
        feat, emb = prompt_feat.float(), embedding.float().reshape(1, -1)
        if self.bf16_roundtrip:
            feat, emb = feat.to(torch.bfloat16).float(), emb.to(torch.bfloat16).float()
        feat = align_prompt_feat(feat.to(self.device), prompt.shape[1], self.flow.up_rate)
        return token, prompt, feat, emb.to(self.device)

    @torch.inference_mode()
    def token2mel(self, token, prompt_token, prompt_feat, embedding, *, n_timesteps: int | None = None,
                  flow_noise: torch.Tensor | None = None, flow_seed: int = DEFAULT_NOISE_SEED,
                  trace: dict | None = None) -> torch.Tensor:
        """Mixed tokens -> generated mel (1, 80, 2T)."""
        token, prompt, feat, emb = self.prepare(token, prompt_token, prompt_feat, embedding)
        return self.flow.inference(token, prompt, feat, emb, n_timesteps=n_timesteps or self.n_timesteps,
                                   noise=flow_noise, seed=flow_seed, trace=trace)

    @torch.inference_mode()
    def token2wav(self, token, prompt_token, prompt_feat, embedding, *, n_timesteps: int | None = None,
                  flow_noise: torch.Tensor | None = None, flow_seed: int = DEFAULT_NOISE_SEED,
                  hift_seed: int | None = DEFAULT_HIFT_SEED, hift_rand_ini: torch.Tensor | None = None,
                  hift_noise: torch.Tensor | None = None, trace: dict | None = None) -> torch.Tensor:
        """``token2wav_nonstream``: token (1, N) generated and prompt_token (1, Np) mixed ids in prompt-token
        space (LLM id - 65536), prompt_feat (1, T_mel, 80) prompt mel, embedding (1, 192) x-vector.
        Returns (1, 480·2T) float32 at 24 kHz on the CPU. Flow noise: ``flow_noise`` buffer or ``flow_seed``;
        HiFT NSF draws: ``hift_rand_ini`` / ``hift_noise`` or a generator seeded with ``hift_seed``
        (None = unseeded, as official)."""
        mel = self.token2mel(token, prompt_token, prompt_feat, embedding, n_timesteps=n_timesteps,
                             flow_noise=flow_noise, flow_seed=flow_seed, trace=trace)
        if trace is not None:
            trace["mel"] = mel
        gen = torch.Generator(device=self.device)
        gen.seed() if hift_seed is None else gen.manual_seed(hift_seed)
        wav, _ = self.hift.inference(mel, rand_ini=hift_rand_ini, noise=hift_noise, generator=gen)
        return wav.float().cpu()

    def token2wav_rows(self, tokens, prompt_token, prompt_feat, embedding, *, flow_seeds, hift_seeds,
                       n_timesteps: int | None = None) -> list[torch.Tensor]:
        """``token2wav`` of several token streams with one prompt, the flow's solver run once for all of them;
        row i is ``token2wav(tokens[i], ..., flow_seed=flow_seeds[i], hift_seed=hift_seeds[i])``
        (stepedit_core.decoder.rows)."""
        return token2wav_rows(self, tokens, prompt_token, prompt_feat, embedding, flow_seeds=flow_seeds,
                              hift_seeds=hift_seeds, n_timesteps=n_timesteps)

    def stream(self, prompt_token, prompt_feat, embedding, **options):
        """A streaming session (stepedit_core.decoder.streaming.Token2WavStream) for this prompt."""
        return Token2WavStream(self, prompt_token, prompt_feat, embedding, **options)

    def prompt_features(self, wav, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt mel (1, T, 80) and CAM++ x-vector (1, 192) of a clip (needs the front-end modules)."""
        if self.frontend is None:
            raise ModelUnavailableError("the prompt front end (stepedit_core.decoder.features / speaker, "
                                        "campplus.onnx) is not available")
        return self.frontend(wav, sample_rate)


def _load_frontend(folder: Path, device):
    """Prompt front end (stepedit_core.decoder.features + speaker): (wav, sr) -> (prompt mel, CAM++ x-vector), or None
    when campplus.onnx is absent. The caller applies the peak cap first (GH:tts.py)."""
    if not (folder / CAMPPLUS_NAME).is_file():
        return None
    from . import features, speaker
    campplus = speaker.load_campplus(folder / CAMPPLUS_NAME)

    def frontend(wav, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
        w = torch.as_tensor(wav, dtype=torch.float32).reshape(1, -1)
        feat = features.extract_speech_feat(w, sample_rate)                  # (1, T, 80) at 24 kHz
        emb = campplus.embed_features(features.extract_spk_feat(w, sample_rate))   # (1, 192)
        return feat, emb

    return frontend
