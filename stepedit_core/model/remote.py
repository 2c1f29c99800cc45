"""The Step1 LLM stage on a running vLLM OpenAI-compatible server (``--llm-server URL``).

Prompt token ids go in (``POST /v1/completions``, ``prompt`` as a list of ids), generated ids stream back
(server-sent events, ``return_token_ids``); the audio tokenizer and the decoder stay in this process. The
server runs vLLM with this repository's plugin (``vllm_plugin/``), which provides the official repetition
guard and the optional 2+3 constraint as per-request logits processors (``vllm_xargs``), so a request here
samples as :func:`stepedit_core.model.generate.generate` does (same processors, temperature, top-k, top-p,
caps); only the random draws differ (vLLM's generator).

:meth:`RemoteStep1.connect` checks the server at start-up (reachable, serves ``model``, accepts Step1 audio
ids), and every failure is an :class:`~stepedit_core.errors.LLMServerError` (503 on HTTP) with one line, or an
:class:`~stepedit_core.errors.InvalidInputError` (400) when a prompt does not fit the server's context.
Every network wait has a timeout: nothing hangs.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import httpx

from ..errors import InvalidInputError, LLMServerError
from ..tokens import AUDIO_TOKEN_OFFSET, EOT_ID, PROMPT_TOKEN_SPACE
from .generate import GenerationResult, GroupCallback, SamplingOptions, _GroupEmitter

CONNECT_TIMEOUT_S = 5.0      # TCP connect to the server
TOKEN_TIMEOUT_S = 120.0      # longest wait for the next streamed chunk (the first one includes queueing + prefill)
PROBE_ID = AUDIO_TOKEN_OFFSET + PROMPT_TOKEN_SPACE - 1   # <audio_5119>: only a Step1 vocabulary has it
OVERLOADED_STATUS = (429, 503)


@dataclass(frozen=True)
class ServerInfo:
    url: str             # base URL, no trailing slash
    model: str           # served model name
    max_model_len: int   # prompt + new tokens the server accepts


class RemoteStep1:
    """Stands in for the loaded Step1 model in the engine: ``generate.generate`` hands it the request."""

    def __init__(self, info: ServerInfo, *, token_timeout: float = TOKEN_TIMEOUT_S):
        self.info = info
        self._timeout = httpx.Timeout(token_timeout, connect=CONNECT_TIMEOUT_S)

    @classmethod
    def connect(cls, url: str, model: str | None = None, *, token_timeout: float = TOKEN_TIMEOUT_S) -> "RemoteStep1":
        """Check the server and return a client; LLMServerError with one line when it cannot serve."""
        base = url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise InvalidInputError(f"--llm-server must be an http(s) URL, got {url!r}")
        client = cls(ServerInfo(base, model or "", 0), token_timeout=token_timeout)
        listed = client._get("/v1/models").get("data") or []
        names = {m.get("id"): m for m in listed if isinstance(m, dict)}
        if model is None and len(names) == 1:
            model = next(iter(names))
        if model not in names:
            raise LLMServerError(f"the LLM server at {base} serves {', '.join(map(str, names)) or 'no model'}, "
                                 f"not {model or 'exactly one model'}: pass --llm-model NAME", "wrong_model")
        info = ServerInfo(base, model, int(names[model].get("max_model_len") or 0))
        client.info = info
        client._probe()
        return client

    # -- HTTP ---------------------------------------------------------------------------------------
    def _get(self, path: str) -> dict:
        try:
            response = httpx.get(self.info.url + path, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise LLMServerError(f"the LLM server at {self.info.url} did not answer in time", "timeout") from exc
        except httpx.HTTPError as exc:
            raise LLMServerError(f"cannot reach the LLM server at {self.info.url} ({type(exc).__name__})",
                                 "unreachable") from exc
        self._raise_for_status(response, 0)
        return _json(response, self.info.url)

    def _raise_for_status(self, response: httpx.Response, prompt_len: int) -> None:
        if response.status_code < 400:
            return
        response.read()
        message = _error_message(response)
        if response.status_code in OVERLOADED_STATUS:
            raise LLMServerError(f"the LLM server at {self.info.url} is overloaded ({response.status_code}): "
                                 "try again shortly", "overloaded")
        if response.status_code == 400 and "context length" in message.lower():
            raise self._too_long(prompt_len)
        raise LLMServerError(f"the LLM server at {self.info.url} refused the request ({response.status_code}): "
                             f"{message}", "refused")

    def _too_long(self, prompt_len: int) -> InvalidInputError:
        return InvalidInputError(
            f"this request needs a {prompt_len}-token prompt; the LLM server takes at most "
            f"{self.info.max_model_len} tokens per request: use a shorter text or shorter audio (or split it)")

    def _probe(self) -> None:
        """One greedy token after ``<audio_5119>``: a server with another vocabulary refuses the id."""
        try:
            self._complete([1, PROBE_ID], max_tokens=1, options=SamplingOptions(do_sample=False), on_token=None,
                           should_stop=None)
        except LLMServerError as exc:
            if exc.reason != "refused":
                raise
            raise LLMServerError(f"the LLM server at {self.info.url} serves {self.info.model!r}, which is not the "
                                 f"Step1 LLM of Step-Audio-EditX (it refuses audio token ids)", "wrong_model") from exc

    def _payload(self, ids: list[int], max_tokens: int, options: SamplingOptions) -> dict:
        payload = {"model": self.info.model, "prompt": ids, "max_tokens": max_tokens, "stream": True,
                   "return_token_ids": True, "stop_token_ids": [options.eot_id], "skip_special_tokens": False,
                   "vllm_xargs": {"step1_repetition_guard": int(options.repetition_guard),
                                  "step1_audio_groups": int(options.constrained)}}
        if options.do_sample:
            payload.update(temperature=options.temperature, top_k=options.top_k, top_p=options.top_p,
                           seed=options.seed)
        else:
            payload.update(temperature=0.0)
        return payload

    def _complete(self, ids: list[int], *, max_tokens: int, options: SamplingOptions,
                  on_token: Callable[[int], None] | None, should_stop: Callable[[], bool] | None) -> tuple[list[int], str]:
        """Stream one completion; returns (ids without EOT, finish reason: "eot" | "length" | "cancelled")."""
        out: list[int] = []
        try:
            with httpx.stream("POST", self.info.url + "/v1/completions",
                              json=self._payload(ids, max_tokens, options), timeout=self._timeout) as response:
                self._raise_for_status(response, len(ids))
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    choice = _choice(data, self.info.url)
                    for token in choice.get("token_ids") or []:
                        if token == options.eot_id:
                            return out, "eot"
                        out.append(int(token))
                        if on_token is not None:
                            on_token(int(token))
                    if choice.get("finish_reason"):
                        return out, "eot" if choice["finish_reason"] == "stop" else "length"
                    if should_stop is not None and should_stop():
                        return out, "cancelled"                 # closing the stream aborts the request
        except httpx.TimeoutException as exc:
            raise LLMServerError(f"the LLM server at {self.info.url} sent nothing for "
                                 f"{self._timeout.read:.0f} s", "timeout") from exc
        except httpx.HTTPError as exc:
            raise LLMServerError(f"lost the LLM server at {self.info.url} ({type(exc).__name__})",
                                 "unreachable") from exc
        return out, "length"

    # -- the engine's LLM stage -----------------------------------------------------------------------
    def remote_generate(self, prompt_ids: Sequence[int], options: SamplingOptions = SamplingOptions(), *,
                        on_group: GroupCallback | None = None,
                        should_stop: Callable[[], bool] | None = None) -> GenerationResult:
        """``generate.generate``'s contract on the server: same caps, stop reasons, groups and timings."""
        ids = [int(t) for t in prompt_ids]
        if not ids:
            raise InvalidInputError("empty prompt")
        total_cap = min(options.max_total_tokens, self.info.max_model_len or options.max_total_tokens)
        budget = total_cap - len(ids)
        if budget <= 0:
            raise self._too_long(len(ids))
        max_new = budget if options.max_new_tokens is None else min(budget, options.max_new_tokens)
        if max_new <= 0:
            raise InvalidInputError(f"max_new_tokens must be positive, got {options.max_new_tokens}")
        if options.do_sample and options.seed is None:
            options = _with_seed(options, secrets.randbelow(2 ** 63))
        emitter = _GroupEmitter(on_group)
        first: list[float] = []
        t0 = time.perf_counter()

        def on_token(token: int) -> None:
            if not first:
                first.append(time.perf_counter())
            emitter.push(token)

        new, finish = self._complete(ids, max_tokens=max_new, options=options, on_token=on_token,
                                     should_stop=should_stop)
        t2 = time.perf_counter()
        t1 = first[0] if first else t2
        stop = finish if finish in ("eot", "cancelled") else ("max_total" if len(new) >= budget else "max_new_tokens")
        return GenerationResult(ids=tuple(new), stop_reason=stop, prompt_len=len(ids),
                                seed=options.seed if options.do_sample else None, prefill_s=t1 - t0,
                                decode_s=t2 - t1, decode_steps=max(len(new) - 1, 0))


