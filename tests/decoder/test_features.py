"""Prompt features vs the official frontend (tests/fixtures/frontend).

Measured here: peak cap exact; speech_feat / mel_raw_BCT max|Δ| 8.6e-6 (log domain); bf16 round trip exact;
resample exact. Kaldi fbank: max|Δ| 2.2e-3, mean 5e-6, only in bins whose log energy is <= -7 (mel energies
below 1e-3 of the 0.001-level noise segments), where float32 rounding of the tiny power values dominates: a float64
fbank of the same input is 2.2e-3 from the fixture and 8.7e-4 from ours, i.e. our float32 result is *closer* to the
exact value than the stored one. Hence: 1e-4 where log energy > -7, 5e-3 below, and both float32 results within
5e-3 of float64.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stepedit_core.compat import import_torchaudio
from stepedit_core.decoder.features import (MelConfig, bf16_roundtrip, campplus_input, extract_speech_feat,
                                    extract_spk_feat, fbank_80, mel_spectrogram_24k, peak_cap, slaney_mel_basis)

FEATURE_ATOL = 1e-4          # fixture README: frontend features atol 1e-4
LOW_ENERGY_LOG = -7.0        # below this log fbank energy float32 noise reaches 1e-3 (module docstring)
LOW_ENERGY_ATOL = 5e-3


@pytest.fixture(scope="module")
def fe(fixtures_root):
    root = fixtures_root / "frontend"
    return json.loads((root / "config.json").read_text()), load_file(str(root / "io.safetensors"))


def test_mel_config_from_yaml_block(fe):
    conf = MelConfig.from_dict(fe[0]["mel_conf"])
    assert conf == MelConfig()
    assert (conf.n_fft, conf.hop_size, conf.win_size, conf.fmax) == (1920, 480, 1920, 8000)


def test_slaney_basis_properties():
    basis = slaney_mel_basis(24000, 1920, 80, 0.0, 8000.0)
    assert basis.shape == (80, 961) and basis.dtype == np.float32
    assert (basis >= 0).all() and (basis.sum(axis=1) > 0).all()
    freqs = np.fft.rfftfreq(1920, 1 / 24000)
    assert basis[:, freqs > 8000].max() == 0            # nothing above fmax
    # Slaney area normalisation: each triangle integrates to ~1 over Hz (spacing 12.5 Hz), up to edge sampling
    area = basis.sum(axis=1) * (freqs[1] - freqs[0])
    assert np.allclose(area[10:], 1.0, atol=0.02)


def test_peak_cap(fe):
    _, io = fe
    capped = peak_cap(io["wav24_raw"])
    torch.testing.assert_close(capped, io["wav24_peakcapped"], atol=0, rtol=0)
    assert float(capped.abs().max()) == pytest.approx(0.6, abs=1e-7)
    quiet = io["wav24_raw"] * 0.5
    torch.testing.assert_close(peak_cap(quiet), quiet, atol=0, rtol=0)      # peak 0.42 < 0.6: unchanged


def test_speech_feat_and_mel(fe):
    conf_dict, io = fe
    conf = MelConfig.from_dict(conf_dict["mel_conf"])
    mel = mel_spectrogram_24k(io["wav24_raw"], conf)
    assert mel.shape == (1, 80, 155)
    torch.testing.assert_close(mel, io["mel_raw_BCT"], atol=FEATURE_ATOL, rtol=0)
    feat = extract_speech_feat(io["wav24_peakcapped"], 24000, conf)
    assert feat.shape == (1, 155, 80)
    torch.testing.assert_close(feat, io["speech_feat"], atol=FEATURE_ATOL, rtol=0)
    torch.testing.assert_close(bf16_roundtrip(io["speech_feat"]), io["speech_feat_bf16_roundtrip"], atol=0, rtol=0)


def test_speech_feat_resamples_other_rates(fe):
    _, io = fe
    feat = extract_speech_feat(io["wav16_functional_resample"], 16000)
    assert feat.shape[0] == 1 and feat.shape[2] == 80 and abs(feat.shape[1] - 155) <= 1
    # the 16 kHz copy is band-limited to 8 kHz = fmax, so most of the mel is recovered
    ref = io["speech_feat"][:, :feat.shape[1]]
    assert torch.median((feat - ref).abs()) < 0.05


def _check_fbank(ours, ref):
    diff = (ours - ref).abs()
    loud = ref > LOW_ENERGY_LOG
    assert loud.float().mean() > 0.5          # 62 % of the bins
    assert diff[loud].max() <= FEATURE_ATOL
    assert diff.max() <= LOW_ENERGY_ATOL
    assert diff.mean() <= 1e-5


def test_fbank_and_campplus_input(fe):
    _, io = fe
    wav16 = io["wav16_functional_resample"]
    fbank = fbank_80(wav16)
    assert fbank.shape == (308, 80)
    _check_fbank(fbank, io["fbank80_raw"])
    exact = import_torchaudio().compliance.kaldi.fbank(wav16.double(), num_mel_bins=80, dither=0.0,
                                                       sample_frequency=16000)
    assert (fbank.double() - exact).abs().max() <= LOW_ENERGY_ATOL
    assert (io["fbank80_raw"].double() - exact).abs().max() <= LOW_ENERGY_ATOL

    feed = campplus_input(wav16)
    assert feed.shape == (1, 308, 80)
    assert feed.mean(dim=1).abs().max() < 1e-5
    diff = (feed - io["campplus_input"]).abs()
    assert diff.max() <= LOW_ENERGY_ATOL and diff.mean() <= 1e-5
    # whole CAM++ branch from the peak-capped 24 kHz prompt (resample + fbank + mean removal)
    torch.testing.assert_close(extract_spk_feat(io["wav24_peakcapped"], 24000), feed, atol=0, rtol=0)
