"""``--llm-server``: the LLM stage on an OpenAI-compatible server (stepedit_core.model.remote), against the
loopback stand-in of tests/fake_llm_server.py, which samples with this project's own ``generate``. So for the
same seed a take through the server must equal the native engine's take, sample for sample; and each failure
a real server shows (down, another model, overloaded, silent, prompt over its context, a broken stream) must
be one typed error with a clear line, fast. The same flow against a real vLLM server is tests/vllm/."""
import io
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

import stepedit_core as sc
from stepedit_core.errors import InvalidInputError, LLMServerError
from stepedit_core.flags import add_engine_arguments, engine_kwargs
from stepedit_core.model.generate import SamplingOptions, generate
from stepedit_core.model.remote import RemoteStep1
from stepedit_core.runtime import derive_seeds
from stepedit_core.server import create_server
from stepedit_core.server.app import TAKE_HEADER
from stepedit_core.voices import VoiceLibrary
from tests.fake_llm_server import FakeLLMServer
from tests.servers import free_port
from tests.test_engine import CAP, _clip, _voice
from tests.tiny_checkpoint import VOCAB_SIZE, build_tiny_checkpoint
from tests.torch_threads import torch_threads

SEED = 7


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_remote"))


@pytest.fixture(scope="module")
def native(ckpt):
    return sc.load_engine("stepaudio", model_path=ckpt).with_options(constrained=True, max_new_tokens=CAP)


@pytest.fixture()
def server(native):
    with FakeLLMServer(native.llm, vocab_size=VOCAB_SIZE) as s:
        yield s


@pytest.fixture()
def remote(ckpt, server):
    eng = sc.load_engine("stepaudio", model_path=ckpt, llm_server=server.url)
    return eng.with_options(constrained=True, max_new_tokens=CAP)


def _request(seed=SEED):
    return sc.CloneRequest(_clip(2.0), "hello world", "this is the audio text", seed=seed)


def test_remote_take_equals_native_take(native, remote, server):
    ours, theirs = native.clone(_request()), remote.clone(_request())
    assert theirs.tokens == ours.tokens and len(ours.tokens) == CAP
    np.testing.assert_array_equal(theirs.audio.samples, ours.audio.samples)
    piece = theirs.metadata["pieces"][0]
    assert piece["stop_reason"] == "max_new_tokens"
    sent = server.requests[-1]                      # the official sampling, asked of the server per request
    assert sent["prompt"] == list(piece["prompt_ids"]) and sent["max_tokens"] == CAP
    assert sent["seed"] == derive_seeds(SEED, 0)["llm"]
    assert (sent["temperature"], sent["top_k"], sent["top_p"]) == (0.7, 50, 1.0)
    assert sent["vllm_xargs"] == {"step1_repetition_guard": 1, "step1_audio_groups": 1}
    assert sent["stream"] is True and sent["return_token_ids"] is True and sent["stop_token_ids"] == [3]


def test_remote_stream_equals_native_stream(native, remote):
    ours = list(native.stream_clone(_request()))
    theirs = list(remote.stream_clone(_request()))
    assert len(theirs) == len(ours) > 1                 # audio arrives group by group, not at the end
    np.testing.assert_array_equal(np.concatenate(theirs), np.concatenate(ours))


def test_generate_contract_greedy_and_eot(native, server):
    client = RemoteStep1.connect(server.url)
    assert client.info.model == "step-audio-editx" and client.info.max_model_len == 4096
    prompt = [1, 4, 70000, 70001, 9, 3, 4]
    opts = SamplingOptions(do_sample=False, max_new_tokens=12)
    groups = []
    got = generate(client, prompt, opts, on_group=groups.append)      # the hook in generate() routes here
    want = generate(native.llm, prompt, opts)
    assert got.ids == want.ids and got.stop_reason == want.stop_reason and got.seed is None
    assert server.requests[-1]["temperature"] == 0.0


def test_cancel_ends_the_request(server):
    client = RemoteStep1.connect(server.url)
    got = client.remote_generate([1, 4, 70000], SamplingOptions(seed=1, max_new_tokens=20), should_stop=lambda: True)
    assert got.stop_reason == "cancelled" and len(got.ids) == 1