def _with_seed(options: SamplingOptions, seed: int) -> SamplingOptions:
    from dataclasses import replace
    return replace(options, seed=seed)


def _json(response: httpx.Response, url: str) -> dict:
    try:
        body = response.json()
    except ValueError as exc:
        raise LLMServerError(f"{url} is not an OpenAI-compatible LLM server (no JSON answer)", "wrong_model") from exc
    if not isinstance(body, dict):
        raise LLMServerError(f"{url} is not an OpenAI-compatible LLM server", "wrong_model")
    return body


def _choice(data: str, url: str) -> dict:
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise LLMServerError(f"the LLM server at {url} sent an unreadable stream event", "refused") from exc
    if isinstance(event, dict) and "error" in event:           # vLLM reports a failure mid-stream this way
        raise LLMServerError(f"the LLM server at {url} failed: {_short(event['error'])}", "refused")
    try:
        return event["choices"][0]
    except (KeyError, IndexError, TypeError) as exc:
        raise LLMServerError(f"the LLM server at {url} sent a stream event without a choice", "refused") from exc


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    error = body.get("error", body) if isinstance(body, dict) else body
    return _short(error.get("message", error) if isinstance(error, dict) else error)


def _short(value) -> str:
    text = str(value.get("message", value) if isinstance(value, dict) else value)
    return text.splitlines()[0][:200] if text else "no details"
