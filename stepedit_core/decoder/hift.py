"""HiFT vocoder: 80-bin mel at 50 Hz -> 24 kHz waveform (CosyVoice's HiFT; chunked use in hift_stream.py).

HiFTNet = neural source filter (NSF) + iSTFTNet, the CosyVoice2 layout (GH:hifigan/generator.py with
``SourceModuleHnNSF2`` / ``SineGen2``). One mel frame gives ``prod(upsample_rates) * istft hop`` = 8·5·3·4 =
480 samples.

Pipeline for a mel ``(B, 80, T)``:
  f0 ``(B, T)`` Hz  ->  NSF source ``s`` ``(B, 1, 480T)``  ->  STFT of s ``(B, 18, 120T+1)``
  mel + STFT(s)  ->  conv stack  ->  [log-magnitude ‖ phase argument] ``(B, 18, 120T+1)``  ->  iSTFT  ->  wav.

The module is built in *folded* form (plain conv weights); ``load_hift`` folds the weight norm of hift.pt
(82 weight-normed convs at real size, 328 checkpoint keys) into it with weight_norm.py, strictly.

Randomness: the official SineGen2 draws ``rand_ini ~ U[0,1)`` of shape ``(B, 9)`` (initial
phase of harmonics 2..9; element 0 is forced to 0) and ``noise ~ N(0,1)`` of shape ``(B, L, 9)`` per call, unseeded.
Here both can be injected, or are drawn from an explicit ``torch.Generator``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CheckpointError, ModelUnavailableError
from .weight_norm import load_weight_normed, weight_norm_layout, weight_normed, weight_normed_modules

SNAKE_EPS = 1e-9                 # GH:hifigan/activation.py Snake: x + sin²(αx) / (α + 1e-9)
ISTFT_MAGNITUDE_MAX = 1e2        # GH:generator.py _istft: magnitude clipped to 100 before the iSTFT
FINAL_LRELU_SLOPE = 0.01         # decode_without_stft ends with F.leaky_relu at torch's default slope
F0_CONTEXT_FRAMES = 5            # receptive field of the f0 predictor on each side: 5 convs of kernel 3


@dataclass
class HiFTConfig:
    """Hyper-parameters of ``HiFTGenerator``; defaults are the shipped CosyVoice-300M-25Hz ``hift:`` block."""
    in_channels: int = 80
    base_channels: int = 512
    nb_harmonics: int = 8                      # harmonics above f0; the NSF uses nb_harmonics + 1 sines
    sampling_rate: int = 24000
    nsf_alpha: float = 0.1                     # sine amplitude; unvoiced noise std is nsf_alpha / 3
    nsf_sigma: float = 0.003                   # voiced noise std
    nsf_voiced_threshold: float = 10.0         # Hz; f0 above this is voiced
    upsample_rates: tuple = (8, 5, 3)
    upsample_kernel_sizes: tuple = (16, 11, 7)
    istft_n_fft: int = 16
    istft_hop_len: int = 4
    resblock_kernel_sizes: tuple = (3, 7, 11)
    resblock_dilation_sizes: tuple = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    source_resblock_kernel_sizes: tuple = (7, 7, 11)
    source_resblock_dilation_sizes: tuple = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    lrelu_slope: float = 0.1
    audio_limit: float = 0.99
    f0_num_class: int = 1                      # ConvRNNF0Predictor(num_class, in_channels, cond_channels)
    f0_in_channels: int = 80
    f0_cond_channels: int = 512

    def __post_init__(self):
        for name in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes",
                     "source_resblock_kernel_sizes"):
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("resblock_dilation_sizes", "source_resblock_dilation_sizes"):
            setattr(self, name, tuple(tuple(int(d) for d in ds) for ds in getattr(self, name)))

    @property
    def samples_per_frame(self) -> int:
        """Waveform samples per mel frame (480 at the real config); also the NSF upsampling factor."""
        return int(np.prod(self.upsample_rates)) * self.istft_hop_len

    @property
    def num_harmonic_sines(self) -> int:
        return self.nb_harmonics + 1

    @classmethod
    def from_dict(cls, block: Mapping) -> "HiFTConfig":
        """Build from the cosyvoice.yaml ``hift:`` arguments (or a fixture config.json).

        Accepts the official nesting ``istft_params: {n_fft, hop_len}`` and ``f0_predictor: {num_class,
        in_channels, cond_channels}``; a ``class`` entry naming anything but HiFTGenerator is refused
        (a BigVGAN block goes to stepedit_core.decoder.bigvgan instead, see ``check_vocoder_class``).
        """
        block = dict(block)
        check_vocoder_class(block.pop("class", "HiFTGenerator"))
        kwargs = {}
        istft = block.pop("istft_params", None)
        if istft is not None:
            kwargs["istft_n_fft"] = int(istft["n_fft"])
            kwargs["istft_hop_len"] = int(istft["hop_len"])
        f0 = block.pop("f0_predictor", None)
        if isinstance(f0, Mapping):
            f0 = dict(f0)
            f0_class = f0.pop("class", "ConvRNNF0Predictor")
            if str(f0_class).rsplit(".", 1)[-1] != "ConvRNNF0Predictor":
                raise ModelUnavailableError(f"unsupported HiFT f0 predictor {f0_class!r}")
            for key in ("num_class", "in_channels", "cond_channels"):
                if key in f0:
                    kwargs[f"f0_{key}"] = int(f0[key])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(block) - known)
        if unknown:
            raise CheckpointError(f"unknown HiFT config entries: {unknown}")
        kwargs.update(block)
        return cls(**kwargs)


def check_vocoder_class(name: str) -> None:
    """Raise ModelUnavailableError unless ``name`` (a yaml ``!new:`` target or class name) is HiFTGenerator."""
    short = str(name).rsplit(".", 1)[-1]
    if short == "HiFTGenerator":
        return
    if short == "BigVGAN":
        raise ModelUnavailableError(
            "BigVGAN is not a HiFT vocoder: build it with stepedit_core.decoder.bigvgan "
            "(cosyvoice.vocoder_config_from_dict picks it for a cosyvoice.yaml that asks for it)")
    raise ModelUnavailableError(f"unsupported vocoder class {name!r} (only HiFTGenerator is implemented)")


def _padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


class Snake(nn.Module):
    """Snake activation x + sin²(αx)/(α + 1e-9), α per channel on a linear scale. x: (B, C, T)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        return x + (1.0 / (alpha + SNAKE_EPS)) * torch.sin(x * alpha).pow(2)


