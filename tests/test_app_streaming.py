"""Streamed actions without a server: the take is its stream, cancel drops it, one GPU allocation per stream."""
from __future__ import annotations

import io
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf

from app_ui.history import TakeTree
from app_ui.runner import CloneJob, EditJob, EngineRunner
from app_ui.studio import Studio, drain, wav_bytes
from stepedit_core.interface import AudioClip, CloneRequest, EditRequest
from tests.fake_engine import FakeEngine


class OwnStream(FakeEngine):
    """A stream that is not the non-streamed take (like the real engine's limited-context decoder)."""

    def _stream_clone(self, request, should_stop):
        for chunk in super()._stream_clone(request, should_stop):
            yield 0.5 * chunk


def _prompt(tmp_path: Path) -> str:
    path = tmp_path / "p.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)).astype(np.float32), 16000)
    return str(path)


def _int16(x: np.ndarray) -> np.ndarray:
    return sf.read(io.BytesIO(wav_bytes(x)), dtype="int16")[0]


def test_a_streamed_take_is_its_stream(tmp_path):
    engine = OwnStream()
    studio = Studio(EngineRunner(engine), tmp_path / "root")
    tree = studio.ensure_workdir(TakeTree(), "s")
    stream = studio.clone_stream(tree, _prompt(tmp_path), "a prompt", "hello streaming world", [5, 6])
    played = []
    while True:
        try:
            played.append(next(stream))
        except StopIteration as stop:
            tree, ids = stop.value
            break
    assert len(played) >= 2 and ids == ["T1", "T2"]
    take = sf.read(tree.get("T1").audio, dtype="int16")[0]
    assert np.array_equal(take, _int16(np.concatenate(played)))                  # the take is what was played
    assert np.array_equal(take, np.concatenate([_int16(c) for c in played]))     # ... chunk by chunk
    clip = AudioClip.from_file(_prompt(tmp_path))
    whole = engine.clone(CloneRequest(clip, "a prompt", "hello streaming world", seed=5)).audio.samples
    assert not np.array_equal(take, _int16(whole))                               # not the non-streamed take
    second = np.concatenate(list(engine.stream_clone(CloneRequest(clip, "a prompt", "hello streaming world", 6))))
    assert np.array_equal(sf.read(tree.get("T2").audio, dtype="int16")[0], _int16(second))   # streamed silently
    assert tree.actions[-1].params["stream"] is True

    edit = studio.edit_stream(tree, "T1", "speed", "slower", None, 9)
    chunks = []
    tree2, (eid,) = None, (None,)
    while True:
        try:
            chunks.append(next(edit))
        except StopIteration as stop:
            tree2, (eid,) = stop.value
            break
    assert tree2.get(eid).parent == "T1"
    assert np.array_equal(sf.read(tree2.get(eid).audio, dtype="int16")[0], _int16(np.concatenate(chunks)))


def test_cancel_stops_the_engine_and_drops_the_partial_take(tmp_path):
    engine = FakeEngine()
    studio = Studio(EngineRunner(engine), tmp_path / "root")
    tree = studio.ensure_workdir(TakeTree(), "s")
    stream = studio.clone_stream(tree, _prompt(tmp_path), "a prompt", "a target text long enough to stream", [1])
    next(stream)
    stream.close()                                    # what Gradio does when the user presses Stop
    assert engine.chunks_streamed == 1                # the engine produced nothing more
    assert len(tree) == 0 and not list(Path(tree.workdir).glob("T*.wav"))


def test_a_recipe_of_streamed_takes_replays_bit_identically(tmp_path):
    studio = Studio(EngineRunner(OwnStream()), tmp_path / "root")
    tree = studio.ensure_workdir(TakeTree(), "a")
    tree, _ = drain(studio.clone_stream(tree, _prompt(tmp_path), "p", "replay the stream", [3]))
    tree, _ = drain(studio.edit_stream(tree, "T1", "emotion", "happy", None, 4))
    recipe = studio.export_recipe(tree)
    other = studio.ensure_workdir(TakeTree(), "b")
    _, _, report = studio.replay(other, recipe)
    assert "2/2 are bit-identical" in report


def _generator_gpu(log: list, fail_after: int | None = None, quota: bool = False):
    """Stands in for ``spaces.GPU``: a generator island runs in one allocation and relays each yield."""
    def gpu(duration=None, **_kw):
        def wrap(fn):
            def call(job):
                log.append(duration(job))             # one allocation, sized like the plain island
                if quota:
                    raise gr.Error("ZeroGPU quota exceeded", title="ZeroGPU quota exceeded")
                for i, chunk in enumerate(fn(job)):
                    if fail_after is not None and i == fail_after:
                        raise RuntimeError("worker died")
                    yield chunk
            return call
        return wrap
    return gpu


