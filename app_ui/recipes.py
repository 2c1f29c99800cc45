"""Recipes of a session: export the take tree's actions with their seeds and sources, and replay a recipe into a
session (every action re-run with its seeds; the report counts takes bit-identical to the recipe's)."""
from __future__ import annotations

import binascii
import json
import uuid
from pathlib import Path

import gradio as gr

from stepedit_core import validation

from . import history
from .history import TakeTree
from .runner import error_message
from .takes_io import MAX_CANDIDATES, drain
from .takes_io import step as _step

MAX_RECIPE_ACTIONS = 50         # a replay runs every action on the one engine slot; longer recipes are refused


class RecipeActions:
    """The Studio's recipe methods (a mixin: they use its clone / edit / upload actions and its runner)."""

    def export_recipe(self, tree: TakeTree) -> str:
        if not tree.actions:
            raise gr.Error("There is nothing to export yet.")
        recipe = history.to_recipe(tree, engine=self.runner.engine.capabilities().engine)
        path = Path(tree.workdir) / f"recipe-{len(tree.actions)}-actions.json"
        path.write_text(json.dumps(recipe, ensure_ascii=False, indent=1), encoding="utf-8")
        return str(path)

    def replay(self, tree: TakeTree, recipe_path: str, progress=None) -> tuple[TakeTree, list[str], str]:
        """Re-run a recipe's actions with their seeds, appended to ``tree``; returns a short report."""
        try:
            data = Path(recipe_path).read_bytes()
            try:
                first_look = json.loads(data)
            except ValueError:
                first_look = None                 # parse_recipe names the JSON error
            if isinstance(first_look, dict) and first_look.get("format") == history.RECIPE_FORMAT:
                check_recipe_shape(first_look)
            return self._replay(tree, check_recipe_shape(history.parse_recipe(data)), progress)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else error_message(exc)
            raise gr.Error(f"Cannot replay this recipe ({validation.display_name(recipe_path)}): {detail}",
                           title="Recipe not usable") from exc

    def _replay(self, tree: TakeTree, recipe: dict, progress=None) -> tuple[TakeTree, list[str], str]:
        id_map: dict[str, str] = {}
        new_ids: list[str] = []
        actions = recipe["actions"]
        for k, a in enumerate(actions):
            _step(progress, k / max(len(actions), 1), f"Replaying action {k + 1}/{len(actions)}")
            p = a.get("params", {})
            if a["kind"] in (history.CLONE, history.UPLOAD):
                name, data = history.recipe_source_bytes(recipe, p["source"])
                src = Path(tree.workdir) / f"replay-{uuid.uuid4().hex[:8]}{Path(name).suffix or '.wav'}"
                src.write_bytes(data)
                if a["kind"] == history.CLONE and p.get("stream"):
                    tree, ids = drain(self.clone_stream(tree, str(src), p["prompt_text"], p["target_text"],
                                                        [int(s) for s in a["seeds"]],
                                                        batch=bool(p.get("stream_batch"))))
                elif a["kind"] == history.CLONE:
                    tree, ids = self.clone(tree, str(src), p["prompt_text"], p["target_text"],
                                           [int(s) for s in a["seeds"]], batch=not p.get("retry"),
                                           made_with=_batches_of_tries(p))
                else:
                    tree, ids = self.upload(tree, str(src), p.get("text", ""))
                src.unlink(missing_ok=True)
            elif p.get("stream"):
                tree, ids = drain(self.edit_stream(tree, id_map[a["parent"]], p["edit_type"], p.get("edit_info"),
                                                   p.get("new_text"), int(a["seeds"][0])))
            else:
                region = p.get("region")
                tree, ids = self.edit(tree, id_map[a["parent"]], p["edit_type"], p.get("edit_info"),
                                      p.get("new_text"), int(p.get("n_iterations", 1)), int(a["seeds"][0]),
                                      region={k: v for k, v in region.items() if k != "window_s"} if region else None,
                                      made_with=_batches_of_tries(p).get(int(a["seeds"][0]), ()))
            id_map.update(zip(a.get("takes", []), ids))
            new_ids += ids
        expected = recipe.get("expected", {})
        same = sum(1 for old, new in id_map.items()
                   if expected.get(old, {}).get("sha256") == tree.get(new).sha256)
        report = (f"Replayed {len(actions)} actions into {len(new_ids)} takes; {same}/{len(expected)} are "
                  f"bit-identical to the recipe's takes.")
        return tree, new_ids, report


def _batches_of_tries(params: dict) -> dict[int, list[int]]:
    """seed -> the seeds its take was decoded with, for the tries of an action made in one batch
    (service/tries.py records ``batch_seeds`` on each such try)."""
    tried = (params.get("retry") or {}).get("tried") or []
    return {int(t["seed"]): [int(s) for s in t["batch_seeds"]] for t in tried
            if isinstance(t, dict) and t.get("batch_seeds")}


def check_recipe_shape(recipe: dict) -> dict:
    """The structure replay relies on, with a readable ValueError for each way a file can break it."""
    actions, sources = recipe.get("actions"), recipe.get("sources", {})
    if not isinstance(actions, list) or not actions:
        raise ValueError('it has no "actions" list (export a recipe from the app to see the format)')
    if len(actions) > MAX_RECIPE_ACTIONS:
        raise ValueError(f"it has {len(actions)} actions; at most {MAX_RECIPE_ACTIONS} are replayed")
    if not isinstance(sources, dict) or not all(
            isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("sha256", "data")) for v in sources.values()):
        raise ValueError('its "sources" are not a map of embedded audio files')
    for k, a in enumerate(actions, 1):
        if not isinstance(a, dict) or not isinstance(a.get("params", {}), dict):
            raise ValueError(f"action {k} is not an object with params")
        seeds, takes = a.get("seeds"), a.get("takes", [])
        if not isinstance(seeds, list) or not 1 <= len(seeds) <= MAX_CANDIDATES or \
                not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= validation.MAX_SEED
                        for x in seeds):
            raise ValueError(f"action {k} needs 1-{MAX_CANDIDATES} whole-number seeds")
        if not isinstance(takes, list) or not all(isinstance(x, str) for x in takes):
            raise ValueError(f"action {k} lists its takes wrongly")
    return recipe
