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
