"""The tries of one ``Service.best_of`` decoded as one batch, whatever door's ``run(seed)`` makes them.

A door hands ``best_of`` a ``run(seed) -> takes`` (a clone, a speech plan, an edit) and the service re-rolls
seeds s, s+1, ... until a take passes its check. With an engine that batches (one prefill, one batched decode:
stepedit_core.batching), the FIRST engine call of try 1 is made for every remaining try at once
(``Engine.clone_batch`` / ``edit_batch``); the takes of the later seeds wait here, and try k's first call is
served from them when its request is try 1's with only the seed changed. Later calls of a try (the edits of
a speech plan, which work on that try's own take) run as they are. The tries are then checked in seed order
and the first passing one wins, as one after another; a take made in a batch records the seeds decoded with it
(``metadata["batch_seeds"]``), which is what replay needs (stepedit_core.batching).

Not batched, one after another as before: engines that do not batch (the lite engine), an edit of several
rounds (each later round would be made for every seed before its check), a batch the work cap or the memory
bound refuses (the try alone may still fit), and calls whose request differs from try 1's beyond the seed.
The scope is per thread (doors run each request in one thread).
"""
from __future__ import annotations

import dataclasses
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from ..batching import MAX_BATCH
from ..errors import InvalidInputError
from ..interface import CloneRequest, EditRequest, Engine, EngineResult, Progress

CLONE, EDIT = "clone", "edit"


def same_but_seed(a, b) -> bool:
    """Whether two requests of one type differ at most in their seed (objects such as clips by identity:
    a door's ``replace(request, seed=s)`` keeps them)."""
    if type(a) is not type(b):
        return False
    for f in dataclasses.fields(a):
        if f.name == "seed":
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x is y:
            continue
        if not isinstance(x, (str, int, float, bool, type(None))) or x != y:
            return False
    return True


class TryBatch:
    """The seeds of one best_of and the takes made ahead for them. ``begin(seed)`` before each try; the
    service routes the try's engine calls through :meth:`clone` / :meth:`edit`."""

    def __init__(self, seeds: Sequence[int]):
        self.seeds = [int(s) for s in seeds]
        self.seed: int | None = None          # the try under way
        self.calls = 0                        # engine calls made by it so far
        self.kind: str | None = None          # what try 1's first call was, and its request
        self.request = None
        self.ahead: dict[int, object] = {}    # seed -> its first call's result, made in the batch
        self.batch_seeds: tuple[int, ...] = ()  # the seeds decoded together (replay re-runs them as one batch)
        self.served: set[int] = set()         # tries whose first call came from the batch

    def begin(self, seed: int) -> None:
        self.seed, self.calls = int(seed), 0

    def record(self, seed: int) -> dict:
        """What a try's record gains when its first call was made in the batch: ``{"batch_seeds": [...]}``."""
        return {"batch_seeds": list(self.batch_seeds)} if int(seed) in self.served else {}

    def clone(self, engine: Engine, request: CloneRequest, progress: Progress | None,
              batches: bool | None = None) -> EngineResult:
        """Try k's clone: made alone, or served from (or made as) the batch. ``engine`` may be a stand-in with
        the Engine's four entries (the app's GPU calls on ZeroGPU); ``batches`` then says whether the engine
        behind it batches (default: whether ``engine`` overrides ``Engine.clone_batch``)."""
        if batches is None:
            batches = type(engine).clone_batch is not Engine.clone_batch
        return self._call(CLONE, request, lambda: engine.clone(request, progress),
                          lambda seeds: engine.clone_batch(request, seeds, progress), batches=batches)

    def edit(self, engine: Engine, request: EditRequest, progress: Progress | None,
             batches: bool | None = None) -> list[EngineResult]:
        """Try k's edit, as :meth:`clone`; an edit of several rounds is never batched."""
        if batches is None:
            batches = type(engine).edit_batch is not Engine.edit_batch
        return self._call(EDIT, request, lambda: engine.edit(request, progress),
                          lambda seeds: engine.edit_batch(request, seeds, progress),
                          batches=batches and request.n_iterations == 1)

    def _call(self, kind: str, request, alone: Callable, batch: Callable[[list[int]], list], batches: bool):
        first, self.calls = self.calls == 0, self.calls + 1
        if not first or self.seed is None or request.seed != self.seed:
            return alone()
        if self.seed in self.ahead:
            if kind == self.kind and same_but_seed(request, self.request):
                self.served.add(self.seed)
                return self.ahead.pop(self.seed)
            self.ahead.clear()                # the tries ask for different work: no row made ahead fits
            return alone()
        rest = self.seeds[self.seeds.index(self.seed):][:MAX_BATCH] if self.seed in self.seeds else []
        if not batches or len(rest) < 2 or self.kind is not None:
            return alone()
        try:
            made = batch(rest)
        except InvalidInputError:             # the batch is over the cap / memory bound: the try alone
            return alone()
        self.kind, self.request, self.batch_seeds = kind, request, tuple(rest)
        self.ahead = dict(zip(rest[1:], made[1:]))
        self.served.add(self.seed)
        return made[0]


class TryScopes:
    """The TryBatch of the best_of running in this thread, if any."""

    def __init__(self):
        self._local = threading.local()

    def current(self) -> TryBatch | None:
        return getattr(self._local, "batch", None)

    @contextmanager
    def open(self, seeds: Sequence[int]) -> Iterator[TryBatch]:
        outer = self.current()
        self._local.batch = TryBatch(seeds)
        try:
            yield self._local.batch
        finally:
            self._local.batch = outer

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """No TryBatch in this thread for a while: work that stands for another process (a ZeroGPU worker,
        which cannot hand rows made ahead back to this one) must make only what it is asked for."""
        outer = self.current()
        self._local.batch = None
        try:
            yield
        finally:
            self._local.batch = outer


__all__ = ["TryBatch", "TryScopes", "same_but_seed"]