class ResBlock(nn.Module):
    """Three (Snake -> dilated conv -> Snake -> conv) residual units; channels kept."""

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(weight_normed(nn.Conv1d(channels, channels, kernel_size, dilation=d,
                                                             padding=_padding(kernel_size, d)))
                                    for d in dilations)
        self.convs2 = nn.ModuleList(weight_normed(nn.Conv1d(channels, channels, kernel_size,
                                                             padding=_padding(kernel_size)))
                                    for _ in dilations)
        self.activations1 = nn.ModuleList(Snake(channels) for _ in dilations)
        self.activations2 = nn.ModuleList(Snake(channels) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, self.activations1, self.activations2):
            x = x + c2(a2(c1(a1(x))))
        return x


class ConvRNNF0Predictor(nn.Module):
    """mel (B, 80, T) -> f0 (B, T) in Hz: 5 × (conv k3 + ELU), then Linear to 1 and |·|."""

    def __init__(self, num_class: int = 1, in_channels: int = 80, cond_channels: int = 512):
        super().__init__()
        layers = []
        for i in range(5):
            layers += [weight_normed(nn.Conv1d(in_channels if i == 0 else cond_channels, cond_channels,
                                                kernel_size=3, padding=1)), nn.ELU()]
        self.condnet = nn.Sequential(*layers)          # keys condnet.{0,2,4,6,8}.*
        self.classifier = nn.Linear(cond_channels, num_class)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.condnet(mel).transpose(1, 2)          # (B, T, C)
        return torch.abs(self.classifier(h).squeeze(-1))


