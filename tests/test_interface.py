"""The engine interface: validation, seeds, and the official iteration semantics."""
import numpy as np
import pytest

from stepedit_core import catalog
from stepedit_core.errors import InvalidInputError, UnsupportedEditError
from stepedit_core.interface import (MAX_ITERATIONS, AudioClip, Capabilities, CloneRequest, EditRequest, Engine,
                                     EngineResult, edit_result_text, resolve_seed, round_seed)


class RecordingEngine(Engine):
    """Scales the audio by 0.5 per round and records what each round received."""

    def __init__(self, caps=None):
        self.calls = []
        self._caps = caps or Capabilities(engine="rec", display_name="Recorder", clone=True,
                                          edit_options={t: catalog.OPTIONS[t] for t in catalog.AUDIO_EDIT_TYPES})

    def capabilities(self):
        return self._caps

    def _clone(self, request, progress):
        progress(1.0, "done")
        return EngineResult(audio=request.prompt_audio, text=request.target_text, seed=request.seed,
                            edit_type="clone")

    def _edit_once(self, clip, audio_text, request, seed, iteration, progress):
        self.calls.append((clip, audio_text, seed, iteration))
        progress(0.5, "half")
        out = AudioClip.from_array(clip.samples * 0.5, clip.sample_rate)
        return EngineResult(audio=out, text=edit_result_text(request, audio_text), seed=seed,
                            edit_type=request.edit_type, edit_info=request.edit_info, iteration=iteration)


@pytest.fixture
def clip():
    # a tone with syllable-rate loudness swings: a steady tone is refused as a clone prompt (not speech)
    n = np.arange(16000)
    return AudioClip.from_array((np.sin(n * 0.05) * 0.8 * (0.55 + 0.45 * np.sin(2 * np.pi * 3 * n / 16000)))
                                .astype(np.float32), 16000)


def test_iterations_stack_on_the_previous_output(clip):
    eng = RecordingEngine()
    seen = []
    results = eng.edit(EditRequest(clip, "hello", "emotion", "happy", n_iterations=3, seed=10),
                       progress=lambda f, d: seen.append((round(f, 3), d)))
    assert [r.iteration for r in results] == [1, 2, 3]
    assert [c[2] for c in eng.calls] == [10, 11, 12]            # one seed fixes every round
    assert eng.calls[1][0] is results[0].audio and eng.calls[2][0] is results[1].audio
    assert np.abs(results[-1].audio.samples).max() == pytest.approx(np.abs(clip.samples).max() * 0.125, rel=1e-5)
    assert seen == [(round(0.5 / 3, 3), "round 1/3: half"), (0.5, "round 2/3: half"),
                    (round(2.5 / 3, 3), "round 3/3: half")]


def test_paralinguistic_rounds_carry_the_new_text(clip):
    eng = RecordingEngine()
    results = eng.edit(EditRequest(clip, "hi there", "paralinguistic", new_text="hi [Laughter] there",
                                   n_iterations=2, seed=1))
    assert [c[1] for c in eng.calls] == ["hi there", "hi [Laughter] there"]
    assert results[-1].text == "hi [Laughter] there"


def test_non_paralinguistic_keeps_source_text(clip):
    results = RecordingEngine().edit(EditRequest(clip, "keep me", "style", "whisper", new_text="ignored"))
    assert results[0].text == "keep me"


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(edit_type="pitch"), InvalidInputError, "unknown edit type"),
    (dict(edit_type="emotion", edit_info="cheerful"), InvalidInputError, "happy"),
    (dict(edit_type="emotion", edit_info="happy", audio_text="  "), InvalidInputError, "transcript"),
    (dict(edit_type="emotion", edit_info="happy", n_iterations=0), InvalidInputError, "iterations"),
    (dict(edit_type="emotion", edit_info="happy", n_iterations=MAX_ITERATIONS + 1), InvalidInputError, "iterations"),
    (dict(edit_type="paralinguistic"), InvalidInputError, "new text"),
    (dict(edit_type="clone"), InvalidInputError, "clone"),
    (dict(edit_type="emotion", edit_info="happy", audio_text="x" * 1001), InvalidInputError, "too long"),
])
def test_edit_validation(clip, kwargs, error, match):
    base = dict(audio=clip, audio_text="hello", edit_type="emotion", edit_info="happy")
    with pytest.raises(error, match=match):
        RecordingEngine().edit(EditRequest(**{**base, **kwargs}))


def test_denoise_and_vad_need_no_transcript(clip):
    assert RecordingEngine().edit(EditRequest(clip, "", "denoise"))[0].text == ""


def test_unsupported_edits_and_long_audio(clip):
    caps = Capabilities(engine="x", display_name="Tiny", clone=False, edit_options={"speed": ("faster",)},
                        max_input_seconds=0.5)
    eng = RecordingEngine(caps)
    with pytest.raises(UnsupportedEditError, match="denoise"):
        eng.edit(EditRequest(clip, "t", "denoise"))
    with pytest.raises(UnsupportedEditError, match="slower"):
        eng.edit(EditRequest(clip, "t", "speed", "slower"))
    with pytest.raises(UnsupportedEditError, match="clone"):
        eng.clone(CloneRequest(clip, "a", "b"))
    with pytest.raises(InvalidInputError, match="at most 0 s|at most 1 s|1.0 s long"):
        eng.edit(EditRequest(clip, "t", "speed", "faster"))
    assert caps.supports("speed", "faster") and not caps.supports("speed", "slower")


def test_clone_validation_and_seed(clip):
    eng = RecordingEngine()
    with pytest.raises(InvalidInputError, match="target text"):
        eng.clone(CloneRequest(clip, "prompt", " "))
    with pytest.raises(InvalidInputError, match="prompt transcript"):
        eng.clone(CloneRequest(clip, "", "target"))
    result = eng.clone(CloneRequest(clip, "prompt", " target ", seed=None))
    assert result.text == "target" and 0 <= result.seed < 2**31


def test_seeds():
    assert resolve_seed(5) == 5
    assert len({resolve_seed(None) for _ in range(5)}) > 1
    for _ in range(20):
        assert 0 <= resolve_seed(None) < 2**31
        assert 0 <= resolve_seed(-1) < 2**31
    with pytest.raises(InvalidInputError):
        resolve_seed(2**40)
    assert round_seed(2**31 - 1, 2) == 0


def test_audio_clip_from_array_validates():
    with pytest.raises(InvalidInputError):
        AudioClip.from_array(np.zeros(3, np.float32), 16000)
    stereo = np.zeros((16000, 2), np.float32)
    assert AudioClip.from_array(stereo, 16000).samples.shape == (16000,)
