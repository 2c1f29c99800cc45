"""Hostile input through the MCP door: the app's tools called over MCP's streamable HTTP transport (the `mcp`
client pinned with gradio[mcp]) at /gradio_api/mcp/. Every refusal is a tool error whose text says what is
wrong, with no traceback and no server path; the server still answers afterwards.

Audio reaches MCP tools as a URL or a base64 ``data:`` URI (Gradio's MCP layer saves it and uploads it);
the engine is the fake with the lite engine's limits (tests/test_fuzz.CappedFake).
"""
from __future__ import annotations

import asyncio
import base64
import os
import re
from pathlib import Path

import pytest

from stepedit_core import validation
from tests.hostile_inputs import make_audio_files
from tests.servers import free_port
from tests.test_fuzz import CappedFake

from mcp import ClientSession  # noqa: E402  (the mcp client comes with gradio[mcp], requirements.txt)
from mcp.client.streamable_http import streamablehttp_client  # noqa: E402

PATHLIKE = re.compile(r"/tmp/|/home/|/root/|/work/|gradio_api/file=")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mcp")
    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp / "cache")
    import app  # noqa: PLC0415
    demo = app.build_demo(CappedFake())
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(),
                            quiet=True, **app.launch_options(mcp=True))
    yield {"url": url, "files": make_audio_files(tmp / "inputs"), "secrets": [str(tmp), os.getcwd()]}
    demo.close()
    if old is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = old


def data_uri(path: Path) -> str:
    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


def call_tools(url: str, calls: list[tuple[str, dict]]) -> list[tuple[bool, str]]:
    """(is_error, text) of each tool call, in one MCP session."""
    async def run():
        out = []
        async with streamablehttp_client(url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for name, args in calls:
                    res = await asyncio.wait_for(session.call_tool(name, args), 30)
                    out.append((bool(res.isError), " ".join(getattr(c, "text", "") for c in res.content)))
        return out
    return asyncio.run(run())


def assert_clear(served, is_error: bool, text: str, what: str) -> None:
    assert is_error, f"{what}: accepted ({text[:200]})"
    assert text.strip() and "Traceback" not in text and 'File "' not in text, f"{what}: {text}"
    assert not re.match(r"\s*(Error!?|\d{3}\b|Client error|Server error)", text), f"{what}: bare {text!r}"
    assert not PATHLIKE.search(text) and not any(s in text for s in served["secrets"]), f"{what}: path in {text}"


def test_hostile_inputs_over_mcp(served):
    ok = data_uri(served["files"]["float32.wav"])
    corrupt = data_uri(served["files"]["random_bytes.wav"])
    bomb = data_uri(served["files"]["bomb_384k_stereo.flac"])
    cases = [
        ("edit", {"audio": ok, "audio_text": "hello there", "edit_type": "EMOTION", "edit_info": "happy"},
         "Unknown edit type 'EMOTION'"),
        ("edit", {"audio": ok, "audio_text": "hello there", "edit_type": "clone", "edit_info": ""},
         "Unknown edit type 'clone'"),
        ("edit_stream", {"audio": ok, "audio_text": "hello there", "edit_type": "", "edit_info": ""},
         "Unknown edit type ''"),
        ("clone", {"prompt_audio": ok, "prompt_text": "a prompt", "target_text": "word " * 2000, "seed": 1},
         f"at most {validation.MAX_TEXT_CHARS}"),
        ("clone", {"prompt_audio": ok, "prompt_text": "a prompt", "target_text": "hello", "seed": float("nan")},
         "number"),
        ("clone", {"prompt_audio": ok, "prompt_text": "a prompt", "target_text": "hello", "seed": 1e308},
         "seed must be a whole number"),
        ("clone", {"prompt_audio": corrupt, "prompt_text": "a prompt", "target_text": "hello", "seed": 1},
         "not an audio file this app can read"),
        ("transcribe", {"audio": corrupt}, "not an audio file this app can read"),
        ("transcribe", {"audio": bomb}, "384000 Hz"),
        ("paralinguistic", {"audio": ok, "audio_text": "hello", "new_text": "\u200b\x00", "seed": 1}, "is empty"),
        ("transcribe", {"audio": "/etc/passwd"}, "url"),
        ("transcribe", {"audio": served["url"] + "gradio_api/file=/etc/passwd"}, "could not be fetched"),
    ]
    results = call_tools(served["url"], [(name, args) for name, args, _ in cases])
    for (name, args, expected), (is_error, text) in zip(cases, results):
        what = f"{name} {str(args)[:80]}"
        assert_clear(served, is_error, text, what)
        assert expected in text, f"{what}: {text}"
    # the server still answers, and a valid call through the same door works
    (is_error, text), = call_tools(served["url"], [("clone", {"prompt_audio": ok, "prompt_text": "a prompt",
                                                             "target_text": "still here", "seed": 3})])
    assert not is_error and "still here" in text, text
