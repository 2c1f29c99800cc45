"""BigVGAN vocoder: 80-bin mel at 50 Hz -> 24 kHz waveform, when cosyvoice.yaml asks for it.

The shipped Step-Audio-EditX config uses HiFT (hift.py); the official wrapper (GH:cli/cosyvoice.py) also accepts
``hift: !new:stepvocoder.cosyvoice2.bigvgan.bigvgan.BigVGAN`` (GH:bigvgan/bigvgan.py, the NVIDIA BigVGAN-v2 layout).
This module is that generator, built from the yaml arguments (:class:`BigVGANConfig`).

Pipeline for a mel ``(B, 80, T)``:
  reflect-pad 3 frames each side (the wrapper does it; ``conv_pre`` has no padding)  ->  (B, 80, T + 6)
  conv_pre k7  ->  (B, C0, T)
  per stage i: ConvTranspose1d ×u_i (no activation before it)  ->  mean of the AMP blocks
  anti-aliased Snake(Beta)  ->  conv_post k7 -> 1 channel  ->  clamp to ±1 (or tanh)  ->  (B, T·prod(u)).
With upsample_rates [5, 4, 3, 2, 2, 2] one frame gives 480 samples, as with HiFT.

AMP block = residual units of (anti-aliased activation -> dilated conv [-> activation -> conv]). The anti-aliased
activation (official ``Activation1d``) runs the Snake at twice the rate: ×2 upsampling by a transposed conv with
a Kaiser-windowed sinc low-pass, the Snake, then the same low-pass and ÷2 decimation. Both filters are persistent
buffers of the official module, so they are checkpoint keys (``...upsample.filter``, ``...downsample.lowpass.filter``)
and are loaded from it.

The official convs use the legacy ``torch.nn.utils.weight_norm`` (keys ``X.weight_g`` / ``X.weight_v``); the
module here is built folded and :func:`load_bigvgan` folds the pairs with ``weight_norm.load_weight_normed``.
BigVGAN draws no noise: the ``generator`` / NSF arguments of the HiFT call are accepted and ignored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Mapping, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CheckpointError, InvalidInputError, ModelUnavailableError
from .weight_norm import load_weight_normed, weight_norm_layout, weight_normed_modules

SNAKE_EPS = 1e-9                  # GH:bigvgan/activations.py no_div_by_zero
MEL_CONTEXT_FRAMES = 3            # GH:cli/cosyvoice.py: F.pad(mel, (3, 3), "reflect") before BigVGAN (k7, pad 0)
CONV_PRE_KERNEL = 7               # GH:bigvgan.py conv_pre Conv1d(num_mels, C0, 7, padding=0)
CONV_POST_KERNEL = 7              # conv_post Conv1d(C_last, 1, 7, padding=3)
AA_RATIO = 2                      # Activation1d default up_ratio = down_ratio
AA_KERNEL = 12                    # Activation1d default up/down kernel sizes
AA_HALF_WIDTH = 0.6               # low-pass transition half-width before ÷ratio (GH:alias_free_activation/torch)
OUTPUT_LIMIT = 1.0                # non-tanh output is clamped to [-1, 1]
# Kaiser's empirical design rule (as in julius.lowpass / alias-free-torch): attenuation A (dB) -> window beta.
KAISER_A_SLOPE, KAISER_A_OFFSET = 2.285, 7.95
KAISER_HIGH_A, KAISER_LOW_A = 50.0, 21.0
VOCODER_CLASS = "BigVGAN"


@dataclass
class BigVGANConfig:
    """Arguments of the official ``BigVGAN(...)``; defaults are its signature defaults (24 kHz, 480 per frame)."""
    num_mels: int = 80
    upsample_initial_channel: int = 512
    upsample_rates: tuple = (5, 4, 3, 2, 2, 2)
    upsample_kernel_sizes: tuple = (11, 8, 7, 4, 4, 4)
    resblock: str = "1"                       # "1": AMPBlock1 (convs1 + convs2), "2": AMPBlock2 (convs only)
    resblock_kernel_sizes: tuple = (3, 7, 11)
    resblock_dilation_sizes: tuple = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    activation: str = "snakebeta"             # "snake" or "snakebeta"
    snake_logscale: bool = True               # alpha (and beta) stored as logs
    use_bias_at_final: bool = False           # conv_post has a bias
    use_tanh_at_final: bool = False           # tanh instead of the ±1 clamp
    use_cuda_kernel: bool = False             # the fused CUDA Activation1d; same maths, ignored here

    def __post_init__(self):
        for name in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))
        self.resblock_dilation_sizes = tuple(tuple(int(d) for d in ds) for ds in self.resblock_dilation_sizes)
        self.resblock = str(self.resblock)
        if self.resblock not in ("1", "2"):
            raise ValueError(f"resblock must be '1' or '2', got {self.resblock!r}")
        if self.activation not in ("snake", "snakebeta"):
            raise ValueError(f"activation must be 'snake' or 'snakebeta', got {self.activation!r}")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if self.upsample_initial_channel >> len(self.upsample_rates) < 1:
            raise ValueError("upsample_initial_channel is too small for the number of upsampling stages")

    @property
    def samples_per_frame(self) -> int:
        """Waveform samples per mel frame: prod(upsample_rates) (480 at the default)."""
        return math.prod(self.upsample_rates)

    @classmethod
    def from_dict(cls, block: Mapping) -> "BigVGANConfig":
        """From the cosyvoice.yaml ``hift: !new:...BigVGAN`` arguments (``class`` entry optional).

        Another class raises ModelUnavailableError; unknown or bad arguments raise CheckpointError."""
        block = dict(block)
        name = str(block.pop("class", VOCODER_CLASS)).rsplit(".", 1)[-1]
        if name != VOCODER_CLASS:
            raise ModelUnavailableError(f"vocoder class {name!r} is not BigVGAN")
        unknown = sorted(set(block) - {f.name for f in fields(cls)})
        if unknown:
            raise CheckpointError(f"unknown BigVGAN config entries: {unknown}")
        try:
            return cls(**block)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"bad BigVGAN config: {exc}") from exc


def is_bigvgan_block(block: Mapping) -> bool:
    """True when a plain vocoder block (``{"class": ..., ...}``) names the BigVGAN class."""
    return str(block.get("class", "")).rsplit(".", 1)[-1] == VOCODER_CLASS


# -- anti-aliased activation ----------------------------------------------------------------------------
def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass, unit DC gain: (1, 1, kernel_size) float32.

    ``cutoff`` and ``half_width`` are in cycles per sample (0.25 and 0.3 for the ×2 resampler). Taps sit at
    half-integer times for an even kernel (the filter is centred between two samples), integers for odd."""
    half = kernel_size // 2
    attenuation = KAISER_A_SLOPE * (half - 1) * math.pi * (4 * half_width) + KAISER_A_OFFSET   # dB
    if attenuation > KAISER_HIGH_A:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= KAISER_LOW_A:
        beta = 0.5842 * (attenuation - KAISER_LOW_A) ** 0.4 + 0.07886 * (attenuation - KAISER_LOW_A)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, periodic=False, beta=beta)
    t = torch.arange(kernel_size) - half + (0.5 if kernel_size % 2 == 0 else 0.0)
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * t)
    return (taps / taps.sum()).view(1, 1, kernel_size)


