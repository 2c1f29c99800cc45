"""The package layout keeps its promises: every module imports on its own, the intra-package import graph has
no cycle, the stages (tokenizer, model, decoder) meet only through the shared top-level contracts, no module
outgrows 450 lines, and the inference package never pulls in the app's gradio / spaces."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "stepedit_core"
MAX_LINES = 450
STAGES = ("tokenizer", "model", "decoder")
CONTRACTS = ("audio", "tokens", "catalog", "interface", "errors", "compat", "validation")
APP_ONLY = ("gradio", "gradio_client", "spaces")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str) -> set[str]:
    """Every stepedit_core module that ``name`` imports, anywhere in the file (deferred imports included)."""
    path = FILES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from pkg import sub`` imports the sub-module; ``from mod import name`` the module
            subs = {f"{target}.{alias.name}" for alias in node.names} & FILES.keys()
            found |= subs or {target}
    return {m for m in found if m in FILES and m != name}


GRAPH = {name: imported_modules(name) for name in FILES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}          # 1 = on the DFS stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_import_graph_is_read():
    assert "stepedit_core.model.generate" in GRAPH["stepedit_core.engine"]
    assert "stepedit_core.model.llm" in GRAPH["stepedit_core"]                   # registration on import
    assert "stepedit_core.decoder.streaming" in GRAPH["stepedit_core.decoder.cosyvoice"]
    assert "stepedit_core.catalog" in GRAPH["stepedit_core.lite.engine"]           # ``from .. import catalog``


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_uses_only_itself_and_the_shared_contracts(stage):
    allowed = {f"stepedit_core.{stage}"} | {f"stepedit_core.{c}" for c in CONTRACTS}
    for name, deps in GRAPH.items():
        if name.startswith(f"stepedit_core.{stage}"):
            outside = {d for d in deps if not any(d == a or d.startswith(a + ".") for a in allowed)}
            assert not outside, f"{name} imports {sorted(outside)}"


def test_the_shared_contracts_import_no_stage():
    for contract in CONTRACTS:
        deps = GRAPH[f"stepedit_core.{contract}"]
        assert all(d.removeprefix("stepedit_core.") in CONTRACTS for d in deps), (contract, sorted(deps))


def test_no_module_over_the_size_limit():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in FILES.values()}
    over = {f: n for f, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_no_app_import_in_the_package_source():
    for name, path in FILES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            roots = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not {r.split(".")[0] for r in roots} & set(APP_ONLY), f"{name} imports {roots}"


def test_every_module_imports_in_a_fresh_interpreter_without_gradio():
    code = ("import importlib, json, sys\n"
            f"for name in {sorted(FILES)!r}:\n"
            "    importlib.import_module(name)\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {APP_ONLY!r})))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
