"""The HTTP API: an OpenAI-compatible ``/v1/audio/speech``, an edit endpoint for uploaded audio, OpenAI-style
transcription, the take check (``/v1/audio/checks``; checked, re-rolled and region-limited takes: ``takes.py``),
and the voice library. :func:`create_api` builds the FastAPI app whose routes sit under
``/v1`` once mounted (standalone by :func:`create_server`, beside Gradio by ``app.py --api``).

Engine work goes through one :class:`~.gate.EngineGate`: concurrent requests queue. Validation is the
core's (``Engine.clone`` / ``Engine.edit``, the voice library, :mod:`~stepedit_core.audio_formats`); its typed
errors become 4xx JSON in OpenAI's error shape (``errors.py``).
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from dataclasses import replace
from typing import Any, AsyncIterator, Iterable

import anyio
import numpy as np
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from .. import audio_formats, catalog, regions
from .. import words as word_edits
from ..audio import OUTPUT_SAMPLE_RATE, resample
from ..errors import StepEditError
from ..interface import TEXT_FREE_EDITS, AudioClip, EditRequest, Engine, EngineResult, resolve_seed
from ..validation import check_seed
from ..voices import VoiceLibrary, VoiceTokens
from . import speech, takes
from .errors import APIError, install
from .gate import EngineGate
from .takes import named as _param

API_KEY_ENV = "STEPEDIT_API_KEY"
MODEL_ID = "step-audio-editx"
# names OpenAI clients send; all mean "this server's engine"
MODEL_ALIASES = (MODEL_ID, "tts-1", "tts-1-hd", "gpt-4o-mini-tts", "stepaudio", "lite")
MAX_UPLOAD_BYTES = 25 * 1024 * 1024           # OpenAI's audio upload limit
MAX_ARCHIVE_UPLOAD_BYTES = 100 * 1024 * 1024  # a voice-library zip
STREAM_CHUNK_SECONDS = 0.5                    # chunk size when a whole take is sent as a stream
TAKE_HEADER = "X-StepEdit-Take"               # JSON (ASCII) with the take's text, seed, edits, metadata


class SpeechBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    input: str
    voice: str | dict
    response_format: str = "mp3"
    speed: float | None = None
    instructions: str | None = None
    stream_format: str = "audio"
    seed: int | None = None
    check: bool = False               # the take check in the take header (stepedit_core.checks)
    max_tries: Any = None             # 1-9: re-roll seeds until WER/CER <= threshold (validated as in the app)
    threshold: Any = None


class RenameBody(BaseModel):
    name: str


async def _read_upload(upload: UploadFile, limit: int, param: str = "file") -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise APIError(413, f"The uploaded {param} is larger than {limit >> 20} MB.", param=param,
                       code="file_too_large")
    if not data:
        raise APIError(400, f"The uploaded {param} is empty.", param=param, code="invalid_value")
    return data


def _take_header(take: EngineResult, edits: Iterable[speech.Step] = (), extra: dict | None = None) -> dict[str, str]:
    """The take's text, seed, edits and scalar metadata; ``extra`` (a check, the seeds tried, a region window)
    is appended, trimmed to fit (takes.fit_header)."""
    info = {"text": take.text, "seed": take.seed, "edit_type": take.edit_type, "edit_info": take.edit_info,
            "iteration": take.iteration, "seconds": round(take.audio.duration, 3),
            "edits": [f"{s.edit_type}={s.edit_info}" for s in edits],
            "metadata": {k: v for k, v in take.metadata.items() if isinstance(v, (str, int, float, bool))}}
    if extra:
        info = takes.fit_header({**info, **extra})
    return {TAKE_HEADER: json.dumps(info, ensure_ascii=True)}


def _pcm24(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    return samples if sample_rate == OUTPUT_SAMPLE_RATE else resample(samples, sample_rate, OUTPUT_SAMPLE_RATE)


async def _encoded_stream(first: np.ndarray | None, rest: AsyncIterator[np.ndarray] | Iterable[np.ndarray],
                          fmt: str) -> AsyncIterator[bytes]:
    """wav / pcm bytes of 24 kHz float chunks: the WAV header first, then 16-bit PCM."""
    try:
        if fmt == "wav":
            yield audio_formats.wav_stream_header(OUTPUT_SAMPLE_RATE)
        if first is not None:
            yield audio_formats.pcm16(first)
        if hasattr(rest, "__aiter__"):
            async for chunk in rest:
                yield audio_formats.pcm16(chunk)
        else:
            for chunk in rest:
                yield audio_formats.pcm16(chunk)
    finally:                            # a client that left: stop the producer now, not when it is collected
        if hasattr(rest, "aclose"):
            await rest.aclose()


async def _sse(data: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """OpenAI's ``stream_format="sse"``: ``speech.audio.delta`` events with base64 audio, then ``done``."""
    async for piece in data:
        event = {"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode("ascii")}
        yield f"data: {json.dumps(event)}\n\n".encode()
    yield f"data: {json.dumps({'type': 'speech.audio.done'})}\n\n".encode()


def create_api(engine: Engine, library: VoiceLibrary | None = None, *, api_key: str | None = None,
               gate: EngineGate | None = None) -> FastAPI:
    """The ``/v1`` app around ``engine``. ``api_key`` (default: env ``STEPEDIT_API_KEY``) enables bearer auth."""
    library = library if library is not None else VoiceLibrary()
    gate = gate or EngineGate()
    api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    library_lock = threading.Lock()          # voice-library writes one at a time (folders are renamed)

    async def check_auth(request: Request) -> None:
        if not api_key:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), api_key.encode()):
            raise APIError(401, "Missing or wrong API key: send 'Authorization: Bearer <key>'.",
                           code="invalid_api_key")

    api = FastAPI(title="Step-Audio-EditX API", version="1", dependencies=[Depends(check_auth)])
    service = takes.TakeService(engine)
    api.state.engine, api.state.library, api.state.gate, api.state.takes = engine, library, gate, service
    install(api)

    async def locked(fn, *args):
        return await anyio.to_thread.run_sync(lambda: _with(library_lock, fn, *args))

    # ---- service ----------------------------------------------------------------------------------
    @api.get("/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "stepfun"}]}

    @api.get("/health")
    async def health() -> dict:
        caps = engine.capabilities()
        return {"status": "ok", "engine": caps.engine, "display_name": caps.display_name, "device": caps.device,
                "approximate": caps.approximate, "waiting": gate.waiting, "formats": audio_formats.available_formats(),
                "streaming": hasattr(engine, "stream_clone")}

    # ---- speech -------------------------------------------------------------------------------------
    @api.post("/audio/speech")
    async def create_speech(body: SpeechBody):
        if body.model not in MODEL_ALIASES:
            raise APIError(400, f"Unknown model {body.model!r}; use one of {', '.join(MODEL_ALIASES)}.",
                           param="model", code="model_not_found")
        fmt = _param("response_format", audio_formats.check_format, body.response_format)
        if body.stream_format not in ("audio", "sse"):
            raise APIError(400, f"stream_format must be 'audio' or 'sse', got {body.stream_format!r}.",
                           param="stream_format", code="invalid_value")
        if body.stream_format == "sse" and fmt not in audio_formats.STREAMABLE:
            raise APIError(400, f"stream_format 'sse' streams wav or pcm, not {fmt}.", param="stream_format",
                           code="invalid_value")
        retry = takes.retry_options(body.check, body.max_tries, body.threshold)
        name = body.voice.get("id") if isinstance(body.voice, dict) else body.voice
        voice = await locked(_param, "voice", library.get, name)
        clip = await locked(voice.clip)
        seed = _param("seed", resolve_seed, body.seed)
        plan = _param("instructions", speech.plan_speech, clip, voice.text, body.input,
                      instructions=body.instructions, speed=None, seed=seed)
        step = _param("speed", speech.speed_step, body.speed)
        plan = speech.SpeechPlan(replace(plan.clone, prompt_store=VoiceTokens(library.root, voice.name)),
                                 plan.edits + ((step,) if step else ()))
        media = "text/event-stream" if body.stream_format == "sse" else audio_formats.media_type(fmt)

        def respond(data: AsyncIterator[bytes], headers: dict) -> StreamingResponse:
            return StreamingResponse(_sse(data) if body.stream_format == "sse" else data, media_type=media,
                                     headers=headers)

        # a checked take is judged whole before its header goes out: the whole-take path (as the app's streamed
        # clone with tries), still sent in chunks for wav / pcm / sse
        if fmt in audio_formats.STREAMABLE and not plan.edits and hasattr(engine, "stream_clone") and not retry.active:
            chunks = gate.stream(lambda: engine.stream_clone(plan.clone))
            try:
                first = await chunks.__anext__()
            except StopAsyncIteration:
                first = None
            except StepEditError:       # e.g. a prompt longer than streaming takes: the whole-take path below
                chunks = None           # decides (the same validation raises there if the request is bad)
            if chunks is not None:
                headers = {TAKE_HEADER: json.dumps({"text": plan.clone.target_text, "seed": seed, "edits": [],
                                                    "streamed": True})}
                return respond(_encoded_stream(first, chunks, fmt), headers)

        def run(s: int) -> list[EngineResult]:
            return speech.run_plan(engine, replace(plan, clone=replace(plan.clone, seed=s)))

        results, extra = await gate.run(service.run, run, clip, seed, retry)
        take = results[-1]
        headers = _take_header(take, plan.edits, extra)
        if fmt in audio_formats.STREAMABLE:
            samples = _pcm24(take.audio.samples, take.audio.sample_rate)
            pieces = audio_formats.chunks(samples, OUTPUT_SAMPLE_RATE, STREAM_CHUNK_SECONDS)
            return respond(_encoded_stream(None, pieces, fmt), headers)
        data = audio_formats.encode(take.audio.samples, take.audio.sample_rate, fmt)
        return Response(data, media_type=media, headers=headers)

    # ---- edit ---------------------------------------------------------------------------------------
    @api.post("/audio/edits")
    async def create_edit(file: UploadFile = File(...), edit_type: str = Form(...), option: str | None = Form(None),
                          text: str | None = Form(None), new_text: str | None = Form(None),
                          iterations: int = Form(1), seed: int | None = Form(None),
                          response_format: str = Form("wav"), check: bool = Form(False),
                          max_tries: str | None = Form(None), threshold: str | None = Form(None),
                          first_word: int | None = Form(None), last_word: int | None = Form(None),
                          start_s: float | None = Form(None), end_s: float | None = Form(None)):
        fmt = _param("response_format", audio_formats.check_format, response_format)
        clip = _param("file", AudioClip.from_file, await _read_upload(file, MAX_UPLOAD_BYTES))
        if edit_type == word_edits.WORDS:   # word edit: text = the take's transcript, new_text = the edited one
            take = await gate.run(lambda: _param("new_text", word_edits.edit_take, engine, clip, text, new_text,
                                                 seed=seed, check=check))
            return Response(audio_formats.encode(take.audio.samples, take.audio.sample_rate, fmt),
                            media_type=audio_formats.media_type(fmt),
                            headers=_take_header(take, (), {"word_edit": take.metadata["word_edit"]}))
        _param("edit_type", catalog.check_edit_type, edit_type)            # before a slow transcription
        _param("option", catalog.check_edit, edit_type, option or None)
        retry = takes.retry_options(check, max_tries, threshold)
        selection = takes.selection_of(first_word, last_word, start_s, end_s, clip.duration)
        if selection is not None:
            _param("edit_type", regions.check_region_edit_type, edit_type)
        if retry.active:
            _param("seed", check_seed, seed)          # a random first seed is drawn later (service.run)
        if text is None or not text.strip():
            caps = engine.capabilities()
            if edit_type not in TEXT_FREE_EDITS and caps.transcribe:
                text = await gate.run(engine.transcribe, clip)
        request = EditRequest(audio=clip, audio_text=text or "", edit_type=edit_type, edit_info=option or None,
                              new_text=new_text, n_iterations=iterations, seed=seed)
        words = await gate.run(service.window, clip, text or "", selection) if selection is not None else ()

        def run(s: int | None) -> list[EngineResult]:
            req = replace(request, seed=s)
            return engine.edit(req) if selection is None else regions.region_edit(engine, req, words, selection)

        results, extra = await gate.run(service.run, run, clip, seed, retry)
        take = results[-1]
        if "region" in take.metadata:
            extra["region"] = take.metadata["region"]
        data = audio_formats.encode(take.audio.samples if fmt != "pcm" else
                                    _pcm24(take.audio.samples, take.audio.sample_rate),
                                    take.audio.sample_rate, fmt)
        return Response(data, media_type=audio_formats.media_type(fmt), headers=_take_header(take, (), extra))

    # ---- checks -------------------------------------------------------------------------------------
    @api.post("/audio/checks")
    async def create_check(file: UploadFile = File(...), text: str | None = Form(None),
                           source: UploadFile | None = File(None), language: str | None = Form(None),
                           expected_seconds: float | None = Form(None)) -> dict:
        text, language, expected_seconds = takes.check_inputs(text, language, expected_seconds)
        clip = _param("file", AudioClip.from_file, await _read_upload(file, MAX_UPLOAD_BYTES))
        voice = None
        if source is not None:
            voice = _param("source", AudioClip.from_file, await _read_upload(source, MAX_UPLOAD_BYTES, "source"),
                           "the source audio")
        return await gate.run(service.report, clip, text, voice, language, expected_seconds)

    @api.post("/audio/transcriptions")
    async def create_transcription(file: UploadFile = File(...), model: str = Form(MODEL_ID),
                                   language: str | None = Form(None), response_format: str = Form("json")):
        if response_format not in ("json", "text"):
            raise APIError(400, f"response_format must be 'json' or 'text', got {response_format!r}.",
                           param="response_format", code="invalid_value")
        clip = _param("file", AudioClip.from_file, await _read_upload(file, MAX_UPLOAD_BYTES))
        text = await gate.run(engine.transcribe, clip, language)
        return Response(text, media_type="text/plain") if response_format == "text" else {"text": text}

    # ---- voices -------------------------------------------------------------------------------------
    @api.get("/voices")
    async def list_voices() -> dict:
        voices = await locked(library.list)
        return {"object": "list", "data": [v.to_json() for v in voices]}

    @api.post("/voices", status_code=201)
    async def add_voice(name: str = Form(...), file: UploadFile = File(...), text: str | None = Form(None),
                        overwrite: bool = Form(False)) -> dict:
        clip = _param("file", AudioClip.from_file, await _read_upload(file, MAX_UPLOAD_BYTES))
        if not (text or "").strip():
            if not engine.capabilities().transcribe:
                raise APIError(400, "The transcript of the voice's audio (text) is required: this engine cannot "
                               "transcribe.", param="text", code="invalid_value")
            text = await gate.run(engine.transcribe, clip)
        voice = await locked(lambda: library.save(name, clip, text, overwrite=overwrite))
        return voice.to_json()

    @api.get("/voices/export")
    async def export_voices(names: list[str] | None = None) -> Response:
        data = await locked(library.export_zip, names or None)
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="voices.zip"'})

    @api.post("/voices/import", status_code=201)
    async def import_voices(file: UploadFile = File(...), overwrite: bool = Form(False)) -> dict:
        data = await _read_upload(file, MAX_ARCHIVE_UPLOAD_BYTES)
        voices = await locked(lambda: library.import_zip(data, overwrite=overwrite,
                                                         label=f"the archive {file.filename or ''}".strip()))
        return {"object": "list", "data": [v.to_json() for v in voices]}

    @api.get("/voices/{name}")
    async def get_voice(name: str) -> dict:
        return (await locked(library.get, name)).to_json()

    @api.get("/voices/{name}/audio")
    async def get_voice_audio(name: str) -> Response:
        voice = await locked(library.get, name)
        return Response(voice.audio_path.read_bytes(), media_type="audio/wav")

    @api.patch("/voices/{name}")
    async def rename_voice(name: str, body: RenameBody) -> dict:
        return (await locked(library.rename, name, body.name)).to_json()

    @api.delete("/voices/{name}")
    async def delete_voice(name: str) -> dict:
        await locked(library.delete, name)
        return {"id": name, "object": "voice", "deleted": True}

    return api


def _with(lock: threading.Lock, fn, *args, **kwargs) -> Any:
    with lock:
        return fn(*args, **kwargs)


__all__ = ["create_api", "SpeechBody", "API_KEY_ENV", "MODEL_ID", "TAKE_HEADER"]
