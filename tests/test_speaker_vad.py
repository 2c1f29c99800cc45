"""The GE2E speaker embedder trims silence with the WebRTC VAD of stepedit_core.listen.vad (issue #30: the
embedder imported a module that had moved, so every GE2E embedding raised)."""
import numpy as np

from stepedit_core.listen import speaker, vad
from stepedit_core.lite import vad as lite_vad


def _random_state(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    h = speaker.HIDDEN
    state = {}
    for layer, n_in in enumerate((speaker.N_MELS, h, h)):
        state[f"lstm.weight_ih_l{layer}"] = rng.normal(0, 0.05, (4 * h, n_in)).astype(np.float32)
        state[f"lstm.weight_hh_l{layer}"] = rng.normal(0, 0.05, (4 * h, h)).astype(np.float32)
        state[f"lstm.bias_ih_l{layer}"] = np.zeros(4 * h, np.float32)
        state[f"lstm.bias_hh_l{layer}"] = np.zeros(4 * h, np.float32)
    state["linear.weight"] = rng.normal(0, 0.05, (h, h)).astype(np.float32)
    state["linear.bias"] = np.full(h, 0.01, np.float32)
    return state


def _voice(sr: int, seconds: float, f0: float) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12)) * 0.1
    return np.concatenate([np.zeros(sr // 2), x, np.zeros(sr // 2)]).astype(np.float32)


def test_ge2e_embedding_runs_with_the_vad_trim_and_is_unit_norm():
    state = _random_state()
    e = speaker.embed(state, _voice(8000, 2.0, 120.0), 8000)
    assert e.shape == (speaker.HIDDEN,)
    assert abs(float(np.linalg.norm(e)) - 1.0) < 1e-4


def test_speech_regions_find_the_voiced_middle_and_lite_uses_the_same_function():
    sr = 16000
    regions = vad.speech_regions(_voice(sr, 1.0, 150.0), sr)
    assert regions, "the harmonic tone between two silences is speech to the VAD"
    a, b = regions[0][0] / sr, regions[-1][1] / sr
    assert 0.3 <= a <= 0.55 and 1.45 <= b <= 1.8          # 0.5 s silence, 1 s voice, hangover + 30 ms frames
    assert lite_vad.speech_regions is vad.speech_regions