def test_server_down_is_one_line_at_start_up():
    url = f"http://127.0.0.1:{free_port()}"
    t0 = time.perf_counter()
    with pytest.raises(LLMServerError, match="cannot reach the LLM server at") as exc:
        RemoteStep1.connect(url)
    assert exc.value.reason == "unreachable" and time.perf_counter() - t0 < 5
    assert "\n" not in str(exc.value)


def test_wrong_model_name_and_foreign_vocabulary(native):
    with FakeLLMServer(native.llm, name="llama-3", vocab_size=VOCAB_SIZE) as s:
        with pytest.raises(LLMServerError, match="serves llama-3, not step-audio-editx") as exc:
            RemoteStep1.connect(s.url, "step-audio-editx")
        assert exc.value.reason == "wrong_model"
    with FakeLLMServer(native.llm, vocab_size=32000) as s:             # a model without the audio ids
        with pytest.raises(LLMServerError, match="not the Step1 LLM") as exc:
            RemoteStep1.connect(s.url)
        assert exc.value.reason == "wrong_model"


def test_overloaded_and_broken_stream_are_typed(server):
    client = RemoteStep1.connect(server.url)
    server.mode = "overloaded"
    with pytest.raises(LLMServerError, match="overloaded") as exc:
        client.remote_generate([1, 4, 70000], SamplingOptions(seed=1, max_new_tokens=5))
    assert exc.value.reason == "overloaded"
    server.mode = "broken_stream"
    with pytest.raises(LLMServerError, match="engine core died"):
        client.remote_generate([1, 4, 70000], SamplingOptions(seed=1, max_new_tokens=5))


def test_silent_server_times_out(server):
    client = RemoteStep1.connect(server.url, token_timeout=0.5)
    server.mode, server.delay_s = "slow", 3.0
    t0 = time.perf_counter()
    with pytest.raises(LLMServerError, match="sent nothing for") as exc:
        client.remote_generate([1, 4, 70000], SamplingOptions(seed=1, max_new_tokens=5))
    assert exc.value.reason == "timeout" and time.perf_counter() - t0 < 2.5


def test_prompt_over_the_servers_context_is_an_input_error(native):
    with FakeLLMServer(native.llm, vocab_size=VOCAB_SIZE, max_model_len=16) as s:
        client = RemoteStep1.connect(s.url)
        with pytest.raises(InvalidInputError, match="takes at most 16 tokens per request: use a shorter text"):
            client.remote_generate(list(range(1, 20)), SamplingOptions(seed=1))
        got = client.remote_generate([1, 4, 70000], SamplingOptions(do_sample=False))
        assert len(got.ids) <= 16 - 3 and got.stop_reason in ("eot", "max_total")
        s.max_model_len = 4                                           # the server's own refusal, same message
        with pytest.raises(InvalidInputError, match="takes at most 16 tokens per request"):
            client.remote_generate([1, 4, 70000], SamplingOptions(seed=1, max_new_tokens=5))


def test_http_api_through_the_server(tmp_path, remote):
    lib = VoiceLibrary(tmp_path / "voices")
    lib.save("alice", sc.AudioClip.from_array(_voice(2.0), 16000), "hello world")
    with TestClient(create_server(remote, lib), raise_server_exceptions=False) as client:
        body = {"model": "tts-1", "input": "this is the audio text", "voice": "alice", "seed": SEED}
        whole = client.post("/v1/audio/speech", json={**body, "response_format": "flac"})
        with client.stream("POST", "/v1/audio/speech", json={**body, "response_format": "wav"}) as r:
            assert r.status_code == 200
            streamed = b"".join(r.iter_raw())
    assert whole.status_code == 200, whole.text
    a, _ = sf.read(io.BytesIO(whole.content), dtype="float32")
    b, _ = sf.read(io.BytesIO(streamed), dtype="float32")
    assert json.loads(r.headers[TAKE_HEADER])["streamed"] is True
    # whole and streamed takes through the server: identical to the native ones (tests above); here the door
    assert a.size == b.size == CAP // 5 * 2880 and np.all(np.isfinite(a)) and np.max(np.abs(a)) > 0.01


