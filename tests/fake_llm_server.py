"""A stand-in for a vLLM OpenAI-compatible server on loopback, for the ``--llm-server`` client tests.

It speaks the subset ``stepedit_core.model.remote`` uses (``GET /v1/models``; ``POST /v1/completions`` with a
token-id prompt, streamed as server-sent events carrying ``token_ids``) and samples with this project's own
``generate`` over a loaded Step1 (same processors and options as the request names), so a remote take can be
compared with the native engine's take for the same seed. ``mode`` injects the failures a real server shows:
``overloaded`` (503), ``slow`` (sleeps ``delay_s`` before answering), ``broken_stream`` (an error event after
the first token). ``hold_s`` delays every completion (outside the model's lock, as a server busy with other
sequences would), and ``max_in_flight`` records how many completions were ever open at once.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from stepedit_core.model.generate import SamplingOptions, generate


class FakeLLMServer:
    def __init__(self, model, *, name: str = "step-audio-editx", max_model_len: int = 4096, vocab_size: int):
        self.model, self.name, self.max_model_len, self.vocab_size = model, name, max_model_len, vocab_size
        self.mode, self.delay_s, self.requests = "ok", 0.0, []
        self.hold_s, self.in_flight, self.max_in_flight = 0.0, 0, 0
        self._lock = threading.Lock()          # one generation at a time through the model
        self._count = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> "FakeLLMServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):   # quiet
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if server.mode == "slow":
                    time.sleep(server.delay_s)
                if self.path != "/v1/models":
                    return self._json(404, {"error": {"message": "not found"}})
                self._json(200, {"object": "list", "data": [{"id": server.name, "object": "model",
                                                             "max_model_len": server.max_model_len}]})

            def do_POST(self):
                with server._count:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.hold_s)
                    self._complete()
                finally:
                    with server._count:
                        server.in_flight -= 1

            def _complete(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                if server.mode == "overloaded":
                    return self._json(503, {"error": {"message": "Service Unavailable"}})
                if server.mode == "slow":
                    time.sleep(server.delay_s)
                prompt = body["prompt"]
                if body.get("model") != server.name:
                    return self._json(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
                if max(prompt) >= server.vocab_size:
                    return self._json(400, {"error": {"message": f"Token id {max(prompt)} is out of vocabulary"}})
                if len(prompt) + body["max_tokens"] > server.max_model_len:
                    return self._json(400, {"error": {"message": (
                        f"This model's maximum context length is {server.max_model_len} tokens. However, you "
                        f"requested {len(prompt) + body['max_tokens']} tokens.")}})
                self._stream(body)

            def _event(self, payload: dict) -> None:
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

            def _stream(self, body: dict) -> None:
                xargs = body.get("vllm_xargs") or {}
                sample = body.get("temperature", 1.0) > 0
                opts = SamplingOptions(temperature=body.get("temperature", 1.0) if sample else 1.0,
                                       top_k=body.get("top_k") or 0, top_p=body.get("top_p") or 1.0,
                                       do_sample=sample, seed=body.get("seed"),
                                       repetition_guard=bool(xargs.get("step1_repetition_guard", 1)),
                                       constrained=bool(xargs.get("step1_audio_groups", 0)),
                                       max_new_tokens=body["max_tokens"], eot_id=body["stop_token_ids"][0])
                with server._lock:
                    gen = generate(server.model, body["prompt"], opts)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for i, token in enumerate(gen.ids):
                    if server.mode == "broken_stream" and i == 1:
                        self._event({"error": {"message": "engine core died", "code": 500}})
                        return
                    self._event({"choices": [{"index": 0, "text": "", "token_ids": [token], "finish_reason": None}]})
                finish = "stop" if gen.stop_reason == "eot" else "length"
                self._event({"choices": [{"index": 0, "text": "", "token_ids": [], "finish_reason": finish}]})
                self.wfile.write(b"data: [DONE]\n\n")

        return Handler
