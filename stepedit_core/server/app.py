"""The HTTP API: an OpenAI-compatible ``/v1/audio/speech``, an edit endpoint for uploaded audio, OpenAI-style
transcription, the take check (``/v1/audio/checks``; checked, re-rolled and region-limited takes: ``takes.py``),
and the voice library. :func:`create_api` builds the FastAPI app whose routes sit under
``/v1`` once mounted (standalone by :func:`create_server`, beside Gradio by ``app.py --api``).

Every route is a thin adapter over the one :class:`~stepedit_core.service.Service` of the engine: the routes
convert FastAPI bodies and uploads, run the service's calls through :class:`~.gate.EngineGate` (queued on the
service's gate: concurrent requests wait), and the service's typed errors become 4xx JSON in OpenAI's error
shape (``errors.py``).
"""
from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import replace
from typing import Any, AsyncIterator, Iterable

import anyio
import numpy as np
from fastapi import FastAPI, File, Form, Query, UploadFile
from starlette.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from .. import audio_formats, regions, validation
from .. import words as word_edits
from ..audio import OUTPUT_SAMPLE_RATE, resample
from ..errors import StepEditError
from ..interface import AudioClip, EditRequest, Engine, EngineResult, resolve_seed
from ..service import Service, service_for, speech
from ..validation import MAX_AUDIO_SECONDS, check_seed
from ..voice_archive import MAX_ARCHIVE_FILE_BYTES
from ..voices import MAX_VOICE_SECONDS, VoiceLibrary, VoiceTokens
from . import takes
from .errors import APIError, install
from .gate import EngineGate
from .shield import MAX_UPLOAD_BYTES, RequestShield
from .takes import named as _param

API_KEY_ENV = "STEPEDIT_API_KEY"
MODEL_ID = "step-audio-editx"
# names OpenAI clients send; all mean "this server's engine"
MODEL_ALIASES = (MODEL_ID, "tts-1", "tts-1-hd", "gpt-4o-mini-tts", "stepaudio", "lite")
MAX_ARCHIVE_UPLOAD_BYTES = MAX_ARCHIVE_FILE_BYTES   # a voice-library zip
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


async def _decoded(service: Service, param: str, data: bytes, what: str | None = None,
                   max_seconds: float | None = None) -> AudioClip:
    """An upload's clip, its header checked against ``max_seconds`` (default: the engine's own limit) before
    decoding, decoded in a worker thread (never on the event loop)."""
    limit = service.capabilities().max_input_seconds if max_seconds is None else max_seconds
    return await run_in_threadpool(_param, param, AudioClip.from_file, data, what, limit)


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


