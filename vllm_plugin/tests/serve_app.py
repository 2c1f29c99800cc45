"""``serve --llm-server`` for the end-to-end test, run by the main environment's Python (the app's pins differ
from the vLLM venv's). The engine comes from the shared flags exactly as ``python -m stepedit_core serve``
builds it; the only addition is the 2+3 constraint and a 6-group cap, since the tiny LLM has random weights.

    python serve_app.py --model-path CKPT --engine stepaudio --llm-server URL --port P --voices DIR
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stepedit_core.flags import add_engine_arguments, engine_from_args  # noqa: E402
from stepedit_core.server import serve  # noqa: E402
from stepedit_core.voices import VoiceLibrary  # noqa: E402

TINY_CAP = 30          # new tokens: 6 whole 2+3 groups


def main() -> None:
    parser = add_engine_arguments(argparse.ArgumentParser())
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--voices", required=True)
    args = parser.parse_args()
    engine = engine_from_args(args).with_options(constrained=True, max_new_tokens=TINY_CAP)
    serve(engine, port=args.port, library=VoiceLibrary(Path(args.voices)), log_level="warning")


if __name__ == "__main__":
    main()
