"""The take tree of one session: every generated clip is a *take*; every user action adds takes.

A take has at most one parent (the take it was edited from), so the history is a forest: clone candidates
and uploaded recordings are roots, edits are children, and any take can be the base of the next edit
(branching). Undo removes the most recent action and its takes; because actions are undone newest first,
an undone take never has surviving children.

The tree is immutable (every operation returns a new tree) and holds only paths and small metadata, never
arrays, so ``gr.State`` copies it cheaply and an error half-way through an event cannot corrupt it.

A *recipe* is the tree's actions as JSON: sources (prompt / uploaded audio, embedded as base64 file bytes),
parameters and seeds. Replaying it re-runs the actions in order and reproduces the takes.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator

RECIPE_FORMAT = "stepedit-recipe"
RECIPE_VERSION = 1

# Action kinds: a clone (one or more candidates), an uploaded recording, or an edit of an existing take.
CLONE, UPLOAD, EDIT = "clone", "upload", "edit"
ACTION_KINDS = (CLONE, UPLOAD, EDIT)


@dataclass(frozen=True)
class Take:
    id: str                    # "T1", "T2", ... in creation order
    parent: str | None         # the take this one was edited from; None for roots
    action: str                # id of the action that created it
    op: str                    # "clone" | "upload" | an edit type ("emotion", "speed", ...)
    option: str | None         # edit option ("happy", "faster", ...), None if the op takes none
    seed: int | None           # the seed that produced this take (round seed for iterated edits)
    index: int                 # candidate number (clone) or round number (edit), 1-based
    text: str                  # transcript of the take (with [tags] after a paralinguistic edit)
    audio: str                 # wav file on disk
    duration: float            # seconds
    sha256: str = ""           # of the wav file bytes, to check a replay
    check: dict | None = None  # the take check (stepedit_core.checks.TakeCheck.to_dict()), None if not run


@dataclass(frozen=True)
class Action:
    id: str                    # "A1", "A2", ...
    kind: str                  # CLONE | UPLOAD | EDIT
    parent: str | None         # base take of an edit
    params: dict               # JSON-able request parameters (source audio as a path under "source")
    seeds: tuple[int, ...]     # one per clone candidate; the request seed of an edit; () for uploads
    takes: tuple[str, ...]     # ids of the takes it created, in order


@dataclass(frozen=True)
class TakeTree:
    actions: tuple[Action, ...] = ()
    takes: tuple[Take, ...] = ()
    next_take: int = 1
    next_action: int = 1
    workdir: str | None = None          # per-session folder holding the wav files
    focus: str | None = None            # the take the UI should select after the last change

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self.takes)

    def get(self, take_id: str | None) -> Take:
        for t in self.takes:
            if t.id == take_id:
                return t
        raise KeyError(f"no take {take_id!r} in this session")

    def has(self, take_id: str | None) -> bool:
        return any(t.id == take_id for t in self.takes)

    def children(self, take_id: str | None) -> list[Take]:
        return [t for t in self.takes if t.parent == take_id]

    def lineage(self, take_id: str) -> list[Take]:
        """The path from a root down to ``take_id`` (inclusive)."""
        path, t = [], self.get(take_id)
        while True:
            path.append(t)
            if t.parent is None:
                return path[::-1]
            t = self.get(t.parent)

    def latest(self) -> Take | None:
        return self.takes[-1] if self.takes else None

    def walk(self) -> Iterator[tuple[Take, int, bool]]:
        """Depth-first (take, depth, is_last_child) in display order: roots in creation order."""
        def visit(t: Take, depth: int, last: bool):
            yield t, depth, last
            kids = self.children(t.id)
            for i, k in enumerate(kids):
                yield from visit(k, depth + 1, i == len(kids) - 1)
        roots = self.children(None)
        for i, r in enumerate(roots):
            yield from visit(r, 0, i == len(roots) - 1)

    # ------------------------------------------------------------------ updates
    def add(self, kind: str, parent: str | None, params: dict, seeds: tuple[int, ...],
            takes: list[dict]) -> tuple["TakeTree", list[str]]:
        """Record an action and its takes; ``takes`` are Take fields without id/parent/action.

        Round k of an iterated edit is the child of round k-1 (the parent of round 1 is ``parent``); clone
        candidates and uploads are roots.
        """
        if kind not in ACTION_KINDS:
            raise ValueError(f"unknown action kind {kind!r}")
        if parent is not None and not self.has(parent):
            raise KeyError(f"no take {parent!r} in this session")
        action_id = f"A{self.next_action}"
        new, ids, prev = [], [], parent
        for i, fields in enumerate(takes):
            take_id = f"T{self.next_take + i}"
            take_parent = prev if kind == EDIT else None
            new.append(Take(id=take_id, parent=take_parent, action=action_id, **fields))
            ids.append(take_id)
            prev = take_id
        action = Action(id=action_id, kind=kind, parent=parent, params=dict(params), seeds=tuple(seeds),
                        takes=tuple(ids))
        focus = ids[-1] if kind == EDIT else (ids[0] if ids else self.focus)
        return replace(self, actions=self.actions + (action,), takes=self.takes + tuple(new), focus=focus,
                       next_take=self.next_take + len(new), next_action=self.next_action + 1), ids

    def undo(self) -> tuple["TakeTree", Action | None]:
        """Remove the most recent action and its takes (the counters keep going: ids are never reused)."""
        if not self.actions:
            return self, None
        last = self.actions[-1]
        gone = set(last.takes)
        takes = tuple(t for t in self.takes if t.id not in gone)
        focus = last.parent if last.parent is not None else (takes[-1].id if takes else None)
        return replace(self, actions=self.actions[:-1], takes=takes, focus=focus), last

    def with_workdir(self, workdir: str) -> "TakeTree":
        return replace(self, workdir=workdir)

    # ------------------------------------------------------------------ (de)serialisation
    def summary(self) -> dict:
        """JSON-able view for API clients: takes in creation order with their lineage."""
        return {"takes": [{**asdict(t), "audio": Path(t.audio).name} for t in self.takes],
                "actions": [{"id": a.id, "kind": a.kind, "parent": a.parent, "seeds": list(a.seeds),
                             "takes": list(a.takes),
                             "params": {k: v for k, v in a.params.items() if k != "source"}}
                            for a in self.actions]}


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- recipes
def to_recipe(tree: TakeTree, engine: str = "") -> dict:
    """The tree's actions as a self-contained JSON recipe (source audio embedded)."""
    sources: dict[str, dict] = {}
    actions = []
    for a in tree.actions:
        params = dict(a.params)
        src = params.pop("source", None)
        if src is not None:
            data = Path(src).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            key = digest[:16]
            sources.setdefault(key, {"name": Path(src).name, "sha256": digest,
                                     "data": base64.b64encode(data).decode("ascii")})
            params["source"] = key
        actions.append({"id": a.id, "kind": a.kind, "parent": a.parent, "params": params,
                        "seeds": list(a.seeds), "takes": list(a.takes)})
    expected = {t.id: {"seed": t.seed, "duration": round(t.duration, 4), "sha256": t.sha256, "text": t.text,
                       **({"check": {k: v for k, v in t.check.items() if k != "words"}} if t.check else {})}
                for t in tree.takes}
    return {"format": RECIPE_FORMAT, "version": RECIPE_VERSION, "engine": engine, "actions": actions,
            "expected": expected, "sources": sources}