def test_flag_reaches_every_door_and_a_dead_server_stops_serve(ckpt):
    import argparse
    args = add_engine_arguments(argparse.ArgumentParser()).parse_args(["--llm-server", "http://h:1", "--llm-model", "m"])
    assert engine_kwargs(args)["llm_server"] == "http://h:1" and engine_kwargs(args)["llm_model"] == "m"
    url = f"http://127.0.0.1:{free_port()}"
    run = subprocess.run([sys.executable, "-m", "stepedit_core", "serve", "--engine", "stepaudio", "--model-path",
                          str(ckpt), "--llm-server", url, "--port", str(free_port())],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert f"Cannot reach the LLM server at {url}" in run.stderr and "Traceback" not in run.stderr


class _Overlap:
    """Wraps a callable; records the most calls ever running at once (each lasts at least ``hold_s``)."""

    def __init__(self, fn, hold_s: float = 0.05):
        import threading
        self.fn, self.hold_s, self.now, self.most = fn, hold_s, 0, 0
        self._lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(self.hold_s)
            return self.fn(*args, **kwargs)
        finally:
            with self._lock:
                self.now -= 1


def _concurrent_takes(engine, tmp_path, seeds, fmt):
    """POST /v1/audio/speech once per seed, all at once; the decoded takes in seed order."""
    from concurrent.futures import ThreadPoolExecutor
    lib = VoiceLibrary(tmp_path / "voices")
    lib.save("alice", sc.AudioClip.from_array(_voice(2.0), 16000), "hello world")
    with TestClient(create_server(engine, lib), raise_server_exceptions=False) as client:
        def one(seed):
            r = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "this is the audio text",
                                                      "voice": "alice", "seed": seed, "response_format": fmt})
            assert r.status_code == 200, r.text
            return sf.read(io.BytesIO(r.content), dtype="float32")[0]
        with ThreadPoolExecutor(len(seeds)) as pool:
            return list(pool.map(one, seeds))


@pytest.mark.parametrize("fmt", ["flac", "wav"])          # the whole-take path and the streamed one
def test_concurrent_requests_reach_the_llm_server_together(tmp_path, remote, server, fmt):
    seeds = [SEED, SEED + 1, SEED + 2]
    alone = _concurrent_takes(remote, tmp_path / "alone", seeds[:1], fmt)[0]
    decode = remote.decoder.token2wav if fmt == "flac" else remote.decoder.stream
    local = _Overlap(decode)                                   # the local models: still one call at a time
    if fmt == "flac":
        remote.decoder.token2wav = local
    else:
        remote.decoder.stream = local
    server.hold_s, server.max_in_flight = 0.5, 0
    takes = _concurrent_takes(remote, tmp_path / "together", seeds, fmt)
    assert server.max_in_flight == len(seeds)                  # every request at the server at once
    assert local.most == 1 and local.now == 0
    np.testing.assert_array_equal(takes[0], alone)             # no request saw another's state
    assert all(t.size == alone.size for t in takes) and not np.array_equal(takes[1], takes[2])


def test_native_engine_stays_one_request_at_a_time(tmp_path, native):
    engine = native.with_options()                             # own instance: the wrapper stays in this test
    llm = _Overlap(engine._generate_rows, hold_s=0.2)
    engine._generate_rows = llm
    _concurrent_takes(engine, tmp_path, [SEED, SEED + 1, SEED + 2], "flac")
    assert llm.most == 1 and llm.now == 0


def test_a_stepped_aside_request_still_counts_as_waiting():
    import threading
    from stepedit_core.service.gate import Gate, step_aside
    gate, inside, leave = Gate(), threading.Event(), threading.Event()

    def holder():
        with gate.hold(), gate.hold():                         # re-entered: the depth comes back too
            with step_aside():
                inside.set()
                leave.wait(5)
            assert gate.owned()

    t = threading.Thread(target=holder)
    t.start()
    assert inside.wait(5)
    assert not gate.owned() and gate.waiting() == 1            # in flight, gate free for the next caller
    with gate.hold():                                          # does not wait for the holder's remote work
        assert gate.waiting() == 2
    leave.set()
    t.join(5)
    assert not t.is_alive() and gate.waiting() == 0