class UpSample1d(nn.Module):
    """×ratio: replicate-pad, zero-stuffing transposed conv with the low-pass (gain ratio), crop. (B,C,T)->(B,C,rT)."""

    def __init__(self, ratio: int = AA_RATIO, kernel_size: int = AA_KERNEL):
        super().__init__()
        self.ratio, self.kernel_size = ratio, kernel_size
        self.pad = kernel_size // ratio - 1                           # input samples replicated on each side
        self.crop_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.crop_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, AA_HALF_WIDTH / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        y = F.conv_transpose1d(x, self.filter.expand(channels, -1, -1), stride=self.ratio, groups=channels)
        return (self.ratio * y)[..., self.crop_left:y.shape[-1] - self.crop_right]


class LowPassFilter1d(nn.Module):
    """Replicate-padded depthwise low-pass with stride (the decimator's filter). (B,C,T)->(B,C,ceil(T/stride))."""

    def __init__(self, ratio: int = AA_RATIO, kernel_size: int = AA_KERNEL):
        super().__init__()
        self.stride = ratio
        self.pad_left = kernel_size // 2 - (1 if kernel_size % 2 == 0 else 0)
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, AA_HALF_WIDTH / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(x.shape[1], -1, -1), stride=self.stride, groups=x.shape[1])