class SourceModuleHnNSF(nn.Module):
    """Harmonic-plus-noise NSF source (the official SourceModuleHnNSF2 with SineGen2).

    f0 (B, T) at the mel rate -> source (B, 1, T·upsample_scale) at the audio rate.
    """

    def __init__(self, cfg: HiFTConfig):
        super().__init__()
        self.sampling_rate = cfg.sampling_rate
        self.upsample_scale = cfg.samples_per_frame
        self.num_sines = cfg.num_harmonic_sines
        self.sine_amp = cfg.nsf_alpha
        self.noise_std = cfg.nsf_sigma
        self.voiced_threshold = cfg.nsf_voiced_threshold
        self.l_linear = nn.Linear(self.num_sines, 1)   # merges the 9 harmonics into one excitation

    def draw(self, batch: int, length: int, generator: Optional[torch.Generator] = None,
             device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The two random draws of one official call: rand_ini (B, 9) ~ U[0,1), noise (B, L, 9) ~ N(0,1)."""
        rand_ini = torch.rand(batch, self.num_sines, generator=generator, device=device)
        noise = torch.randn(batch, length, self.num_sines, generator=generator, device=device)
        return rand_ini, noise

    def sine_waves(self, f0: torch.Tensor, rand_ini: torch.Tensor, noise: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """SineGen2: f0 (B, T) -> (sine_waves (B, L, 9), uv (B, L, 1)), L = T·upsample_scale."""
        up = self.upsample_scale
        f0_up = f0.repeat_interleave(up, dim=1).unsqueeze(-1)            # nearest ×up: (B, L, 1)
        harmonics = torch.arange(1, self.num_sines + 1, dtype=f0.dtype, device=f0.device)
        rad = (f0_up * harmonics / self.sampling_rate) % 1                 # cycles per sample, (B, L, 9)
        rand_ini = rand_ini.to(rad).clone()
        rand_ini[:, 0] = 0                                                 # no phase offset for f0 itself
        rad[:, 0, :] = rad[:, 0, :] + rand_ini                             # added at t = 0 only
        # Integrate the phase at the frame rate (linear down by `up`), then linearly back up: the official
        # way to avoid a float32 cumsum over every sample. Order of the float ops kept for bit parity.
        rad_frames = F.interpolate(rad.transpose(1, 2), scale_factor=1 / up, mode="linear").transpose(1, 2)
        phase = torch.cumsum(rad_frames, dim=1) * 2 * math.pi
        phase = F.interpolate(phase.transpose(1, 2) * up, scale_factor=up, mode="linear").transpose(1, 2)
        sines = torch.sin(phase) * self.sine_amp
        uv = (f0_up > self.voiced_threshold).to(sines.dtype)
        noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
        return sines * uv + noise_amp * noise.to(sines), uv

    def frame_cycles(self, f0: torch.Tensor) -> torch.Tensor:
        """Phase advance per frame in cycles, float64 (B, T, 9): upsample_scale · ((f0·k / sr) mod 1)."""
        harmonics = torch.arange(1, self.num_sines + 1, dtype=f0.dtype, device=f0.device)
        return ((f0.unsqueeze(-1) * harmonics / self.sampling_rate) % 1).double() * self.upsample_scale

    def continued_sine_waves(self, f0: torch.Tensor, noise: torch.Tensor,
                             start_cycles: Optional[torch.Tensor]) -> torch.Tensor:
        """SineGen2 for a window that continues an earlier one (phase-continuous streaming).

        ``start_cycles`` (B, 9) float64 is the accumulated phase (cycles, mod 1) at the frame just before the
        window, or None at the start of the signal (then the left edge is clamped, as in one whole call). The
        frame phase is accumulated in float64 and interpolated like the official linear ×upsample_scale.
        """
        up, frames = self.upsample_scale, f0.shape[1]
        phase = torch.cumsum(self.frame_cycles(f0), dim=1)                    # (B, T, 9) cycles
        first = phase[:, :1] if start_cycles is None else start_cycles[:, None].to(phase)
        phase = torch.cat([first, phase + (0 if start_cycles is None else first)], dim=1)   # frame -1 first
        pos = (torch.arange(frames * up, dtype=torch.float64, device=f0.device) + 0.5) / up + 0.5
        i0 = pos.floor().long().clamp(max=frames)
        w = (pos - i0).clamp(0, 1)[None, :, None]
        i1 = (i0 + 1).clamp(max=frames)
        cycles = phase[:, i0] * (1 - w) + phase[:, i1] * w                    # (B, L, 9)
        sines = torch.sin(2 * math.pi * torch.frac(cycles)).to(f0.dtype) * self.sine_amp
        uv = (f0.repeat_interleave(up, dim=1).unsqueeze(-1) > self.voiced_threshold).to(sines.dtype)
        noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
        return torch.tanh(self.l_linear(sines * uv + noise_amp * noise.to(sines))).transpose(1, 2)

    def forward(self, f0: torch.Tensor, rand_ini: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        sine_waves, _ = self.sine_waves(f0, rand_ini, noise)
        return torch.tanh(self.l_linear(sine_waves)).transpose(1, 2)       # (B, 1, L)


class HiFTGenerator(nn.Module):
    """HiFT vocoder with checkpoint key names (``conv_pre``, ``ups``, ``resblocks``, ``source_downs``, ...).

    Weights in folded form; build with ``load_hift`` to load a (weight-normed) checkpoint.
    """

    def __init__(self, cfg: Optional[HiFTConfig] = None):
        super().__init__()
        self.cfg = cfg = cfg or HiFTConfig()
        ch0, n_fft = cfg.base_channels, cfg.istft_n_fft
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.num_upsamples = len(cfg.upsample_rates)
        self.m_source = SourceModuleHnNSF(cfg)
        self.conv_pre = weight_normed(nn.Conv1d(cfg.in_channels, ch0, 7, padding=3))
        self.ups = nn.ModuleList(
            weight_normed(nn.ConvTranspose1d(ch0 >> i, ch0 >> (i + 1), k, u, padding=(k - u) // 2))
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)))
        # The source STFT (hop istft_hop_len) is brought to each upsampling stage's rate: cumulative
        # down-rates [15, 3, 1] at the real config (reverse cumprod of [1] + reversed(rates)[:-1]).
        down = np.cumprod([1] + list(cfg.upsample_rates[::-1][:-1]))[::-1]
        self.source_downs = nn.ModuleList()
        self.source_resblocks = nn.ModuleList()
        for i, (u, k, d) in enumerate(zip(down, cfg.source_resblock_kernel_sizes,
                                          cfg.source_resblock_dilation_sizes)):
            ch = ch0 >> (i + 1)
            u = int(u)
            self.source_downs.append(nn.Conv1d(n_fft + 2, ch, 1) if u == 1
                                     else nn.Conv1d(n_fft + 2, ch, 2 * u, u, padding=u // 2))
            self.source_resblocks.append(ResBlock(ch, k, d))
        self.resblocks = nn.ModuleList(
            ResBlock(ch0 >> (i + 1), k, d)
            for i in range(self.num_upsamples)
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes))
        self.conv_post = weight_normed(nn.Conv1d(ch0 >> self.num_upsamples, n_fft + 2, 7, padding=3))
        self.f0_predictor = ConvRNNF0Predictor(cfg.f0_num_class, cfg.f0_in_channels, cfg.f0_cond_channels)
        # scipy get_window("hann", n, fftbins=True) == periodic Hann
        self.register_buffer("stft_window", torch.hann_window(n_fft, periodic=True), persistent=False)

    # -- stages ----------------------------------------------------------------------------------------
    def stft(self, source: torch.Tensor) -> torch.Tensor:
        """source (B, 1, L) -> [real ‖ imag] (B, n_fft + 2, L / hop + 1), centred, reflect-padded."""
        n_fft, hop = self.cfg.istft_n_fft, self.cfg.istft_hop_len
        spec = torch.stft(source.squeeze(1), n_fft, hop, n_fft, window=self.stft_window.to(source),
                          return_complex=True)
        spec = torch.view_as_real(spec)
        return torch.cat([spec[..., 0], spec[..., 1]], dim=1).to(source.dtype)

    def istft(self, x: torch.Tensor) -> torch.Tensor:
        """Conv output (B, n_fft + 2, F) -> waveform (B, (F - 1)·hop), clamped to ±audio_limit."""
        n_fft, hop = self.cfg.istft_n_fft, self.cfg.istft_hop_len
        bins = n_fft // 2 + 1
        magnitude = torch.exp(x[:, :bins, :]).float().clamp(max=ISTFT_MAGNITUDE_MAX)
        phase = torch.sin(x[:, bins:, :]).float()       # the official sin() here is redundant but kept
        spec = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
        wav = torch.istft(spec, n_fft, hop, n_fft, window=self.stft_window.to(magnitude))
        return wav.to(x.dtype).clamp(-self.cfg.audio_limit, self.cfg.audio_limit)

    def decode_without_stft(self, mel: torch.Tensor, s_stft: torch.Tensor) -> torch.Tensor:
        """mel (B, 80, T) + source STFT (B, n_fft+2, 120T+1) -> (B, n_fft+2, 120T+1) log-mag ‖ phase arg."""
        x = self.conv_pre(mel)
        for i in range(self.num_upsamples):
            x = self.ups[i](F.leaky_relu(x, self.cfg.lrelu_slope))
            if i == self.num_upsamples - 1:
                x = F.pad(x, (1, 0), mode="reflect")   # official ReflectionPad1d((1, 0)): 120T -> 120T+1
            x = x + self.source_resblocks[i](self.source_downs[i](s_stft))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / self.num_kernels
        return self.conv_post(F.leaky_relu(x, FINAL_LRELU_SLOPE))

    def decode(self, mel: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """mel (B, 80, T) + NSF source (B, 1, 480T) -> wav (B, 480T)."""
        return self.istft(self.decode_without_stft(mel, self.stft(source)))

    def source(self, f0: torch.Tensor, *, rand_ini: Optional[torch.Tensor] = None,
               noise: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """f0 (B, T) -> NSF source (B, 1, 480T). Missing draws come from ``generator`` (rand_ini first)."""
        batch, length = f0.shape[0], f0.shape[1] * self.cfg.samples_per_frame
        if rand_ini is None or noise is None:
            drawn_ini, drawn_noise = self.m_source.draw(batch, length, generator, device=f0.device)
            rand_ini = drawn_ini if rand_ini is None else rand_ini
            noise = drawn_noise if noise is None else noise
        if tuple(noise.shape) != (batch, length, self.cfg.num_harmonic_sines):
            raise ValueError(f"noise must be {(batch, length, self.cfg.num_harmonic_sines)}, "
                             f"got {tuple(noise.shape)}")
        return self.m_source(f0, rand_ini, noise)

    @torch.inference_mode()
    def inference(self, mel: torch.Tensor, cache_source: Optional[torch.Tensor] = None, *,
                  rand_ini: Optional[torch.Tensor] = None, noise: Optional[torch.Tensor] = None,
                  generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """mel (B, 80, T) -> (wav (B, 480T), source (B, 1, 480T)).

        ``cache_source`` (B, 1, n) overwrites the first n source samples (the streaming source cache: it keeps
        the excitation continuous across chunks; official ``HiFTGenerator.inference``).
        """
        s = self.source(self.f0_predictor(mel), rand_ini=rand_ini, noise=noise, generator=generator)
        if cache_source is not None and cache_source.shape[-1] > 0:
            s = s.clone()
            s[:, :, :cache_source.shape[-1]] = cache_source
        return self.decode(mel, s), s

    def forward(self, mel: torch.Tensor, *, rand_ini: Optional[torch.Tensor] = None,
                noise: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """mel (B, 80, T) -> wav (B, 480T) in [-audio_limit, audio_limit]."""
        return self.inference(mel, rand_ini=rand_ini, noise=noise, generator=generator)[0]

    # -- checkpoint layout ---------------------------------------------------------------------------
    def weight_normed_modules(self) -> list[str]:
        """Names of the convs whose checkpoint weight is stored as a weight-norm (g, v) pair (82 at real size)."""
        return weight_normed_modules(self)

    def checkpoint_layout(self, form: str = "parametrization") -> dict[str, tuple[int, ...]]:
        """Expected checkpoint keys and shapes: ``"parametrization"`` (hift.pt, 328 keys), ``"legacy"``
        (weight_g / weight_v) or ``"folded"`` (246 keys, this module's own state dict)."""
        return weight_norm_layout(self, form)


def load_hift(state_dict: Mapping[str, torch.Tensor], config: HiFTConfig | Mapping | None = None, *,
              device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> HiFTGenerator:
    """Build a HiFTGenerator from a hift.pt-style state dict, folding weight norm; strict keys and shapes.

    Raises CheckpointError listing missing / unexpected / mis-shaped keys. The result is in eval mode.
    """
    cfg = config if isinstance(config, HiFTConfig) else HiFTConfig.from_dict(config or {})
    return load_weight_normed(HiFTGenerator(cfg), state_dict, "HiFTGenerator", device=device, dtype=dtype)
