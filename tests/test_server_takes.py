"""Trustworthy takes over HTTP, on the deterministic fake engine: ``POST /v1/audio/checks``, ``check`` /
``max_tries`` / ``threshold`` on speech and edits (every seed tried in the take header), region-limited edits
(samples outside the window identical), the streamed path, the old calls unchanged, and 4xx JSON for bad
input with the app's messages. The fake engine's ASR (``transcribe_words``) hears its own takes word for
word but drops the last word when the take's seed is a multiple of 3; other clips it hears as "a fake
transcript of <duration> seconds"."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import soundfile as sf

from stepedit_core.checks import LEVEL_ORDER
from stepedit_core.interface import CloneRequest
from stepedit_core.server import TAKE_HEADER, takes
from tests.fake_engine import SR
from tests.test_server import (PROMPT_TEXT, StreamingFake, assert_error, audio_formats_clip, expected_clone,
                               make_client, speech, tone_wav)

OLD_TAKE_KEYS = {"text", "seed", "edit_type", "edit_info", "iteration", "seconds", "edits", "metadata"}
WORDS = "one two three four"
LONG = "A longer line, so that the take is sent in several chunks."


def voiced_wav(seconds=2.0, sr=SR) -> bytes:
    """Four 0.4 s tone bursts with short gaps (pauses for the window's cut points), 16-bit."""
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 2 * t) > -0.3)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path, StreamingFake()) as c:
        yield c


def take_of(response) -> dict:
    assert response.status_code == 200, response.text
    return json.loads(response.headers[TAKE_HEADER])


def edit(client, wav=None, **data):
    fields = {"edit_type": "emotion", "option": "happy", "text": WORDS, "seed": "3"} | data
    return client.post("/v1/audio/edits", files={"file": ("in.wav", wav or voiced_wav(), "audio/wav")},
                       data={k: str(v) for k, v in fields.items() if v is not None})


def check(client, text="a fake transcript of 1.0 seconds", source=False, **data):
    files = {"file": ("a.wav", tone_wav(1.0), "audio/wav")}
    if source:
        files["source"] = ("s.wav", tone_wav(1.0), "audio/wav")
    return client.post("/v1/audio/checks", files=files, data={"text": text, **data})


# ---- /v1/audio/checks ------------------------------------------------------------------------------------
def test_check_endpoint_scores_the_text_voice_and_length(client):
    r = check(client, source=True)
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["metric"] == "wer" and c["error_rate"] == 0.0 and c["deleted"] == 0 and c["verdict"] == "green"
    assert c["heard"] == "a fake transcript of 1.0 seconds" and c["duration_ratio"] is None
    assert c["speaker_similarity"] == pytest.approx(1.0) and c["speaker_model"]      # the same clip
    assert [w[0] for w in c["words"]] == c["heard"].split() and c["words"][-1][2] == pytest.approx(1.0)
    assert c["summary"].startswith("green: WER 0%")
    c = check(client, text="a fake transcript of 1.0 seconds please", expected_seconds="2").json()
    # one of 9 words missing ("1.0" is read "1 point 0", stepedit_core/textnorm.py)
    assert c["deleted"] == 1 and c["error_rate"] == pytest.approx(1 / 9, abs=1e-4) and c["verdict"] != "green"
    assert c["speaker_similarity"] is None and c["duration_ratio"] == pytest.approx(0.5)
    assert check(client, language="zh").json()["metric"] == "cer"       # the language picks WER vs CER


@pytest.mark.parametrize("kwargs,param,match", [
    ({"text": " "}, "text", "Please enter the text the audio should say"),
    ({"text": "x " * 600}, "text", "too long"),
    ({"language": "fr"}, "language", "language must be one of en, zh"),
    ({"expected_seconds": "nan"}, "expected_seconds", "expected_seconds must be a number"),
])
def test_bad_check_requests(client, kwargs, param, match):
    assert_error(check(client, **kwargs), 400, param, match)


def test_bad_check_uploads_name_the_field(client):
    r = client.post("/v1/audio/checks", files={"file": ("a.wav", b"not audio", "audio/wav")}, data={"text": "hi"})
    assert_error(r, 400, "file", "not an audio file")
    r = client.post("/v1/audio/checks", data={"text": "hi"},
                    files={"file": ("a.wav", tone_wav(), "audio/wav"), "source": ("s.wav", b"", "audio/wav")})
    assert_error(r, 400, "source", "uploaded source is empty")
    assert_error(client.post("/v1/audio/checks", data={"text": "hi"}), 400, "file", "field required")


