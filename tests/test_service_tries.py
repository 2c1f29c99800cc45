"""The tries of one Service.best_of (CLI --tries, HTTP max_tries, the app's tries) decoded as one batch on the
tiny checkpoint (fp32): one batched call for every try, checked in seed order, the first passing try wins, and
each kept take equals the take the same seed gives alone (and the sequential rule's answer)."""
from __future__ import annotations

import json
import pickle
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stepedit_core import checks, cli
from stepedit_core.batching import MAX_BATCH
from stepedit_core.errors import InvalidInputError
from stepedit_core.interface import AudioClip, CloneRequest, EditRequest
from stepedit_core.server import TAKE_HEADER
from stepedit_core.service import Service
from stepedit_core.service.speech import SpeechPlan, Step
from stepedit_core.service.tries import same_but_seed
from tests.test_engine import _clip, base_engine, engine, one_thread, tiny_model_path  # noqa: F401 (fixtures)
from tests.fake_engine import SR as FAKE_SR
from tests.fake_engine import FakeEngine
from tests.test_engine_batch import _same_take
from tests.test_server import make_client, speech

TARGET = "the voice says hello to the world"
WRONG = "nothing like it at all"
THRESHOLD = 0.1


def hearing(texts: list[str], then: str = TARGET) -> checks.Checker:
    """A checker that hears ``texts`` in the order takes are checked (then ``then``), same voice always."""
    heard = iter(texts)
    return checks.Checker(lambda clip, lang: checks.Heard(next(heard, then), lang, ()),
                          lambda clip: np.array([1.0, 0.0]), "spectral")


@pytest.fixture()
def calls(engine, monkeypatch):
    """The engine's clone / edit entries, recorded as (name, seeds)."""
    made = []
    for name in ("clone", "edit"):
        alone = getattr(engine, name)
        monkeypatch.setattr(engine, name, lambda r, p=None, _n=name, _f=alone: made.append((_n, [r.seed])) or _f(r, p))
        batch = getattr(engine, f"{name}_batch")
        monkeypatch.setattr(engine, f"{name}_batch", lambda r, s, p=None, _n=name, _f=batch:
                            made.append((f"{_n}_batch", list(s))) or _f(r, s, p))
    return made


def clone_request() -> CloneRequest:
    return CloneRequest(_clip(2.0, seed=1), "hello world", TARGET)


def test_tries_of_a_clone_are_one_batch_checked_in_seed_order(engine, calls):
    service = Service(engine, checker=hearing([WRONG, WRONG]))
    request = clone_request()
    kept = service.best_of(lambda s: [service.clone(replace(request, seed=s))], None, 11, 3, THRESHOLD)
    assert calls == [("clone_batch", [11, 12, 13])]                  # one prefill, one batched decode
    assert kept.seeds == [11, 12, 13] and kept.takes[-1].seed == 13
    assert [t["verdict"] for t in kept.tried][:2] == ["red", "red"]
    assert kept.takes[-1].metadata["batch_seeds"] == (11, 12, 13)    # what replay needs, on the take
    assert all(t["batch_seeds"] == [11, 12, 13] for t in kept.tried)  # and in the tries' record (recipes)
    calls.clear()
    one_by_one = Service(engine, checker=hearing([WRONG, WRONG])).best_of(
        lambda s: [service.clone(replace(request, seed=s))], None, 11, 3, THRESHOLD, batch=False)
    assert calls == [("clone", [11]), ("clone", [12]), ("clone", [13])]
    assert one_by_one.tried == [{k: v for k, v in t.items() if k != "batch_seeds"} for t in kept.tried]
    _same_take(kept.takes[-1], one_by_one.takes[-1])                 # fp32: the batch changes no bit


def test_a_first_try_that_passes_ends_the_tries(engine, calls):
    service = Service(engine, checker=hearing([]))
    request = clone_request()
    kept = service.best_of(lambda s: [service.clone(replace(request, seed=s))], None, 21, 3, THRESHOLD)
    assert calls == [("clone_batch", [21, 22, 23])] and kept.seeds == [21]
    _same_take(kept.takes[0], engine.clone(replace(request, seed=21)))


