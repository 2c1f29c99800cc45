"""StepAudioEngine: clone and edit with the real Step-Audio-EditX stack.

One request, in the order of the official ``tts.py``::

    source / prompt audio --peak cap 0.6-->  prompt mel (24 kHz), CAM++ x-vector   (decoder.features, speaker)
                          --16 kHz, trim-->  vq02 + vq06 -> 2:3 mixed tokens        (tokenizer)
                          both cached per clip                                    (runtime.PromptEncoder)
    prompts.build_{edit,clone}_prompt(text tokenizer, ...)                          (model.prompts)
    generate.generate(Step1 LLM, ids, seed)  -> <audio_N> ids ... <|EOT|>            (model.llm, generate)
    tokens.check_llm_output -> whole 2+3 groups                                    (repair, documented)
    CosyVoice decoder: flow (prompt tokens, prompt mel, x-vector) + HiFT -> 24 kHz  (decoder.cosyvoice)

This module is the request flow (clone, edit and its iterations, streaming) and
:func:`load_stepaudio_engine`; options, device / dtype choice, seeding and the prompt cache are runtime.py's.

Differences from the official code, all deliberate:
- one seed fixes everything random: LLM sampling, flow noise, HiFT noise and the vq02 dither (seeded
  ``torch.Generator``s, never the global RNG); sub-seeds come from ``runtime.derive_seeds``;
- the LLM output is validated and repaired (``tokens.check_llm_output``) instead of a blind ``[:-1]``;
- new tokens are bounded (``generate.max_new_tokens_for_audio`` / ``_for_text``) besides the 8192 cap;
- inputs longer than 30 s are processed in pieces (``longform``);
- prompt encodings are cached per audio content hash (bounded LRU).

Every door reaches it through :class:`stepedit_core.service.Service` (the app inside its ``@spaces.GPU``
island, app_ui/runner.py); ``stream_clone`` / ``stream_edit`` yield audio while the LLM is still sampling,
``stream_clone_batch`` every candidate's while their batch runs (stream_rows.py).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from . import batching, catalog, longform, tags, validation, workload
from .audio import OUTPUT_SAMPLE_RATE, peak_cap
from .checkpoint import CheckpointPaths, resolve_checkpoint
from .errors import InvalidInputError, ModelUnavailableError, UnsupportedEditError
from .interface import (AudioClip, Capabilities, CloneRequest, EditRequest, Engine, EngineResult, Heard, Progress,
                        PromptTokenStore, StopCheck, Word, check_work, edit_result_text, validate_transcribe)
from .llm_wait import llm_wait
from .model import prompts
from .model.generate import SamplingOptions, generate_batch, max_new_tokens_for_audio, max_new_tokens_for_text
from .model.prefix_cache import PrefixCache
from .runtime import EngineOptions, PromptAudio, PromptEncoder, derive_seeds, pick_device, pick_llm_dtype
from .stream_rows import stream_rows
from .tokens import checked_llm_output

log = logging.getLogger(__name__)

SAMPLES_PER_GROUP = 2880        # 3 flow tokens (25 Hz) -> 6 mel frames (50 Hz) -> 6 x 480 samples at 24 kHz

NOTES = "inputs over 30 s are edited in pieces split at pauses"   # the engine note (Capabilities.notes)
NOTES_ZH = "超过 30 秒的输入会在停顿处切分后分段编辑"


class StepAudioEngine(Engine):
    """The neural engine. Components are loaded once (see :func:`load_stepaudio_engine`)."""

    def __init__(self, *, llm, text_tokenizer, audio_tokenizer, decoder, device: torch.device,
                 options: EngineOptions = EngineOptions(), paths: CheckpointPaths | None = None):
        self.llm, self.text_tokenizer = llm, text_tokenizer
        self.audio_tokenizer, self.decoder = audio_tokenizer, decoder
        self.device, self.options, self.paths = device, options, paths
        if options.longform_transcripts not in ("proportional", "asr"):
            raise InvalidInputError("longform_transcripts must be 'proportional' or 'asr'")
        self._prompts = PromptEncoder(audio_tokenizer, decoder, vq02_dither=options.vq02_dither,
                                      cache_size=options.prompt_cache_size)
        self._cache = self._prompts.cache
        self._prefix = PrefixCache(options.prefix_cache_bytes)    # prompt keys / values (model.prefix_cache)
        self._decode_scale = workload.decode_scale(llm)
        self._lock = threading.Lock()          # one request at a time through the models
        self._asr = None

    # -- interface ------------------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        edit_options = {t: catalog.OPTIONS[t] for t in catalog.AUDIO_EDIT_TYPES}
        return Capabilities(engine="stepaudio", display_name="Step-Audio-EditX", clone=True,
                            edit_options=edit_options, transcribe=_asr_installed(), approximate=False,
                            max_input_seconds=self.options.max_input_seconds,
                            max_request_seconds=self.request_cap(),
                            languages=("zh", "en", "yue", "sichuanese", "ja", "ko"), device=self.device.type,
                            notes=NOTES, notes_zh=NOTES_ZH)

    def transcribe(self, clip: AudioClip, language: str | None = None) -> str:
        """Transcript from the offline whisper ``base`` model of the lite engine (faster-whisper, CPU)."""
        if not _asr_installed():
            raise UnsupportedEditError("transcription needs faster-whisper, which is not installed")
        validate_transcribe(clip, self.capabilities())
        check_work(self, catalog.TRANSCRIBE, clip.duration)
        validation.check_voice_like(clip.samples, clip.sample_rate, "the audio to transcribe")   # whisper loops
        if self._asr is None:
            from .listen.asr import WhisperASR
            self._asr = WhisperASR()
        return self._asr.transcribe(clip.samples, clip.sample_rate, language).text

    def transcribe_words(self, clip: AudioClip, language: str | None = None) -> Heard:
        """Transcript with word times (lite whisper), for the take check and region edits."""
        if not _asr_installed():
            raise UnsupportedEditError("transcription needs faster-whisper, which is not installed")
        if self._asr is None:
            from .listen.asr import WhisperASR
            self._asr = WhisperASR()
        t = self._asr.transcribe(clip.samples, clip.sample_rate, language, word_timestamps=True, fast=True)
        return Heard(t.text, t.language, tuple(Word(w.text.strip(), w.start, w.end) for w in t.words))

    @property
    def speaker_model(self) -> str | None:
        """"campplus" when the decoder's prompt front end (CAM++) is loaded; the take check uses it."""
        return "campplus" if getattr(self.decoder, "frontend", None) is not None else None

    def speaker_embedding(self, clip: AudioClip) -> np.ndarray:
        """CAM++ x-vector (192,) of ``clip`` (the same embedding the decoder is conditioned on)."""
        _, emb = self.decoder.prompt_features(peak_cap(clip.samples), clip.sample_rate)
        return emb.detach().float().cpu().numpy().reshape(-1)

    def estimate_seconds(self, kind: str, audio_seconds: float, text_chars: int = 0, n_iterations: int = 1,
                         candidates: int = 1) -> float:
        """Wall-clock estimate of a request of ``candidates`` takes decoded as one batch (stepedit_core.workload)."""
        return workload.estimate_seconds(kind, audio_seconds, text_chars, n_iterations, device=self.device.type,
                                         weights=workload.llm_weights(self.llm), scale=self._decode_scale,
                                         max_new_tokens=self.options.max_new_tokens, candidates=candidates)

    # -- batches: the candidates / tries of one request share one prefill and decode together (batching.py) --
    def clone_batch(self, request: CloneRequest, seeds: Sequence[int],
                    progress: Progress | None = None) -> list[EngineResult]:
        """One take per seed (``request.seed`` ignored), the LLM sampling them as one batch."""
        return batching.clone_batch(self, request, seeds, progress)

    def edit_batch(self, request: EditRequest, seeds: Sequence[int],
                   progress: Progress | None = None) -> list[list[EngineResult]]:
        """``edit`` once per seed (``request.seed`` ignored): one list of rounds per seed; round 1 batched."""
        return batching.edit_batch(self, request, seeds, progress)

    def request_cap(self) -> float | None:
        """Seconds one request may take (workload.request_cap)."""
        return workload.request_cap(self.options.max_request_seconds, self.device.type)

    def _clone(self, request: CloneRequest, progress: Progress) -> EngineResult:
        return self._clone_rows(request, [request.seed], progress)[0]

    def _clone_rows(self, request: CloneRequest, seeds: list[int], progress: Progress) -> list[EngineResult]:
        t0 = time.perf_counter()
        clip = request.prompt_audio
        prompt_text = request.prompt_text
        # official speaker name: hash of the transcript and the uploaded file as loaded (before any crop)
        speaker = prompts.clone_speaker_name(prompt_text, clip.loaded)
        if clip.duration > longform.MAX_PIECE_S:     # use the first <= 30 s and its share of the transcript
            wav = peak_cap(clip.samples)             # the official cap applies to the whole upload
            spans = longform.split_at_pauses(wav, clip.sample_rate)
            prompt_text = longform.split_transcript_for(wav, clip.sample_rate, spans, prompt_text)[0]
            clip = AudioClip(samples=wav[spans[0].start:spans[0].end], sample_rate=clip.sample_rate, raw=clip.raw)
        timings: dict[str, float] = {}
        progress(0.0, "encoding the prompt audio")
        prompt = self.encode_prompt(clip.samples, clip.sample_rate, seed=request.seed, timings=timings,
                                    store=request.prompt_store)
        pieces = longform.split_target_text(request.target_text)
        rows = [batching.RowTake() for _ in seeds]
        for i, text in enumerate(pieces):
            sub = [derive_seeds(s, i) for s in seeds]
            progress(0.1 + 0.85 * i / len(pieces), f"generating speech ({i + 1}/{len(pieces)})"
                     if len(pieces) > 1 else "generating speech")
            ids = prompts.build_clone_prompt(self.text_tokenizer.encode, speaker, prompt_text, prompt.token_str,
                                             text, segment_bos=self.options.segment_bos)
            cap = self.options.max_new_tokens or max_new_tokens_for_text(text)
            head = self._clone_head(speaker, prompt_text, prompt)
            generated = self._generate_rows(ids, cap, sub, timings, head)
            for row, audio, (checked, gen) in zip(rows, batching.decode_rows(self, generated, prompt, sub, timings),
                                                generated):
                row.add(audio, checked, self._piece_meta(ids, gen, checked, text))
        timings["total"] = time.perf_counter() - t0
        progress(1.0, "done")
        return [EngineResult(audio=AudioClip.from_array(longform.join_pieces(row.outs, OUTPUT_SAMPLE_RATE),
                                                        OUTPUT_SAMPLE_RATE),
                             text=request.target_text, seed=s, edit_type=catalog.CLONE, timings=dict(timings),
                             tokens=tuple(row.tokens),
                             metadata=self._result_meta([prompt], row.meta, speaker=speaker, **batching.batch_meta(seeds)))
                for s, row in zip(seeds, rows)]

    def _edit_once(self, clip: AudioClip, audio_text: str, request: EditRequest, seed: int, iteration: int,
                   progress: Progress) -> EngineResult:
        return self._edit_rows(clip, audio_text, request, [seed], iteration, progress)[0]

    def _edit_rows(self, clip: AudioClip, audio_text: str, request: EditRequest, seeds: list[int], iteration: int,
                   progress: Progress) -> list[EngineResult]:
        """One round of the edit per seed, the seeds' LLM sampling batched per piece."""
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        wav, sr = peak_cap(clip.samples), clip.sample_rate        # one cap for the whole clip (GH:tts.py)
        spans = longform.split_at_pauses(wav, sr)
        new_text = request.new_text if request.edit_type == catalog.PARALINGUISTIC else None
        new_text = tags.for_model(new_text, self.options.tag_vocabulary) if new_text else None
        if len(spans) == 1:
            texts, new_texts = [audio_text], [new_text]
        elif new_text is not None:
            texts, new_texts = longform.split_paired(audio_text, new_text, longform.voiced_seconds(wav, sr, spans))
        else:
            asr = None
            if self.options.longform_transcripts == "asr":
                asr = lambda w, rate: self.transcribe(AudioClip.from_array(w, rate))   # noqa: E731
            texts = longform.split_transcript_for(wav, sr, spans, audio_text, transcribe=asr)
            new_texts = [None] * len(spans)
        rows, used = [batching.RowTake() for _ in seeds], []
        for i, (span, text, new) in enumerate(zip(spans, texts, new_texts)):
            sub = [derive_seeds(s, i) for s in seeds]
            progress(0.85 * i / len(spans), f"piece {i + 1}/{len(spans)}" if len(spans) > 1 else "encoding")
            piece = wav[span.start:span.end]
            # vq02_dither > 0 makes the tokens depend on the seed: the batch shares the first seed's encoding
            prompt = self.encode_prompt(piece, sr, seed=seeds[0], timings=timings)
            used.append(prompt)
            prefix = prompts.edit_instruction(request.edit_type, request.edit_info,
                                              tags.for_model(text or "", self.options.tag_vocabulary), new)
            ids = prompts.build_edit_prompt(self.text_tokenizer.encode, prefix, prompt.token_str,
                                            segment_bos=self.options.segment_bos)
            progress(0.85 * (i + 0.3) / len(spans), "generating")
            cap = self.options.max_new_tokens or max_new_tokens_for_audio(len(prompt.tokens))
            generated = self._generate_rows(ids, cap, sub, timings, self._edit_head())
            progress(0.85 * (i + 0.8) / len(spans), "decoding")
            for row, audio, (checked, gen) in zip(rows, batching.decode_rows(self, generated, prompt, sub, timings),
                                                generated):
                row.add(audio, checked, self._piece_meta(ids, gen, checked, text))
        timings["total"] = time.perf_counter() - t0
        progress(1.0, "done")
        spans_s = [(s.start / sr, s.end / sr) for s in spans]
        return [EngineResult(audio=AudioClip.from_array(longform.join_pieces(row.outs, OUTPUT_SAMPLE_RATE),
                                                        OUTPUT_SAMPLE_RATE),
                             text=edit_result_text(request, audio_text), seed=s, edit_type=request.edit_type,
                             edit_info=request.edit_info, iteration=iteration, timings=dict(timings),
                             tokens=tuple(row.tokens),
                             metadata=self._result_meta(used, row.meta, spans_s=spans_s, **batching.batch_meta(seeds)))
                for s, row in zip(seeds, rows)]

    # -- stages ---------------------------------------------------------------------------------------
    def encode_prompt(self, wav: np.ndarray, sample_rate: int, *, seed: int | None = None,
                      timings: dict | None = None, store: PromptTokenStore | None = None) -> PromptAudio:
        """Tokens, prompt mel and x-vector of one clip (<= 30 s), cached by content hash (runtime.PromptEncoder);
        ``store`` is a library voice's token cache (read before tokenizing, written after)."""
        return self._prompts.encode(wav, sample_rate, seed=seed, timings=timings, store=store)

    def _clone_head(self, speaker: str, prompt_text: str, prompt: PromptAudio) -> tuple[int, ...]:
        """The prefix-cache boundary of a clone prompt: where its voice part ends (model.prefix_cache)."""
        return (len(prompts.clone_prompt_head(self.text_tokenizer.encode, speaker, prompt_text, prompt.token_str,
                                              segment_bos=self.options.segment_bos)),)

    def _edit_head(self) -> tuple[int, ...]:
        return (len(prompts.edit_prompt_head(self.text_tokenizer.encode, segment_bos=self.options.segment_bos)),)

    def _generate_rows(self, ids: list[int], cap: int, seeds: list[Mapping[str, int]], timings: dict,
                       boundaries: tuple[int, ...] = ()):
        """[(checked tokens, GenerationResult)] per row of sub-seeds: one prefill, one batched decode."""
        opts = SamplingOptions(temperature=self.options.temperature, top_k=self.options.top_k,
                               top_p=self.options.top_p, constrained=self.options.constrained, max_new_tokens=cap)
        with torch.inference_mode(), llm_wait(self.llm):       # a remote LLM: other requests go on meanwhile
            gens = generate_batch(self.llm, ids, [s["llm"] for s in seeds], opts, prefix_cache=self._prefix,
                                  prefix_boundaries=boundaries)
        timings["llm_prefill"] = timings.get("llm_prefill", 0.0) + gens[0].prefill_s
        timings["llm_decode"] = timings.get("llm_decode", 0.0) + gens[0].decode_s
        return [(checked_llm_output(gen), gen) for gen in gens]

    def decode_tokens(self, tokens, prompt: PromptAudio, seed: int = 0) -> np.ndarray:
        """Audio tokens (prompt-token space, whole 2+3 groups) -> 24 kHz samples in ``prompt``'s voice, exactly
        as a request with ``seed`` decodes its first piece (training rewards score sampled outputs with it)."""
        return self._decode(tokens, prompt, derive_seeds(seed, 0), {})

    def _decode(self, tokens, prompt: PromptAudio, seeds: Mapping[str, int], timings: dict) -> np.ndarray:
        """Generated tokens -> 24 kHz samples; the decoder applies the official bf16 rounding of the prompt
        mel and x-vector (``EngineOptions.official_bf16_roundtrip``)."""
        t0 = time.perf_counter()
        with torch.inference_mode():
            wav = self.decoder.token2wav(torch.tensor([list(tokens)], dtype=torch.long),
                                         torch.tensor([list(prompt.tokens)], dtype=torch.long),
                                         prompt.speech_feat, prompt.embedding,
                                         flow_seed=seeds["flow"], hift_seed=seeds["hift"])
        out = wav.detach().float().cpu().numpy().reshape(-1)
        timings["decode"] = timings.get("decode", 0.0) + time.perf_counter() - t0
        return out

    # -- metadata -------------------------------------------------------------------------------------
    @staticmethod
    def _piece_meta(ids, gen, checked, text) -> dict:
        return {"text": text, "prompt_ids": tuple(ids), "generated_ids": tuple(gen.ids),
                "prompt_len": len(ids), "generated": len(gen.ids), "stop_reason": gen.stop_reason,
                "groups": checked.groups, "repair": checked.problem, "dropped": checked.dropped,
                "llm_seed": gen.seed, "decode_tok_s": gen.decode_tok_s}

    def _result_meta(self, used: list[PromptAudio], pieces: list[dict], **extra) -> dict:
        """Token streams of the prompt(s) (concatenated over long-form pieces), per-piece details."""
        meta = {"engine": "stepaudio", "sample_rate": OUTPUT_SAMPLE_RATE, "pieces": pieces,
                "prompt_tokens": tuple(t for p in used for t in p.tokens),
                "prompt_vq02": tuple(t for p in used for t in p.vq02),
                "prompt_vq06": tuple(t for p in used for t in p.vq06), "device": self.device.type,
                "prompt_cache": {"hits": self._cache.hits, "misses": self._cache.misses},
                "prefix_cache": {"hits": self._prefix.hits, "reused_tokens": self._prefix.reused_tokens}}
        meta.update(extra)
        return meta

    # -- streaming ------------------------------------------------------------------------------------
    def _stream_clone(self, request: CloneRequest, should_stop: StopCheck) -> Iterator[np.ndarray]:
        """Clone (a request :meth:`Engine.stream_clone` validated), yielding 24 kHz float32 chunks as the LLM
        emits audio groups (streaming token2wav: the flow decodes each new group with a bounded look-back).
        Long target texts are streamed piece after piece. ``should_stop`` / closing the iterator cancel the
        LLM at its next step. One row of :meth:`_stream_clone_rows`."""
        for _, chunk in self._stream_clone_rows(request, [request.seed], should_stop):
            yield chunk

    def _stream_edit(self, request: EditRequest, should_stop: StopCheck) -> Iterator[np.ndarray]:
        """One round of an edit (validated by :meth:`Engine.stream_edit`) of a clip of at most 30 s, yielding
        24 kHz chunks as they are decoded."""
        clip = request.audio
        if clip.duration > longform.MAX_PIECE_S:
            raise InvalidInputError(f"streaming edits one round of at most {longform.MAX_PIECE_S:.0f} s")
        with self._lock:
            prompt = self.encode_prompt(peak_cap(clip.samples), clip.sample_rate, seed=request.seed)
            new_text = request.new_text if request.edit_type == catalog.PARALINGUISTIC else None
            new_text = tags.for_model(new_text, self.options.tag_vocabulary) if new_text else None
            vocabulary = self.options.tag_vocabulary
            prefix = prompts.edit_instruction(request.edit_type, request.edit_info,
                                              tags.for_model(request.audio_text or "", vocabulary), new_text)
            ids = prompts.build_edit_prompt(self.text_tokenizer.encode, prefix, prompt.token_str,
                                            segment_bos=self.options.segment_bos)
            cap = self.options.max_new_tokens or max_new_tokens_for_audio(len(prompt.tokens))
            yield from self._stream(ids, cap, prompt, derive_seeds(request.seed, 0), should_stop, self._edit_head())

    def _stream(self, ids: list[int], cap: int, prompt: PromptAudio, seeds: Mapping[str, int],
                should_stop: StopCheck, boundaries: tuple[int, ...] = ()) -> Iterator[np.ndarray]:
        """One row of stream_rows: the LLM samples in a worker thread, a streaming decoder turns its groups
        into chunks here; the engine lock is held by the caller until the iterator is exhausted or closed."""
        for _, chunk in stream_rows(self, ids, cap, prompt, [seeds], should_stop, boundaries):
            yield chunk

    def _stream_clone_rows(self, request: CloneRequest, seeds: list[int],
                           should_stop: StopCheck) -> Iterator[tuple[int, np.ndarray]]:
        """Engine.stream_clone_batch for a validated request within the work cap: the candidates decode as one
        batch per piece of the target text, every row streaming (stream_rows)."""
        clip = request.prompt_audio
        if clip.duration > longform.MAX_PIECE_S:
            raise InvalidInputError(f"streaming takes a prompt of at most {longform.MAX_PIECE_S:.0f} s")
        speaker = prompts.clone_speaker_name(request.prompt_text, clip.loaded)
        with self._lock:
            prompt = self.encode_prompt(clip.samples, clip.sample_rate, seed=seeds[0], store=request.prompt_store)
            for i, text in enumerate(longform.split_target_text(request.target_text)):
                if should_stop():
                    return
                ids = prompts.build_clone_prompt(self.text_tokenizer.encode, speaker, request.prompt_text,
                                                 prompt.token_str, text, segment_bos=self.options.segment_bos)
                cap = self.options.max_new_tokens or max_new_tokens_for_text(text)
                yield from stream_rows(self, ids, cap, prompt, [derive_seeds(s, i) for s in seeds], should_stop,
                                       self._clone_head(speaker, request.prompt_text, prompt))

    def stream_clone_batch(self, request: CloneRequest, seeds: Sequence[int],
                           should_stop: StopCheck | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Engine.stream_clone_batch: one prefill, the candidates decoded together, every row streaming."""
        return batching.stream_clone_batch(self, request, seeds, should_stop)

    def with_options(self, **changes) -> "StepAudioEngine":
        """A second engine over the same loaded models with some options changed (own prompt cache).

        Options baked into the loaded models (``vq02_dither``, ``official_bf16_roundtrip``) cannot change
        here; load another engine with them."""
        fixed = sorted(set(changes) & {"vq02_dither", "official_bf16_roundtrip"})
        if fixed:
            raise InvalidInputError(f"{', '.join(fixed)} is fixed at load time; pass it to load_stepaudio_engine")
        options = replace(self.options, **changes)
        return StepAudioEngine(llm=self.llm, text_tokenizer=self.text_tokenizer,
                               audio_tokenizer=self.audio_tokenizer, decoder=self.decoder, device=self.device,
                               options=options, paths=self.paths)


def _asr_installed() -> bool:
    import importlib.util
    return importlib.util.find_spec("faster_whisper") is not None


def load_stepaudio_engine(model_path=None, *, download: bool = False, device: str | None = None,
                          dtype: str | None = None, quantization: str | None = None,
                          options: EngineOptions | None = None,
                          progress: Callable[[float, str], None] | None = None,
                          llm_server: str | None = None, llm_model: str | None = None) -> StepAudioEngine:
    """Find / download and verify the checkpoint, then load every component once.

    Raises ModelUnavailableError when no checkpoint is found (``load_engine("auto")`` then uses the lite
    engine) and CheckpointError when one is found but broken. ``llm_server``: the LLM stage runs on that vLLM
    server (``model.remote``; LLMServerError when it cannot serve) instead of loading the LLM here.
    """
    paths = resolve_checkpoint(model_path, download=download, progress=progress)
    dev = pick_device(device)
    llm_dtype = pick_llm_dtype(dev, dtype)
    options = options or EngineOptions()
    from .tokenizer.audio_tokenizer import StepAudioTokenizer
    from .model.loading import load_step1
    from .model.text_tokenizer import load_text_tokenizer
    from .model.remote import RemoteStep1
    remote = RemoteStep1.connect(llm_server, llm_model) if llm_server else None   # a bad server fails fast
    decoder = _load_decoder(paths, dev, options)
    if quantization == "int8" and dev.type == "cpu":       # the CPU int8 path covers the flow's DiT too
        from .decoder.flow import quantize_estimator_int8
        quantize_estimator_int8(decoder.flow)
    text_tokenizer = load_text_tokenizer(paths.editx)
    llm = remote or load_step1(paths.editx, device=dev, dtype=llm_dtype, quantization=quantization,
                               int8_lm_head=options.int8_lm_head)
    audio_tokenizer = StepAudioTokenizer.from_pretrained(paths.tokenizer, device=dev,
                                                         dither=options.vq02_dither)
    return StepAudioEngine(llm=llm, text_tokenizer=text_tokenizer, audio_tokenizer=audio_tokenizer,
                           decoder=decoder, device=dev, options=options, paths=paths)


def _load_decoder(paths: CheckpointPaths, device: torch.device, options: EngineOptions):
    """The CosyVoice decoder (flow + HiFT, fp32) and its prompt front end (mel, CAM++)."""
    try:
        from .decoder.cosyvoice import CosyVoiceDecoder
    except ImportError as exc:
        raise ModelUnavailableError(f"the CosyVoice decoder module is not available: {exc}") from exc
    return CosyVoiceDecoder.from_pretrained(paths.cosyvoice, device=device,
                                            bf16_roundtrip=options.official_bf16_roundtrip)