# ---- speech: check and retries ---------------------------------------------------------------------------
def test_speech_check_rides_in_the_take_header_and_keeps_the_audio(client):
    plain = speech(client, response_format="flac")
    r = speech(client, response_format="flac", check=True)
    take = take_of(r)
    assert r.content == plain.content                                  # the same take, now scored
    assert take["check"]["error_rate"] == 0.0 and take["check"]["heard"] == "Hi there"
    assert take["seeds_tried"] == [7] and take["tries"] == [{"seed": 7, "error_rate": 0.0, "verdict":
                                                              take["check"]["verdict"]}]
    assert take["check"]["duration_ratio"] > 0 and take["check"]["speaker_model"]


def test_speech_retries_reroll_seeds_until_the_check_passes(client):
    """Seed 6 loses a word in the fake ASR: seeds 6, 7 are tried and 7 kept (its audio, its seed)."""
    take = take_of(r := speech(client, seed=6, max_tries=3, threshold=0, response_format="flac"))
    assert take["seeds_tried"] == [6, 7] and take["seed"] == 7 and take["check"]["deleted"] == 0
    assert [t["error_rate"] for t in take["tries"]] == [0.5, 0.0]
    y, _ = sf.read(io.BytesIO(r.content), dtype="float32")
    assert np.max(np.abs(y - expected_clone(7))) < 1e-4
    take = take_of(speech(client, seed=6, max_tries=1, check=True))    # one try: the loss is reported, kept
    assert take["seeds_tried"] == [6] and take["check"]["deleted"] == 1 and take["check"]["verdict"] != "green"


def test_checked_speech_takes_the_whole_take_path_even_when_streaming(tmp_path):
    """As the app's streamed clone with tries: the take is judged whole before its header goes out; wav / pcm /
    sse still arrive in chunks."""
    engine = StreamingFake()
    with make_client(tmp_path, engine) as c:
        r = speech(c, response_format="pcm", stream_format="sse", max_tries=2, input=LONG)
        take = take_of(r)
        assert "stream_clone" not in engine.calls and engine.calls[0] == "clone" and "streamed" not in take
        events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
        pcm = np.frombuffer(b"".join(base64.b64decode(e["audio"]) for e in events[:-1]), "<i2") / 32767
        whole = StreamingFake().clone(CloneRequest(audio_formats_clip(), PROMPT_TEXT, LONG, seed=7)).audio.samples
        assert len(events) > 3 and len(pcm) == len(whole) and np.max(np.abs(pcm - whole)) < 1e-4
        assert take["seeds_tried"] == [7] and take["check"]["error_rate"] == 0.0
        take = take_of(speech(c, response_format="pcm"))                  # unchecked: still streamed live
        assert engine.calls[-2:] == ["stream_clone", "clone"] and take["streamed"] is True and "check" not in take


def test_old_calls_are_unchanged_and_never_load_the_checker(tmp_path):
    engine = StreamingFake()
    with make_client(tmp_path, engine) as c:
        a = speech(c, response_format="flac", instructions="happy")
        b = speech(c, response_format="flac", instructions="happy", check=False, max_tries=1)
        assert a.content == b.content and a.headers[TAKE_HEADER] == b.headers[TAKE_HEADER]
        assert set(take_of(a)) == OLD_TAKE_KEYS
        e1, e2 = edit(c), edit(c, check="false", max_tries="1", threshold="0.2")
        assert e1.content == e2.content and set(take_of(e1)) == OLD_TAKE_KEYS
        assert e1.headers[TAKE_HEADER] == e2.headers[TAKE_HEADER]
        assert c.app.state.api.state.takes._checker is None             # no ASR loaded for plain calls


@pytest.mark.parametrize("overrides,param,match", [
    ({"max_tries": 0}, "max_tries", "number of tries must be a whole number between 1 and 9 (got 0)"),
    ({"max_tries": 10}, "max_tries", "between 1 and 9 (got 10)"),
    ({"max_tries": 1.5}, "max_tries", "(got 1.5)"),
    ({"max_tries": "three"}, "max_tries", "(got 'three')"),
    ({"max_tries": True}, "max_tries", "(got True)"),
    ({"threshold": 2}, "threshold", "error-rate threshold must be between 0 and 1 (got 2)"),
    ({"threshold": -0.1}, "threshold", "between 0 and 1"),
    ({"threshold": "low"}, "threshold", "error-rate threshold must be a number (got 'low')"),
    ({"check": "perhaps"}, "check", "boolean"),
])
def test_bad_retry_fields_on_speech(client, overrides, param, match):
    assert_error(speech(client, **overrides), 400, param, match)


