"""Step-Audio-EditX Space: voice cloning and iterative speech editing in Gradio.

Runs on Hugging Face ZeroGPU, locally on CPU / CUDA / Apple MPS, and through share links. Importing
this module neither loads weights nor launches; ``build_demo(engine)`` composes the app around any
:class:`stepedit_core.Engine`, ``main()`` parses flags, loads the engine and serves.

    python app.py                       # lite engine when no weights are found
    python app.py --model-path DIR      # the real model from DIR/Step-Audio-EditX + DIR/Step-Audio-Tokenizer
    python app.py --download --mcp      # fetch the checkpoints, also serve MCP tools
"""
# `spaces` must come before anything that may initialise CUDA (torch): on ZeroGPU it patches torch.
try:
    import spaces
except ImportError:  # local runs without the `spaces` package: @spaces.GPU is the identity
    class spaces:  # noqa: N801 -- stands in for the module
        @staticmethod
        def GPU(fn=None, **_kwargs):
            return fn if callable(fn) else (lambda f: f)

import argparse
import logging
import os
from pathlib import Path

import gradio as gr

from app_ui import storage
from app_ui.first_screen import CSS as FIRST_SCREEN_CSS, example_files
from app_ui.i18n import I18N
from app_ui.runner import EngineRunner
from app_ui.studio import Studio
from app_ui.ui import build_blocks
from app_ui.views import CSS
from stepedit_core import Engine, StepEditError
from stepedit_core.flags import add_engine_arguments, engine_from_args

log = logging.getLogger("stepedit.app")

QUEUE_MAX_SIZE = 20                 # waiting events per app; ZeroGPU would otherwise force 1
GPU_CONCURRENCY = 1                 # one engine call at a time (one model instance, one GPU)
MAX_FILE_SIZE = "20mb"              # uploads: ~30 s of audio in any common format fits easily
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink")


def build_demo(engine: Engine) -> gr.Blocks:
    """The whole app around ``engine``; queue configured, not launched (see :func:`launch_options`)."""
    from gradio.utils import get_upload_folder  # noqa: PLC0415
    runner = EngineRunner(engine, gpu=spaces.GPU)
    built: list[gr.Blocks] = []       # the app once built: the pruner touches only the files Gradio has for it
    studio = Studio(runner, root=Path(get_upload_folder()) / "stepedit", upload_dir=get_upload_folder(),
                    keep=storage.KeepFiles.of(example_files()), voice_library=True,
                    owned_files=lambda: storage.registered_files(built[0]) if built else [])
    demo = build_blocks(studio)
    built.append(demo)
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=GPU_CONCURRENCY)
    return demo


def launch_options(*, mcp: bool = False) -> dict:
    """Arguments ``demo.launch`` needs for this app (theme, css, translations, limits, MCP)."""
    from starlette.middleware import Middleware  # noqa: PLC0415
    from app_ui.route_guard import RouteGuard  # noqa: PLC0415  (4xx for raw calls Gradio answers with a 500)
    return {"theme": THEME, "css": CSS + FIRST_SCREEN_CSS, "i18n": I18N, "max_file_size": MAX_FILE_SIZE,
            "mcp_server": mcp, "footer_links": ["api", "settings"], "ssr_mode": False,
            "app_kwargs": {"middleware": [Middleware(RouteGuard)]}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_engine_arguments(p)
    p.add_argument("--server-name", default="127.0.0.1", help="interface to bind (0.0.0.0 to serve a LAN)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="create a public gradio.live link")
    p.add_argument("--mcp", action="store_true", help="also serve the clone and edit tools over MCP")
    p.add_argument("--api", action="store_true",
                   help="also serve the OpenAI-compatible HTTP API at /v1 (bearer key: env STEPEDIT_API_KEY)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    on_spaces = bool(os.environ.get("SPACE_ID"))
    try:
        engine = engine_from_args(args, download=on_spaces)
    except StepEditError as exc:      # missing or broken weights, bad flags: a message, not a traceback
        raise SystemExit(f"error: {exc}\n(flags: --model-path DIR, --download, or --engine lite)") from None
    caps = engine.capabilities()
    log.info("engine: %s on %s", caps.display_name, caps.device)
    demo = build_demo(engine)
    server_name = "0.0.0.0" if on_spaces else args.server_name   # Spaces route traffic to the container
    demo.launch(server_name=server_name, server_port=args.port, share=args.share, prevent_thread_lock=args.api,
                **launch_options(mcp=args.mcp or on_spaces))
    if args.api:                       # the same engine behind /v1/audio/speech, /v1/audio/edits, /v1/voices
        from stepedit_core.server import check_exposure, mount_api  # noqa: PLC0415
        check_exposure(server_name, os.environ.get("STEPEDIT_API_KEY"), allow_open=True)   # warns only
        mount_api(demo.app, engine)
        demo.block_thread()


if __name__ == "__main__":
    main()