def test_a_stream_is_one_gpu_allocation_with_a_cpu_fallback(tmp_path):
    clip = AudioClip.from_file(_prompt(tmp_path))
    job = CloneJob((CloneRequest(clip, "p", "a target text long enough to stream", seed=2),))
    allocations: list = []
    chunks = list(EngineRunner(FakeEngine(), gpu=_generator_gpu(allocations), zero_gpu=True).stream(job))
    assert len(chunks) >= 3 and len(allocations) == 1
    plain = list(EngineRunner(FakeEngine()).stream(job))
    assert all(np.array_equal(a, b) for a, b in zip(chunks, plain)) and len(chunks) == len(plain)

    quota: list = []                                   # no GPU: the stream runs on the CPU instead
    fallback = list(EngineRunner(FakeEngine(), gpu=_generator_gpu(quota, quota=True), zero_gpu=True).stream(job))
    assert len(quota) == 1 and len(fallback) == len(plain)
    with pytest.raises(gr.Error, match="needs a GPU"):
        list(EngineRunner(FakeEngine(device="cuda"), gpu=_generator_gpu([], quota=True), zero_gpu=True).stream(job))
    with pytest.raises(gr.Error, match="(?i)engine failed.*worker died"):   # half played: no silent restart from the start
        list(EngineRunner(FakeEngine(), gpu=_generator_gpu([], fail_after=1), zero_gpu=True).stream(job))
    with pytest.raises(gr.Error, match="one round"):
        list(EngineRunner(FakeEngine()).stream(EditJob(EditRequest(clip, "x", "speed", "slower", n_iterations=2))))


class CountingEngine(FakeEngine):
    """Writes one line per produced chunk to a file, so a chunk made in a forked worker is seen here."""

    def __init__(self, log: Path, **kw):
        super().__init__(**kw)
        self.log = log

    def _stream_pieces(self, wav, should_stop):
        for chunk in super()._stream_pieces(wav, should_stop):
            with self.log.open("a") as f:
                f.write("chunk\n")
            yield chunk


@pytest.mark.filterwarnings("ignore:Error while reading infos from Nvidia driver FS")
def test_stop_on_zerogpu_stops_the_worker(tmp_path, monkeypatch):
    """The real ``spaces`` generator wrapper (its scheduler stubbed): the stream runs in a forked worker;
    closing the stream in the app process (Gradio's Stop) stops the engine in the worker after at most the
    chunk in progress, and the worker's island closes the engine's stream."""
    import importlib
    import multiprocessing
    import sys
    import time
    from types import ModuleType, SimpleNamespace

    torch_stub = ModuleType("spaces.zero.torch")      # spaces' CUDA hand-over; this torch has no CUDA
    torch_stub.enter_mode = lambda: None
    monkeypatch.setitem(sys.modules, "spaces.zero.torch", torch_stub)
    monkeypatch.delitem(sys.modules, "spaces.zero.wrappers", raising=False)
    wrappers = importlib.import_module("spaces.zero.wrappers")
    monkeypatch.delitem(sys.modules, "spaces.zero.wrappers")

    monkeypatch.setattr(wrappers.client, "schedule", lambda **kw: SimpleNamespace(
        allowToken="token", nvidiaIndex=0, nvidiaUUID="uuid", idle=True))
    monkeypatch.setattr(wrappers.client, "release", lambda *a, **kw: None)
    monkeypatch.setattr(wrappers.client, "get_duration_seconds", lambda *a, **kw: 60)
    monkeypatch.setattr(wrappers.client, "duration_warning", lambda *a, **kw: None)
    monkeypatch.setattr(wrappers, "worker_init", lambda **kw: None)      # no CUDA to hand over

    def zero_gpu(duration=None, **_kw):
        return lambda fn: wrappers.generator_function_wrapper(fn, duration, None)

    log = tmp_path / "chunks.log"
    engine = CountingEngine(log, stream_delay=0.2)
    clip = AudioClip.from_file(_prompt(tmp_path))
    job = CloneJob((CloneRequest(clip, "p", "a target text that is long enough to stream in many chunks",
                                 seed=2),))
    total = len(list(EngineRunner(FakeEngine()).stream(job)))
    assert total >= 8
    before = set(multiprocessing.active_children())
    stream = EngineRunner(engine, gpu=zero_gpu, zero_gpu=True).stream(job)
    first = next(stream)
    assert len(first) > 0
    stream.close()                                    # what Gradio does when the user presses Stop
    time.sleep(8 * 0.2)                               # long enough for the worker to make 8 more chunks
    made = log.read_text().count("chunk")
    for worker in set(multiprocessing.active_children()) - before:     # spaces keeps its worker for reuse
        worker.terminate()
    assert made <= 3, f"the worker went on after Stop: {made} of {total} chunks"
