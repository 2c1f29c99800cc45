"""The package layout keeps its promises: every module imports on its own, the import graph of the package and
the app has no cycle (between modules, and between sub-packages: lite and the core never import each other both
ways), the stages (tokenizer, model, decoder) meet only through the shared top-level contracts, no module
outgrows 450 lines and no function 80 (app_ui included), no door (the app, the HTTP server, the CLI) calls an
engine's work methods itself (they go through stepedit_core.service), and the inference package never pulls in
the app's gradio / spaces."""
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
MAX_FUNCTION_LINES = 80
APP = ROOT / "app_ui"
STAGES = ("tokenizer", "model", "decoder")
CONTRACTS = ("audio", "tokens", "catalog", "interface", "errors", "compat", "validation")
APP_ONLY = ("gradio", "gradio_client", "spaces")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
APP_FILES = {module_name(p): p for p in [ROOT / "app.py", *sorted(APP.rglob("*.py"))]}
ALL_FILES = {**FILES, **APP_FILES}
# Doors: each converts its own formats and calls the service, never an engine's work methods.
DOORS = ("app", "app_ui", "stepedit_core.server", "stepedit_core.cli")
ENGINE_WORK = {"clone", "edit", "stream_clone", "stream_edit", "transcribe", "transcribe_words"}
# Core functions that do a service's job; a door calls the service instead.
SERVICE_JOBS = {("regions", "region_edit"), ("speech", "run_plan"), ("checks", "best_of"),
                ("checks", "checker_for"), ("checks", "retry_until_ok")}


def imported_modules(name: str) -> set[str]:
    """Every stepedit_core / app module that ``name`` imports, anywhere in the file (deferred imports included)."""
    path = ALL_FILES[name]
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
            subs = {f"{target}.{alias.name}" for alias in node.names} & ALL_FILES.keys()
            found |= subs or {target}
    return {m for m in found if m in ALL_FILES and m != name}


GRAPH = {name: imported_modules(name) for name in ALL_FILES}


def package_of(name: str) -> str:
    """The sub-package (``stepedit_core.lite``) or top-level module (``stepedit_core.checks``) ``name`` is in."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "stepedit_core" else parts[0]


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, deps in graph.items():
        out.setdefault(package_of(name), set()).update(package_of(d) for d in deps if package_of(d) != package_of(name))
    return out


def functions(path: Path):
    """(name, lines) of every function and method in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def dotted(node: ast.AST) -> str:
    """``self.runner.engine`` for an attribute chain, "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = dotted(node.value)
        return f"{head}.{node.attr}" if head else ""
    return ""


def door_violations(source: str) -> list[str]:
    """Calls in ``source`` of an engine's work methods (``*.engine.clone(...)``) or of a service's job."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = dotted(node.func.value)
            last = owner.rsplit(".", 1)[-1]
            if (node.func.attr in ENGINE_WORK and last in ("engine", "_engine")) or \
                    (last, node.func.attr) in SERVICE_JOBS:
                found.append(f"line {node.lineno}: {owner}.{node.func.attr}()")
    return found


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


def test_the_app_is_in_the_import_graph():
    assert "stepedit_core.service" in GRAPH["app_ui.runner"] and "app_ui.studio" in GRAPH["app"]


def test_no_two_sub_packages_import_each_other():
    """lite and the core: both use what listens to a take (listen/); lite uses only that and the shared contracts."""
    packages = package_graph(GRAPH)
    assert "stepedit_core.listen" in packages["stepedit_core.checks"]
    assert "stepedit_core.listen" in packages["stepedit_core.lite"]
    assert not {p for p in packages["stepedit_core.lite"] if p not in {f"stepedit_core.{c}" for c in CONTRACTS}
                } - {"stepedit_core.audio", "stepedit_core.longform", "stepedit_core.tags", "stepedit_core.listen"}, \
        sorted(packages["stepedit_core.lite"])
    cycle = find_cycle(packages)
    assert cycle is None, "sub-packages import each other: " + " -> ".join(cycle)


def test_the_core_reaches_the_lite_engine_only_through_the_loader():
    """The lite engine is one engine: outside lite/, only loader.py (which picks an engine) imports it; the ASR,
    metrics, speaker embedding and pinned models both engines use are stepedit_core.listen, which imports no lite."""
    users = {name for name, deps in GRAPH.items() if name.startswith(("stepedit_core", "app"))
             and package_of(name) != "stepedit_core.lite" and any(package_of(d) == "stepedit_core.lite" for d in deps)}
    assert users == {"stepedit_core.loader"}, sorted(users)


def test_door_rule_finds_direct_engine_calls():
    assert door_violations("self.runner.engine.clone(r)\nctx.engine.transcribe(c)\nregions.region_edit(e, r, w, s)")
    assert door_violations("service.clone(r)\nself.engine.capabilities()\nstudio.edit(t)") == []


@pytest.mark.parametrize("name", sorted(n for n in ALL_FILES if n.startswith(DOORS)))
def test_no_door_calls_engine_work_itself(name):
    bad = door_violations(ALL_FILES[name].read_text(encoding="utf-8"))
    assert not bad, f"{name} calls the engine or a service job directly (use stepedit_core.service): {bad}"


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
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in ALL_FILES.values()}
    over = {f: n for f, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_no_function_over_the_size_limit():
    over = {f"{path.relative_to(ROOT)}:{name}": lines for path in ALL_FILES.values()
            for name, lines in functions(path) if lines > MAX_FUNCTION_LINES}
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines: {over}"


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


def test_no_code_cites_a_document_outside_the_repository():
    """Comments state the fact or point to a file in this repository (the facts dossier is not shipped)."""
    sources = [*ALL_FILES.values(), *sorted((ROOT / "tests").rglob("*.py")), *sorted((ROOT / "bench").glob("*.py"))]
    dossier = "architecture" + ".md"          # spelt in two parts so that this file does not cite it
    citing = [str(p.relative_to(ROOT)) for p in sources if dossier in p.read_text(encoding="utf-8")]
    assert not citing, f"cites {dossier}, which is not in the repository: {citing}"