def parse_recipe(text: str | bytes) -> dict:
    """Load and check a recipe; raises ValueError with a readable message."""
    try:
        recipe = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"the recipe is not valid JSON ({exc})") from exc
    if not isinstance(recipe, dict) or recipe.get("format") != RECIPE_FORMAT:
        raise ValueError(f"not a {RECIPE_FORMAT} file")
    if recipe.get("version") != RECIPE_VERSION:
        raise ValueError(f"unsupported recipe version {recipe.get('version')!r} (this app reads {RECIPE_VERSION})")
    known_takes: set[str] = set()
    for a in recipe.get("actions", []):
        if a.get("kind") not in ACTION_KINDS:
            raise ValueError(f"action {a.get('id')!r} has unknown kind {a.get('kind')!r}")
        if a["kind"] == EDIT and a.get("parent") not in known_takes:
            raise ValueError(f"action {a.get('id')!r} edits take {a.get('parent')!r}, which no earlier action made")
        src = a.get("params", {}).get("source")
        if a["kind"] != EDIT and src not in recipe.get("sources", {}):
            raise ValueError(f"action {a.get('id')!r} needs source audio {src!r}, which the recipe does not hold")
        known_takes.update(a.get("takes", []))
    return recipe


def recipe_source_bytes(recipe: dict, key: str) -> tuple[str, bytes]:
    """(file name, bytes) of an embedded source; the hash is checked."""
    src = recipe["sources"][key]
    data = base64.b64decode(src["data"])
    if hashlib.sha256(data).hexdigest() != src["sha256"]:
        raise ValueError(f"source audio {src.get('name')!r} in the recipe is corrupt (hash mismatch)")
    return src.get("name") or f"{key}.wav", data