class DownSample1d(nn.Module):
    """÷ratio decimation through ``lowpass`` (kept as a child for the checkpoint key ``downsample.lowpass.filter``)."""

    def __init__(self, ratio: int = AA_RATIO, kernel_size: int = AA_KERNEL):
        super().__init__()
        self.lowpass = LowPassFilter1d(ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class Snake(nn.Module):
    """x + sin²(αx)/(α + 1e-9) per channel; α = exp(param) when logscale. x: (B, C, T)."""

    def __init__(self, channels: int, logscale: bool = True):
        super().__init__()
        self.logscale = logscale
        self.alpha = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        alpha = alpha.exp() if self.logscale else alpha
        return x + (1.0 / (alpha + SNAKE_EPS)) * torch.sin(x * alpha).pow(2)


class SnakeBeta(nn.Module):
    """x + sin²(αx)/(β + 1e-9): α sets the frequency, β the magnitude; both exp(param) when logscale."""

    def __init__(self, channels: int, logscale: bool = True):
        super().__init__()
        self.logscale = logscale
        init = torch.zeros(channels) if logscale else torch.ones(channels)
        self.alpha = nn.Parameter(init.clone())
        self.beta = nn.Parameter(init.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha, beta = self.alpha[None, :, None], self.beta[None, :, None]
        if self.logscale:
            alpha, beta = alpha.exp(), beta.exp()
        return x + (1.0 / (beta + SNAKE_EPS)) * torch.sin(x * alpha).pow(2)


class Activation1d(nn.Module):
    """Anti-aliased activation: ×2 upsample -> Snake(Beta) -> low-pass and ÷2. (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, cfg: BigVGANConfig):
        super().__init__()
        self.upsample = UpSample1d()
        self.act = (SnakeBeta if cfg.activation == "snakebeta" else Snake)(channels, cfg.snake_logscale)
        self.downsample = DownSample1d()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


# -- generator -------------------------------------------------------------------------------------------
def _conv(in_ch: int, out_ch: int, kernel: int, dilation: int = 1) -> nn.Conv1d:
    """'Same'-padded Conv1d whose checkpoint weight is weight-normed (tagged for folding at load time)."""
    conv = nn.Conv1d(in_ch, out_ch, kernel, dilation=dilation, padding=(kernel * dilation - dilation) // 2)
    conv.weight_normed = True
    return conv


class AMPBlock1(nn.Module):
    """Per dilation d: x += conv(act(conv_d(act(x)))); activations interleaved as [a1_0, a2_0, a1_1, ...]."""

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int], cfg: BigVGANConfig):
        super().__init__()
        self.convs1 = nn.ModuleList(_conv(channels, channels, kernel_size, d) for d in dilations)
        self.convs2 = nn.ModuleList(_conv(channels, channels, kernel_size) for _ in dilations)
        self.activations = nn.ModuleList(Activation1d(channels, cfg) for _ in range(2 * len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, self.activations[::2], self.activations[1::2]):
            x = x + c2(a2(c1(a1(x))))
        return x


class AMPBlock2(nn.Module):
    """Per dilation d: x += conv_d(act(x))."""

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int], cfg: BigVGANConfig):
        super().__init__()
        self.convs = nn.ModuleList(_conv(channels, channels, kernel_size, d) for d in dilations)
        self.activations = nn.ModuleList(Activation1d(channels, cfg) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, act in zip(self.convs, self.activations):
            x = x + conv(act(x))
        return x


class BigVGAN(nn.Module):
    """BigVGAN generator with the official key names (``conv_pre``, ``ups.i.0``, ``resblocks``, ``activation_post``,
    ``conv_post``). Weights in folded form; build with :func:`load_bigvgan` to load a checkpoint."""

    def __init__(self, cfg: Optional[BigVGANConfig] = None):
        super().__init__()
        self.cfg = cfg = cfg or BigVGANConfig()
        ch0 = cfg.upsample_initial_channel
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.num_upsamples = len(cfg.upsample_rates)
        self.conv_pre = nn.Conv1d(cfg.num_mels, ch0, CONV_PRE_KERNEL)        # no padding: context comes from
        self.conv_pre.weight_normed = True                                   # the caller's reflect pad
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            up = nn.ConvTranspose1d(ch0 >> i, ch0 >> (i + 1), k, u, padding=(k - u) // 2)   # T -> u·T
            up.weight_normed = True
            self.ups.append(nn.ModuleList([up]))                              # keys ups.{i}.0.*
        block = AMPBlock1 if cfg.resblock == "1" else AMPBlock2
        self.resblocks = nn.ModuleList(
            block(ch0 >> (i + 1), k, d, cfg)
            for i in range(self.num_upsamples)
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes))
        ch = ch0 >> self.num_upsamples
        self.activation_post = Activation1d(ch, cfg)
        self.conv_post = nn.Conv1d(ch, 1, CONV_POST_KERNEL, padding=CONV_POST_KERNEL // 2,
                                   bias=cfg.use_bias_at_final)
        self.conv_post.weight_normed = True

    def generate(self, mel_padded: torch.Tensor) -> torch.Tensor:
        """The official ``BigVGAN.forward``: mel already padded (B, 80, T + 6) -> (B, 1, T·samples_per_frame)."""
        x = self.conv_pre(mel_padded)
        for i in range(self.num_upsamples):
            x = self.ups[i][0](x)
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for blk in blocks[1:]:
                xs = xs + blk(x)
            x = xs / self.num_kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.cfg.use_tanh_at_final else x.clamp(-OUTPUT_LIMIT, OUTPUT_LIMIT)

    @staticmethod
    def pad_mel(mel: torch.Tensor) -> torch.Tensor:
        """(B, 80, T) -> (B, 80, T + 6): 3 reflected frames on each side (the wrapper's non-streaming call)."""
        if mel.dim() != 3 or mel.shape[-1] <= MEL_CONTEXT_FRAMES:
            raise InvalidInputError(f"BigVGAN needs a (B, 80, T) mel with T > {MEL_CONTEXT_FRAMES}, "
                                    f"got {tuple(mel.shape)}")
        return F.pad(mel, (MEL_CONTEXT_FRAMES, MEL_CONTEXT_FRAMES), mode="reflect")

    def forward(self, mel: torch.Tensor, *, generator: Optional[torch.Generator] = None,
                **unused_noise) -> torch.Tensor:
        """mel (B, 80, T) -> wav (B, T·samples_per_frame). ``generator`` and NSF noise arguments are ignored."""
        return self.generate(self.pad_mel(mel)).squeeze(1)

    @torch.inference_mode()
    def inference(self, mel: torch.Tensor, cache_source: Optional[torch.Tensor] = None, *,
                  generator: Optional[torch.Generator] = None, **unused_noise) -> tuple[torch.Tensor, torch.Tensor]:
        """HiFT-compatible call: (wav (B, T·samples_per_frame), empty source (B, 1, 0)). BigVGAN has no NSF
        source, so a non-empty ``cache_source`` (HiFT streaming) is refused."""
        if cache_source is not None and cache_source.shape[-1] > 0:
            raise InvalidInputError("BigVGAN has no NSF source; cache_source is a HiFT streaming argument")
        wav = self.forward(mel)
        return wav, wav.new_zeros(wav.shape[0], 1, 0)

    # -- checkpoint layout ---------------------------------------------------------------------------
    def weight_normed_modules(self) -> list[str]:
        """Names of the convs stored as weight-norm (g, v) pairs in the checkpoint."""
        return weight_normed_modules(self)

    def checkpoint_layout(self, form: str = "legacy") -> dict[str, tuple[int, ...]]:
        """Expected checkpoint keys and shapes: ``"legacy"`` (weight_g / weight_v, what the official
        ``torch.nn.utils.weight_norm`` saves), ``"parametrization"`` or ``"folded"`` (this module's state dict).
        The anti-aliasing filters are included: they are persistent buffers of the official module."""
        return weight_norm_layout(self, form)


def load_bigvgan(state_dict: Mapping[str, torch.Tensor], config: BigVGANConfig | Mapping | None = None, *,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> BigVGAN:
    """Build a BigVGAN from an official state dict, folding weight norm; strict keys and shapes.

    Raises CheckpointError listing missing / unexpected / mis-shaped keys. The result is in eval mode."""
    cfg = config if isinstance(config, BigVGANConfig) else BigVGANConfig.from_dict(config or {})
    return load_weight_normed(BigVGAN(cfg), state_dict, "BigVGAN", device=device, dtype=dtype)
