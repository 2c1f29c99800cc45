"""The Dockerfile and the README's docker commands agree (nothing is built): build arguments exist and are
handled, copied paths exist, every documented ``docker run`` command parses with the flags of ``app.py`` or the
CLI, publishes the port its command listens on, and passes only environment variables the code reads."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

import app
from stepedit_core import cli
from stepedit_core.flags import MODEL_PATH_ENV
from stepedit_core.server import API_KEY_ENV
from stepedit_core.voices import DATA_DIR_ENV

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
KNOWN_ENV = {API_KEY_ENV, MODEL_PATH_ENV, DATA_DIR_ENV, "HF_HOME", "HF_TOKEN"}
DOCKER_RUN_OPTIONS_WITH_VALUE = {"-p", "-v", "-e", "--name", "--gpus", "--env-file"}


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    return [tuple(line.split(None, 1)) for line in (ln.strip() for ln in text.splitlines())
            if line and not line.startswith("#")]


def _readme_docker_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Docker")[1].split("```bash\n")[1].split("\n```")[0]
    return [shlex.split(line) for line in block.splitlines() if line.startswith("docker ")]


COMMANDS = _readme_docker_commands()
RUNS = [c for c in COMMANDS if c[1] == "run"]


def _split_run(argv: list[str]) -> tuple[dict[str, list[str]], str, list[str]]:
    """docker run argv -> (options, image, command)."""
    options: dict[str, list[str]] = {}
    i = 2
    while argv[i].startswith("-"):
        if argv[i] in DOCKER_RUN_OPTIONS_WITH_VALUE:
            options.setdefault(argv[i], []).append(argv[i + 1])
            i += 2
        else:
            options.setdefault(argv[i], []).append("")
            i += 1
    return options, argv[i], argv[i + 1:]


def _default_command() -> list[str]:
    return json.loads(dict(_instructions())["CMD"])


def test_readme_documents_cpu_and_cuda_builds_and_runs():
    builds = [c for c in COMMANDS if c[1] == "build"]
    args = [a for c in builds for a in c if "=" in a and not a.startswith("-")]
    assert "DEVICE=cuda" in args and any("--build-arg" not in c for c in builds)       # the default is CPU
    assert any("--gpus" in c for c in RUNS) and any("--gpus" not in c for c in RUNS)
    tags = {c[c.index("-t") + 1] for c in builds}
    assert {_split_run(c)[1] for c in RUNS} <= tags


def test_build_args_exist_and_every_device_value_is_handled():
    declared = {a.split("=")[0] for kind, a in _instructions() if kind == "ARG"}
    for c in COMMANDS:
        for i, a in enumerate(c):
            if a == "--build-arg":
                name, value = c[i + 1].split("=", 1)
                assert name in declared
                assert re.search(rf"^\s*{re.escape(value)}\)", DOCKERFILE, re.M), f"{name}={value} not handled"
    assert re.search(r"^ARG DEVICE=cpu$", DOCKERFILE, re.M)


def test_copied_paths_exist_and_requirements_are_installed():
    for kind, arguments in _instructions():
        if kind == "COPY":
            *sources, _dest = arguments.split()
            for source in sources:
                assert (ROOT / source).exists(), source
    assert "-r requirements.txt" in DOCKERFILE
    copies = [a for kind, a in _instructions() if kind == "COPY"]
    assert any("constraints.txt" in a for a in copies)                # requirements.txt applies it with -c


def _check_command(command: list[str]) -> int:
    """Parse a container command with the project's own parsers; returns the port it listens on."""
    assert command[0] == "python"
    if command[1] == "app.py":
        args = app.parse_args(command[2:])
        assert args.server_name == "0.0.0.0"                         # reachable from outside the container
        return args.port
    assert command[1:3] == ["-m", "stepedit_core"]
    args = cli.build_parser().parse_args(command[3:])
    assert args.command == "serve" and args.host == "0.0.0.0"
    return args.port


def test_default_command_parses_and_its_port_is_exposed():
    port = _check_command(_default_command())
    exposed = {int(p) for kind, a in _instructions() if kind == "EXPOSE" for p in a.split()}
    assert port in exposed


@pytest.mark.parametrize("argv", RUNS, ids=[" ".join(c[2:6]) for c in RUNS])
def test_each_documented_run_command(argv):
    options, _image, command = _split_run(argv)
    port = _check_command(command or _default_command())
    published = [int(p.split(":")[-1]) for p in options.get("-p", [])]
    assert published == [port], f"publishes {published}, the command listens on {port}"
    env = dict(e.split("=", 1) for e in options.get("-e", []))
    assert set(env) <= KNOWN_ENV, set(env) - KNOWN_ENV
    mounts = {v.split(":")[1] for v in options.get("-v", [])}
    assert "/data" in mounts                                          # voices and caches survive the container
    if "--gpus" not in options:
        assert "--download" not in command and MODEL_PATH_ENV not in env   # the CPU runs use the lite engine
    if MODEL_PATH_ENV in env:
        assert env[MODEL_PATH_ENV] in mounts
    if command[:3] == ["python", "-m", "stepedit_core"]:
        assert API_KEY_ENV in env                                     # serve on 0.0.0.0 needs a key


def test_data_dir_and_hf_cache_live_on_the_volume():
    env_line = dict(_instructions())["ENV"]
    assert f"{DATA_DIR_ENV}=/data" in env_line and "HF_HOME=/data/" in env_line
    assert 'VOLUME ["/data"]' in DOCKERFILE and "USER app" in DOCKERFILE
