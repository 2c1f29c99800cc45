"""Repository contracts: the README's Space front matter, its test command, and CI agree with the code."""
from pathlib import Path

import yaml

from stepedit_core import checkpoint

ROOT = Path(__file__).parent.parent


def _front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_space_front_matter():
    meta = _front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["license"] == "apache-2.0"
    requirements = (ROOT / "requirements.txt").read_text()
    assert f"gradio[mcp]=={meta['sdk_version']}" in requirements
    assert set(meta["models"]) == {checkpoint.EDITX_REPO, checkpoint.TOKENIZER_REPO}
    assert len(meta["short_description"]) <= 60


def test_preload_from_hub_pins_the_revisions_and_files_the_loader_verifies():
    entries = {line.split()[0]: line.split()[1:] for line in _front_matter()["preload_from_hub"]}
    for repo, revision, files in ((checkpoint.EDITX_REPO, checkpoint.EDITX_REVISION, checkpoint.EDITX_FILES),
                                  (checkpoint.TOKENIZER_REPO, checkpoint.TOKENIZER_REVISION,
                                   checkpoint.TOKENIZER_FILES)):
        listed, pinned = entries[repo]
        assert pinned == revision and len(pinned) == 40
        assert {f.path for f in files} <= set(listed.split(","))


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = readme.split("Install the test dependencies")[1].split("```bash\n")[1].split("\n```")[0].strip()
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines
    assert "python -m pytest" in command


def test_torch_pin_resolves_to_the_local_cpu_wheel_here():
    import torch
    requirements = (ROOT / "requirements.txt").read_text()
    assert "torch==2.13.0" in requirements and torch.__version__.startswith("2.13.0")


def _requirement_lines(name: str) -> list[str]:
    """Requirement lines of a requirements file: comments, blank lines and -r/-c options dropped."""
    lines = []
    for raw in (ROOT / name).read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def _pyproject_ranges() -> dict:
    """Canonical package name -> the SpecifierSet pyproject.toml allows (dependencies and every extra)."""
    import tomllib
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + [s for extra in project["optional-dependencies"].values() for s in extra]
    return {canonicalize_name(r.name): r.specifier for r in map(Requirement, specs)}


def test_every_requirement_is_an_exact_pin_inside_the_pyproject_range():
    """A fresh install gets exactly what the suite passed on; the library ranges admit those pins."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    ranges = _pyproject_ranges()
    pinned = []
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in _requirement_lines(name):
            req = Requirement(line)
            specs = list(req.specifier)
            assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, \
                f"{name}: {line!r} is not an exact pin"
            key = canonicalize_name(req.name)
            assert key in ranges, f"{name}: {req.name} is missing from pyproject.toml"
            assert ranges[key].contains(specs[0].version, prereleases=True), \
                f"{name}: {req.name}=={specs[0].version} lies outside pyproject.toml's {ranges[key]}"
            pinned.append(key)
    assert {"torch", "transformers", "gradio", "numpy"} <= set(pinned)


def test_pyproject_ranges_have_upper_bounds_no_newer_than_the_pins():
    """Upper bounds: a new upstream release is never admitted before the suite has passed on it."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version
    pins = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in _requirement_lines(name):
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = Version(next(iter(req.specifier)).version)
    for key, spec in _pyproject_ranges().items():
        if key not in pins:                      # optional backends the suite cannot run here (bitsandbytes: CUDA)
            continue
        uppers = [Version(s.version) for s in spec if s.operator in ("<=", "==")]
        assert uppers, f"pyproject.toml: {key} {spec} has no upper bound"
        assert max(uppers) <= pins[key], f"pyproject.toml: {key} {spec} admits versions newer than {pins[key]}"


def test_constraints_pin_every_transitive_dependency_consistently():
    """constraints.txt (applied by requirements.txt) pins the whole resolved install; direct pins agree with it."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    assert "-c constraints.txt" in (ROOT / "requirements.txt").read_text()
    locked = {}
    for line in _requirement_lines("constraints.txt"):
        req = Requirement(line)
        spec = list(req.specifier)
        assert len(spec) == 1 and spec[0].operator == "==" and "+" not in spec[0].version, line
        locked[canonicalize_name(req.name)] = spec[0].version
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in _requirement_lines(name):
            req = Requirement(line)
            key = canonicalize_name(req.name)
            assert locked.get(key) == next(iter(req.specifier)).version, f"{name}: {line} vs constraints.txt"
    assert {"tokenizers", "ctranslate2", "fastapi", "starlette", "pydantic"} <= set(locked)


def test_space_python_version_is_admitted_by_every_pinned_package():
    """The Space installs requirements.txt on its own Python (front matter ``python_version``); every pinned
    package installed here must declare support for it (numpy 2.4 needs >= 3.11, so "3.10" cannot install)."""
    from importlib.metadata import PackageNotFoundError, metadata
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    space_python = str(_front_matter()["python_version"])
    assert space_python in ("3.10", "3.12")              # the Python versions ZeroGPU runs (gradio-spaces.md)
    checked = 0
    for line in _requirement_lines("requirements.txt"):
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"python_version": space_python}):
            continue
        try:
            requires = metadata(req.name).get("Requires-Python")
        except PackageNotFoundError:
            continue
        if requires:
            assert SpecifierSet(requires).contains(space_python + ".0"), \
                f"{req.name} requires Python {requires}; the Space runs {space_python}"
            checked += 1
    assert checked >= 10