def test_edit_tries_batch_one_round_edits_only(engine, calls):
    service = Service(engine, checker=hearing([WRONG], "hello world"))
    request = EditRequest(_clip(2.0, seed=3), "hello world", "emotion", "happy")
    kept = service.best_of(lambda s: service.edit(replace(request, seed=s)), None, 31, 2, THRESHOLD)
    assert calls == [("edit_batch", [31, 32])] and kept.seeds == [31, 32]
    _same_take(kept.takes[-1], engine.edit(replace(request, seed=32))[-1])
    calls.clear()
    rounds = replace(request, n_iterations=2)        # round 2 of every seed would be made before its check
    service = Service(engine, checker=hearing([WRONG], "hello world"))
    kept = service.best_of(lambda s: service.edit(replace(rounds, seed=s)), None, 31, 2, THRESHOLD)
    assert calls == [("edit", [31]), ("edit", [32])] and len(kept.takes) == 2


def test_a_speech_plan_batches_its_clone_and_edits_each_try_alone(engine, calls):
    """CLI --tries and HTTP max_tries run a speech plan per try (Service.speak): its clone is batched, the edit
    of each try's own take runs alone; the kept run equals the sequential one."""
    plan = SpeechPlan(clone=clone_request(), edits=(Step("emotion", "happy"),))
    runs = {}
    for batch in (True, False):
        service = Service(engine, checker=hearing([WRONG]))
        calls.clear()
        runs[batch] = service.best_of(lambda s: service.speak(replace(plan, clone=replace(plan.clone, seed=s))),
                                      None, 41, 3, THRESHOLD, batch=batch)
        assert [name for name, _ in calls] == (["clone_batch", "edit", "edit"] if batch else
                                               ["clone", "edit", "clone", "edit"])
    assert [t["error_rate"] for t in runs[True].tried] == [t["error_rate"] for t in runs[False].tried]
    assert runs[True].seeds == [41, 42] and "batch_seeds" not in runs[False].tried[0]
    for a, b in zip(runs[True].takes, runs[False].takes):
        _same_take(a, b)


def test_a_batch_over_the_work_cap_falls_back_to_one_try_at_a_time(engine, calls, monkeypatch):
    request = clone_request()
    one = engine.estimate_seconds("clone", 2.0, len(TARGET))
    two = engine.estimate_seconds("clone", 2.0, len(TARGET), candidates=2)
    monkeypatch.setattr(engine, "request_cap", lambda: (one + two) / 2)
    service = Service(engine, checker=hearing([WRONG]))
    kept = service.best_of(lambda s: [service.clone(replace(request, seed=s))], None, 51, 2, THRESHOLD)
    assert calls == [("clone_batch", [51, 52]), ("clone", [51]), ("clone", [52])] and kept.seeds == [51, 52]
    assert not any("batch_seeds" in t for t in kept.tried)


def test_engines_that_do_not_batch_run_the_tries_one_after_another():
    fake = FakeEngine()
    made = []
    service = Service(fake, checker=hearing([WRONG]))
    request = CloneRequest(_clip(1.0), "hi there", TARGET)
    kept = service.best_of(lambda s: made.append(s) or [service.clone(replace(request, seed=s))], None, 7, 3,
                           THRESHOLD)
    assert made == [7, 8] and kept.seeds == [7, 8] and "batch_seeds" not in kept.takes[-1].metadata


def test_only_the_seed_may_differ_for_a_try_to_be_served_from_the_batch():
    request = clone_request()
    assert same_but_seed(request, replace(request, seed=99))
    assert not same_but_seed(request, replace(request, target_text="another line"))
    assert not same_but_seed(request, replace(request, prompt_audio=_clip(2.0, seed=1)))   # another clip object
    assert not same_but_seed(request, EditRequest(request.prompt_audio, "hello world", "emotion", "happy"))


# ---------------------------------------------------------------------------- the doors (fake engine with batches)
class BatchingFake(FakeEngine):
    """The fake engine with batch entries whose takes are the takes made alone; every call recorded."""

    def __init__(self):
        super().__init__()
        self.made: list[tuple[str, list[int]]] = []

    def clone(self, request, progress=None):
        self.made.append(("clone", [request.seed]))
        return super().clone(request, progress)

    def clone_batch(self, request, seeds, progress=None):
        self.made.append(("clone_batch", list(seeds)))
        return [FakeEngine.clone(self, replace(request, seed=s), progress) for s in seeds]


def test_cli_tries_decode_as_one_batch(tmp_path, capsys):
    """``--tries``: seed 6 loses a word in the fake ASR, so 6 and 7 are checked, all three made at once."""
    tone = tmp_path / "tone.wav"
    sf.write(tone, 0.3 * np.sin(2 * np.pi * 220 * np.arange(FAKE_SR) / FAKE_SR), FAKE_SR)
    fake = BatchingFake()
    code = cli.main(["clone", "--prompt", str(tone), "--prompt-text", "a tone", "--text", "one two three four",
                     "--seed", "6", "--tries", "3", "--threshold", "0", "-o", str(tmp_path / "o.wav"), "--json",
                     "-q"], engine=fake)
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["seeds_tried"] == [6, 7] and record["seed"] == 7
    assert fake.made == [("clone_batch", [6, 7, 8])]