# ---- edits: check, retries, regions ----------------------------------------------------------------------
def test_edit_retries_record_every_seed_over_iterations(client):
    """Two rounds with seed 5 use round seeds 5, 6; round 6 loses a word, so seed 6 (rounds 6, 7) is tried."""
    take = take_of(edit(client, seed=5, iterations=2, max_tries=4, threshold=0))
    assert take["seeds_tried"] == [5, 6] and [t["seed"] for t in take["tries"]] == [5, 6]
    assert take["tries"][0]["error_rate"] == 0.25 and take["tries"][1]["error_rate"] == 0.0
    # the best try is kept (checks.rank: verdict, then error rate); its last round's seed is its seed + 1
    best = min(take["tries"], key=lambda t: (LEVEL_ORDER[t["verdict"]], t["error_rate"]))
    assert take["seed"] == best["seed"] + 1 and take["iteration"] == 2
    assert take["check"]["error_rate"] == best["error_rate"]
    take = take_of(edit(client, edit_type="speed", option="slower", iterations=2, check="true"))
    # the last round is judged against the round before it: the fake's x1.25 vs the option's nominal 1/0.83
    assert take["check"]["duration_ratio"] == pytest.approx(1.25 * 0.83, abs=0.01)


def _outside_identical(original: np.ndarray, out: np.ndarray, region: dict) -> None:
    start, end = region["window_samples"]
    fade = round(region["fade_s"] * region["sample_rate"])
    a, b = start - fade, end + fade
    shift = len(out) - len(original)
    assert np.array_equal(out[:a], original[:a]) and np.array_equal(out[b + shift:], original[b:])
    assert not np.array_equal(out[a:b + shift], original[a:b])            # the window itself was edited


@pytest.mark.parametrize("selection", [{"start_s": 0.6, "end_s": 1.1}, {"first_word": 2, "last_word": 3}])
def test_region_edit_changes_only_the_window(client, selection):
    wav = voiced_wav()
    r = edit(client, wav, **selection)
    take = take_of(r)
    original, _ = sf.read(io.BytesIO(wav), dtype="int16")
    out, sr = sf.read(io.BytesIO(r.content), dtype="int16")
    region = take["region"]
    assert sr == SR and region["selection"] == ({"seconds": [0.6, 1.1]} if "start_s" in selection
                                                 else {"words": [2, 3]})
    if "first_word" in selection:              # the fake hears "a fake transcript of 2.0 seconds"
        assert region["text"] == "transcript of"
    _outside_identical(original, out, region)
    assert take["text"] == WORDS and "check" not in take


def test_region_edit_with_retries_records_every_seed(client):
    """The fake hears an uploaded clip as "a fake transcript of ..." instead of the four words: no try passes,
    so all three seeds are tried."""
    take = take_of(edit(client, seed=6, start_s=0.6, end_s=1.1, max_tries=3, threshold=0.9))
    assert take["seeds_tried"] == [6, 7, 8] and [t["seed"] for t in take["tries"]] == [6, 7, 8]
    assert all(t["error_rate"] > 0.9 for t in take["tries"]) and take["region"]["selection"]["seconds"] == [0.6, 1.1]


@pytest.mark.parametrize("data,param,match", [
    ({"first_word": 1, "start_s": 0.5, "end_s": 1.0}, "start_s", takes.BOTH_RANGES),
    ({"first_word": 1}, "last_word", "Give both first_word and last_word (or neither)"),
    ({"end_s": 1.0}, "start_s", "Give both start_s and end_s (or neither)"),
    ({"start_s": 1.0, "end_s": 0.5}, "start_s", "the selection is empty (1.00-0.50 s)"),
    ({"start_s": 1.5, "end_s": 2.5}, "start_s", "1.50-2.50 s is outside the clip, which is 2.00 s long"),
    ({"start_s": 0.5, "end_s": 0.55}, "start_s", "inside a single sound; select at least 120 ms"),
    ({"start_s": "soon", "end_s": 1.0}, "start_s", "valid number"),
    ({"first_word": 4, "last_word": 9}, "first_word", "outside the transcript, which has 6 words (0-5)"),
    ({"first_word": 3, "last_word": 1}, "first_word", "the selection is empty (word 3 to word 1)"),
    ({"edit_type": "vad", "option": None, "start_s": 0.5, "end_s": 1.0}, "edit_type",
     "works on the whole take, not a selection"),
    ({"max_tries": "1.5"}, "max_tries", "whole number between 1 and 9 (got '1.5')"),
    ({"threshold": "nan"}, "threshold", "between 0 and 1 (got nan)"),
    ({"check": "true", "seed": "-5x"}, "seed", "valid integer"),
])
def test_bad_region_and_retry_fields_on_edits(client, data, param, match):
    error = assert_error(edit(client, **data), 400, param, match)
    assert error["code"] in ("invalid_value", "unsupported")


def test_a_long_check_is_trimmed_to_fit_the_header(client, monkeypatch):
    monkeypatch.setattr(takes, "MAX_TAKE_HEADER_BYTES", 700)
    take = take_of(speech(client, input="one two three four five six seven eight nine ten", check=True))
    assert take["check"]["omitted"][0] == "words" and "words" not in take["check"]
    assert take["check"]["error_rate"] == 0.0 and take["seeds_tried"] == [7]