def create_api(engine: Engine | Service, library: VoiceLibrary | None = None, *, api_key: str | None = None,
               gate: EngineGate | None = None) -> FastAPI:
    """The ``/v1`` app around ``engine`` (or its service). ``api_key`` (default: env ``STEPEDIT_API_KEY``)
    enables bearer auth."""
    service = service_for(engine)
    engine = service.engine
    library = library if library is not None else VoiceLibrary()
    gate = gate or EngineGate(gate=service.gate)
    api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    library_lock = threading.Lock()          # voice-library writes one at a time (folders are renamed)

    api = FastAPI(title="Step-Audio-EditX API", version="1")
    api.add_middleware(RequestShield, api_key=api_key)      # the key and the body cap, before any body byte
    api.state.engine, api.state.library, api.state.gate = engine, library, gate
    api.state.service = api.state.takes = service
    install(api)

    async def locked(fn, *args):
        return await anyio.to_thread.run_sync(lambda: _with(library_lock, fn, *args))

    # ---- service ----------------------------------------------------------------------------------
    @api.get("/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "stepfun"}]}

    @api.get("/health")
    async def health() -> dict:
        info = service.engine_info()
        return {"status": "ok", **{k: info[k] for k in ("engine", "display_name", "device", "approximate")},
                "waiting": gate.waiting, "formats": audio_formats.available_formats(), "streaming": True}

    _speech_routes(api, service, gate, library, locked)
    _edit_and_check_routes(api, service, gate)
    _voice_routes(api, service, gate, library, locked)
    return api


def _speech_routes(api: FastAPI, service: Service, gate: EngineGate, library: VoiceLibrary, locked) -> None:
    """``/audio/speech``: a library voice speaks the input (the speech plan), streamed when it can be."""
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
        if fmt in audio_formats.STREAMABLE and not plan.edits and not retry.active:
            chunks = gate.stream(lambda: service.stream_clone(plan.clone))
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
            return service.speak(replace(plan, clone=replace(plan.clone, seed=s)))

        results, extra = await gate.run(takes.run_checked, service, run, clip, seed, retry)
        take = results[-1]
        headers = _take_header(take, plan.edits, extra)
        if fmt in audio_formats.STREAMABLE:
            samples = _pcm24(take.audio.samples, take.audio.sample_rate)
            pieces = audio_formats.chunks(samples, OUTPUT_SAMPLE_RATE, STREAM_CHUNK_SECONDS)
            return respond(_encoded_stream(None, pieces, fmt), headers)
        data = audio_formats.encode(take.audio.samples, take.audio.sample_rate, fmt)
        return Response(data, media_type=media, headers=headers)



def _edit_and_check_routes(api: FastAPI, service: Service, gate: EngineGate) -> None:
    """``/audio/edits``, ``/audio/checks`` and ``/audio/transcriptions`` on uploaded audio."""
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
        clip = await _decoded(service, "file", await _read_upload(file, MAX_UPLOAD_BYTES))
        if edit_type == word_edits.WORDS:   # word edit: text = the take's transcript, new_text = the edited one
            take = await gate.run(lambda: _param("new_text", service.word_edit, clip, text, new_text,
                                                 seed=seed, check=check))
            return Response(audio_formats.encode(take.audio.samples, take.audio.sample_rate, fmt),
                            media_type=audio_formats.media_type(fmt),
                            headers=_take_header(take, (), {"word_edit": take.metadata["word_edit"]}))
        _param("edit_type", validation.check_edit_type, edit_type)         # before a slow transcription
        _param("option", validation.check_edit_info, edit_type, option or None)
        retry = takes.retry_options(check, max_tries, threshold)
        selection = takes.selection_of(first_word, last_word, start_s, end_s, clip.duration)
        if selection is not None:
            _param("edit_type", regions.check_region_edit_type, edit_type)
        if retry.active:
            _param("seed", check_seed, seed)          # a random first seed is drawn later (service.run)
        text = await gate.run(service.fill_transcript, clip, text, edit_type)
        request = EditRequest(audio=clip, audio_text=text or "", edit_type=edit_type, edit_info=option or None,
                              new_text=new_text, n_iterations=iterations, seed=seed)
        words = await gate.run(takes.window, service, clip, text or "", selection) if selection is not None else ()

        def run(s: int | None) -> list[EngineResult]:
            return service.edit_selected(replace(request, seed=s), words, selection)

        results, extra = await gate.run(takes.run_checked, service, run, clip, seed, retry)
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
        limit = MAX_AUDIO_SECONDS                    # a take to check may be longer than the engine's inputs
        clip = await _decoded(service, "file", await _read_upload(file, MAX_UPLOAD_BYTES), None, limit)
        voice = None
        if source is not None:
            voice = await _decoded(service, "source", await _read_upload(source, MAX_UPLOAD_BYTES, "source"),
                                   "the source audio", limit)
        return await gate.run(lambda: service.check(clip, text, source=voice, expected_seconds=expected_seconds,
                                                    language=language))

    @api.post("/audio/transcriptions")
    async def create_transcription(file: UploadFile = File(...), model: str = Form(MODEL_ID),
                                   language: str | None = Form(None), response_format: str = Form("json")):
        if response_format not in ("json", "text"):
            raise APIError(400, f"response_format must be 'json' or 'text', got {response_format!r}.",
                           param="response_format", code="invalid_value")
        clip = await _decoded(service, "file", await _read_upload(file, MAX_UPLOAD_BYTES))
        text = await gate.run(service.transcribe, clip, language)
        return Response(text, media_type="text/plain") if response_format == "text" else {"text": text}



def _voice_routes(api: FastAPI, service: Service, gate: EngineGate, library: VoiceLibrary, locked) -> None:
    """The voice library: list, add (transcribed when the text is missing), export, import, get, rename, delete."""
    # ---- voices -------------------------------------------------------------------------------------
    @api.get("/voices")
    async def list_voices() -> dict:
        voices = await locked(library.list)
        return {"object": "list", "data": [v.to_json() for v in voices]}

    @api.post("/voices", status_code=201)
    async def add_voice(name: str = Form(...), file: UploadFile = File(...), text: str | None = Form(None),
                        overwrite: bool = Form(False)) -> dict:
        clip = await _decoded(service, "file", await _read_upload(file, MAX_UPLOAD_BYTES), None, MAX_VOICE_SECONDS)
        if not (text or "").strip():
            if not service.capabilities().transcribe:
                raise APIError(400, "The transcript of the voice's audio (text) is required: this engine cannot "
                               "transcribe.", param="text", code="invalid_value")
            text = await gate.run(service.transcribe, clip)
        voice = await locked(lambda: library.save(name, clip, text, overwrite=overwrite))
        return voice.to_json()

    @api.get("/voices/export")
    async def export_voices(names: list[str] | None = Query(None)) -> Response:   # ?names=a&names=b
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


def _with(lock: threading.Lock, fn, *args, **kwargs) -> Any:
    with lock:
        return fn(*args, **kwargs)


__all__ = ["create_api", "SpeechBody", "API_KEY_ENV", "MODEL_ID", "TAKE_HEADER"]