def test_http_max_tries_decode_as_one_batch(tmp_path):
    fake = BatchingFake()
    with make_client(tmp_path, fake) as client:
        r = speech(client, seed=6, max_tries=3, threshold=0, response_format="flac")
    take = json.loads(r.headers[TAKE_HEADER])
    assert r.status_code == 200 and take["seeds_tried"] == [6, 7] and take["seed"] == 7
    assert fake.made == [("clone_batch", [6, 7, 8])]
    assert [t["batch_seeds"] for t in take["tries"]] == [[6, 7, 8], [6, 7, 8]]


def test_more_tries_than_a_batch_takes_batch_the_first_ones():
    fake = BatchingFake()
    service = Service(fake, checker=hearing([WRONG] * 9))
    request = CloneRequest(_clip(1.0), "hi there", TARGET)
    kept = service.best_of(lambda s: [service.clone(replace(request, seed=s))], None, 7, 9, THRESHOLD)
    assert fake.made == [("clone_batch", list(range(7, 7 + MAX_BATCH))), ("clone", [7 + MAX_BATCH])]
    assert kept.seeds == list(range(7, 16)) and "batch_seeds" not in kept.tried[-1]


# ---------------------------------------------------------------------------- the app on ZeroGPU
def worker_gpu(calls: list[str]):
    """A ``spaces.GPU`` stand-in that behaves like a ZeroGPU worker: every call is recorded, the job and its
    result cross a pickle, and the work runs on another thread (it sees none of the caller's thread state)."""
    def gpu(duration=None, **_kw):
        def wrap(fn):
            def call(job):
                calls.append(type(job).__name__)
                assert duration(job) > 0
                box = {}

                def work():
                    try:
                        box["out"] = pickle.dumps(fn(pickle.loads(pickle.dumps(job))))
                    except BaseException as exc:  # noqa: BLE001 -- handed back to the caller as the worker does
                        box["err"] = exc
                worker = threading.Thread(target=work)
                worker.start()
                worker.join()
                if "err" in box:
                    raise box["err"]
                return pickle.loads(box["out"])
            return call
        return wrap
    return gpu


def _studio_clone(tmp_path, fake, zero_gpu: bool, gpu_calls: list[str]):
    from app_ui.history import TakeTree
    from app_ui.runner import EngineRunner
    from app_ui.studio import Studio
    from tests.test_app_units import _prompt
    gpu = worker_gpu(gpu_calls) if zero_gpu else None          # off ZeroGPU the decorator is the identity
    studio = Studio(EngineRunner(fake, gpu=gpu, zero_gpu=zero_gpu), tmp_path / f"root{zero_gpu}")
    tree = studio.ensure_workdir(TakeTree(), "s")
    tree, ids = studio.clone(tree, _prompt(tmp_path), "a tone", "one two three four", [6], max_tries=3,
                             threshold=0)
    return tree, ids


@pytest.mark.parametrize("zero_gpu", [True, False])
def test_app_tries_are_one_batch_on_zerogpu_too(tmp_path, zero_gpu):
    """Seed 6 loses a word in the fake ASR: tries 6 and 7 are checked, all three made in ONE engine call; on
    ZeroGPU that is one GPU call (a TryBatchJob), and try 7 is served from it without a GPU call of its own."""
    fake, gpu_calls = BatchingFake(), []
    tree, ids = _studio_clone(tmp_path, fake, zero_gpu, gpu_calls)
    assert fake.made == [("clone_batch", [6, 7, 8])]
    assert gpu_calls == (["TryBatchJob"] if zero_gpu else [])
    retry = tree.actions[-1].params["retry"]
    assert [t["seed"] for t in retry["tried"]] == [6, 7] and tree.get(ids[0]).seed == 7
    assert all(t["batch_seeds"] == [6, 7, 8] for t in retry["tried"])


def test_app_tries_on_zerogpu_run_alone_when_the_batch_is_refused(tmp_path):
    class RefusingFake(BatchingFake):
        def clone_batch(self, request, seeds, progress=None):
            self.made.append(("clone_batch", list(seeds)))
            raise InvalidInputError(f"these {len(seeds)} candidates would take too long")
    fake, gpu_calls = RefusingFake(), []
    tree, ids = _studio_clone(tmp_path, fake, True, gpu_calls)
    # as off ZeroGPU: a refused batch runs its try alone, and the next try asks for a smaller batch
    assert fake.made == [("clone_batch", [6, 7, 8]), ("clone", [6]), ("clone_batch", [7, 8]), ("clone", [7])]
    assert gpu_calls == ["TryBatchJob", "CloneJob", "TryBatchJob", "CloneJob"]
    assert tree.get(ids[0]).seed == 7 and "batch_seeds" not in tree.actions[-1].params["retry"]["tried"][0]


def test_app_edit_tries_are_one_gpu_call_on_zerogpu(tmp_path):
    class EditBatchingFake(BatchingFake):
        def edit(self, request, progress=None):
            self.made.append(("edit", [request.seed]))
            return FakeEngine.edit(self, request, progress)

        def edit_batch(self, request, seeds, progress=None):
            self.made.append(("edit_batch", list(seeds)))
            return [FakeEngine.edit(self, replace(request, seed=s), progress) for s in seeds]
    fake, gpu_calls = EditBatchingFake(), []
    tree, ids = _studio_clone(tmp_path, fake, True, gpu_calls)
    fake.made.clear()
    gpu_calls.clear()
    from app_ui.runner import EngineRunner
    from app_ui.studio import Studio
    studio = Studio(EngineRunner(fake, gpu=worker_gpu(gpu_calls), zero_gpu=True), tmp_path / "root-edit")
    tree = studio.ensure_workdir(tree, "s")
    tree, new = studio.edit(tree, ids[0], "emotion", "happy", None, 1, 30, max_tries=2, threshold=0)
    assert fake.made == [("edit_batch", [30, 31])] and gpu_calls == ["TryBatchJob"]
    assert [t["seed"] for t in tree.actions[-1].params["retry"]["tried"]][0] == 30


class BatchDependentFake(BatchingFake):
    """Like the int8 engine: a row made in a batch is not bit-identical to the same seed made alone (its audio
    depends on the batch's seeds), so only a replay that remakes the batch gives the recorded take back."""

    @staticmethod
    def _in(result, seeds):
        factor = 1.0 - 1e-3 * (sum(seeds) % 7 + 1)
        return replace(result, audio=AudioClip.from_array(result.audio.samples * factor, result.audio.sample_rate),
                       metadata={**result.metadata, "batch_seeds": tuple(seeds)})

    def clone_batch(self, request, seeds, progress=None):
        self.made.append(("clone_batch", list(seeds)))
        return [self._in(FakeEngine.clone(self, replace(request, seed=s), progress), seeds) for s in seeds]

    def edit(self, request, progress=None):
        self.made.append(("edit", [request.seed]))
        return FakeEngine.edit(self, request, progress)

    def edit_batch(self, request, seeds, progress=None):
        self.made.append(("edit_batch", list(seeds)))
        return [[self._in(r, seeds) for r in FakeEngine.edit(self, replace(request, seed=s), progress)]
                for s in seeds]


@pytest.mark.parametrize("zero_gpu", [True, False])
def test_a_recipe_of_tries_made_in_a_batch_replays_bit_identically(tmp_path, zero_gpu):
    from app_ui.history import TakeTree
    from app_ui.runner import EngineRunner
    from app_ui.studio import Studio
    from tests.test_app_units import _prompt
    fake, gpu_calls = BatchDependentFake(), []
    gpu = worker_gpu(gpu_calls) if zero_gpu else None
    studio = Studio(EngineRunner(fake, gpu=gpu, zero_gpu=zero_gpu), tmp_path / "root")
    tree = studio.ensure_workdir(TakeTree(), "s")
    tree, ids = studio.clone(tree, _prompt(tmp_path), "a tone", "one two three four", [6], max_tries=3,
                             threshold=0)
    tree, _ = studio.edit(tree, ids[0], "emotion", "happy", None, 1, 30, max_tries=2, threshold=0)
    assert [name for name, _ in fake.made] == ["clone_batch", "edit_batch"]
    recipe = studio.export_recipe(tree)
    fake.made.clear()
    _, _, report = studio.replay(studio.ensure_workdir(TakeTree(), "r"), recipe)
    assert "2/2 are bit-identical" in report
    assert fake.made == [("clone_batch", [6, 7, 8]), ("edit_batch", [30, 31])]
    old = json.loads(Path(recipe).read_text(encoding="utf-8"))     # without the grouping: the seeds alone
    for action in old["actions"]:
        for t in action["params"]["retry"]["tried"]:
            t.pop("batch_seeds", None)
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    _, _, report = studio.replay(studio.ensure_workdir(TakeTree(), "o"), str(tmp_path / "old.json"))
    assert "0/2 are bit-identical" in report
