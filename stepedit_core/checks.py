"""A quality check on every take: does it say the text, in the source voice, at a plausible length, unclipped?

Users of the official model report edits that drop clauses and hallucinate words; the advice they get is to run
an ASR over every output by hand. :class:`Checker` does that for any engine:

- intelligibility: the take is transcribed offline (whisper ``base`` of the lite engine, or a larger local
  CTranslate2 whisper named by ``$STEPEDIT_CHECK_WHISPER``) and scored against the text it should say
  (paralinguistic [tags] removed): WER for English, CER for Mandarin (``lite.metrics.error_rate``);
- speaker similarity to the source voice (clone prompt, or the take that was edited): the engine's own speaker
  embedding when it has one (CAM++ for Step-Audio-EditX), else the lite embedder (``speaker_embedding.py``);
- duration ratio: take length / the length it should have (source length for edits, scaled by the speed
  option; a speaking rate estimate for clones);
- clipping: the fraction of samples at full scale.

Each measure gets a level, green / amber / red (thresholds below), and the take's verdict is the worst level.
:func:`rank` orders candidates best first; :func:`retry_until_ok` re-rolls seeds until the error rate is low
enough (every seed tried is returned so a recipe can replay it exactly).
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np

from . import catalog
from .errors import InvalidInputError
from .interface import MAX_SEED, AudioClip, EngineResult, Heard, Word  # noqa: F401  (Heard, Word re-exported)
from .check_evidence import WordEvidence, text_measures
from .textnorm import align_counts, sound_tokens  # noqa: F401  (API)
from .validation import check_int, shown

GREEN, AMBER, RED = "green", "amber", "red"
LEVEL_ORDER = {GREEN: 0, AMBER: 1, RED: 2}

# WER / CER: <= 10 % reads as "says the text" (whisper base alone is ~5 % WER on clean read English), > 25 %
# means words are missing or wrong (one dropped clause in a 12-word sentence is ~25-40 %). The level judges the
# rate by sound (textnorm.sound_error_rate; Mandarin: fuzzy toneless pinyin), so that right syllables written with
# other characters (野餐 as 也参) are no error (BENCHMARKS.md, issue #30); WER / CER stay in ``error_rate``.
ERROR_GREEN, ERROR_AMBER = 0.10, 0.25
# A take that lost words is never green, even in a long sentence where one word is < 10 % WER: users report
# edits that drop words, so any deleted word (or CJK character) of the expected text makes the text amber.
DELETIONS_AMBER = 1
# ... and so does any expected word heard as another word: whisper's language model often "repairs" a cut-out
# word into a near neighbour ("read" -> "eat", 一辆 -> 一样; bench/RESULTS_check.md). The comparison is by sound,
# not spelling, so that ASR spelling choices stay green: digits are spelled out ("9" = "nine") and Mandarin is
# compared as toneless pinyin (报告 heard as 包告 is the same syllables).
SUBSTITUTIONS_AMBER = 1
# ... and so does a heard word with almost no audio: a word whisper restores from context gets a 0-80 ms span
# (20 ms grid). 0.09 s, set on lite clones, flagged 9 of 40 intact real clips (spoken "the", "New", counted
# digits at 0.02-0.08 s; BENCHMARKS "Issue #30, third pass"); at 0.05 s the real cuts stay flagged (the relative-
# length evidence of check_evidence catches the restored words too).
MIN_WORD_S = 0.05
DEFAULT_RETRY_THRESHOLD = ERROR_GREEN
MAX_RETRIES = 8
# Speaker similarity (cosine) per embedder: (green at or above, amber at or above); each embedder has its own
# scale, so the levels follow the embedder that made the score.
# CAM++ (the real engine's 192-d x-vector, campplus.onnx): the MLX port of Step-Audio-EditX gates its edits with
# CAM++ and measures 0.77-0.97 between an edit and its source (4 edits; /work/shared/reference/anchors.md §4.1
# [P1]). For clones, the published Seed-TTS-eval speaker similarity of strong zero-shot systems against their
# prompt is 0.66-0.77 (CosyVoice 2 en 0.659 / zh 0.757, CosyVoice 3 0.695 / 0.774; anchors.md §2.1 [C1]) and a
# commercial clone scores 0.50 (ElevenLabs Multilingual v2, measured by Higgs [G1]) -- those use a WavLM (§3.3)
# verification model, not CAM++, so the bands are a judgement from both sources, not a measured EER: green at
# 0.60 (under every strong system's mean and the port's lowest edit), amber down to 0.40 (under the
# commercial clone's 0.50 by the same margin); below that the voice has probably changed.
CAMPPLUS_SIM_GREEN, CAMPPLUS_SIM_AMBER = 0.60, 0.40
# GE2E (Resemblyzer) on the real calibration set (bench/speaker_calibration.py --set real, 13 speakers; BENCHMARKS
# "Issue #30, third pass"): same speaker from 0.589 (median 0.887), different speakers up to 0.793 (median 0.550):
# no separation (margin -0.203). Green at 0.80 is above every different-speaker pair; red below 0.64 is under
# every same-speaker pair of utterances >= 2 s (0.648); amber between means "cannot tell".
# Spectral: same speaker from 0.982, different speakers up to 0.997 (margin -0.015): no level (UNJUDGED_EMBEDDERS).
GE2E_SIM_GREEN, GE2E_SIM_AMBER = 0.80, 0.64
SPECTRAL_SIM_GREEN, SPECTRAL_SIM_AMBER = 0.95, 0.88
SIMILARITY_LEVELS = {"campplus": (CAMPPLUS_SIM_GREEN, CAMPPLUS_SIM_AMBER), "ge2e": (GE2E_SIM_GREEN, GE2E_SIM_AMBER),
                     "spectral": (SPECTRAL_SIM_GREEN, SPECTRAL_SIM_AMBER)}
# Embedders whose scores cannot tell voices apart: on real recordings the spectral fallback scores same-speaker
# pairs 0.947-0.994 and different speakers 0.757-0.956 (issue #30), so the ranges overlap. Their score is reported
# but gets no level (the badge says the voice was not judged) instead of a green it cannot back.
UNJUDGED_EMBEDDERS = frozenset({"spectral"})
NOT_JUDGED = "not judged"
# duration ratio (take / expected): a dropped clause shortens a take by a third or more
DURATION_GREEN, DURATION_AMBER = (0.75, 1.33), (0.55, 1.8)
CLIP_LEVEL = 0.999                           # |sample| at or above this counts as clipped
CLIP_GREEN, CLIP_AMBER = 0.0005, 0.005       # fraction of samples clipped
# Speaking rate for a clone's expected duration (read speech): English ~2.7 words/s, Mandarin ~4.5 chars/s.
EN_WORDS_PER_S, ZH_CHARS_PER_S = 2.7, 4.5
# Expected duration change of the speed edits (the official options; same ratios as lite.timestretch).
SPEED_DURATION = {"faster": 1 / 1.2, "slower": 1 / 0.83, "more faster": 1 / 1.45, "more slower": 1 / 0.7}
EMBED_CACHE = 16                              # source embeddings kept (best-of-N reuses the prompt's)
LARGE_WHISPER_ENV = "STEPEDIT_CHECK_WHISPER"
# The check's whisper decodes one window the length of the take (>= 10 s, lite.asr.MIN_WINDOW_S) for speed; that
# short window mis-hears some intact Mandarin (达摩院 as 达摩运) that whisper's own 30 s window hears right. A
# Mandarin take whose text is not green is decoded again in a 30 s window and the better transcript is kept
# (bench/check_bench.py measures what this costs and what it changes).
SECOND_OPINION_WINDOW_S = 30
# Only for Mandarin: on the bench it changed no English false alarm (words < MIN_WORD_S) and wrote back one cut
# English word ("Good"), at 0.57 s of encoder per clip (BENCHMARKS.md, issue #30).
SECOND_OPINION_LANGUAGES = frozenset({"zh"})
_CJK = re.compile(r"[\u3400-\u9fff]")
_TAG = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class TakeCheck:
    expected: str                         # the text the take should say (tags removed)
    heard: str                            # the ASR transcript
    metric: str                           # "wer" | "cer"
    error_rate: float
    speaker_similarity: float | None
    speaker_model: str | None             # "campplus" | "ge2e" | "spectral"
    duration_ratio: float | None
    clipped: float                        # fraction of samples at full scale
    deleted: int = 0                      # expected words (CJK: characters) missing from what was heard
    substituted: int = 0                  # expected words (CJK: syllables) heard as other words
    rushed: tuple[str, ...] = ()          # heard words shorter than MIN_WORD_S (restored from context?)
    levels: Mapping[str, str] = field(default_factory=dict)   # measure -> green / amber / red
    words: tuple[Word, ...] = ()
    seconds: float = 0.0                  # wall-clock time of the check
    unsupported: tuple[str, ...] = ()     # expected words heard, but with no speech / voicing / length under them
    evidence: tuple[WordEvidence, ...] = ()   # per expected word (check_evidence.py)
    decodes: int = 1                      # ASR passes run (2: a second window was asked, see SECOND_OPINION)
    speaker_judged: bool | None = None    # False: the embedder cannot tell voices apart (UNJUDGED_EMBEDDERS)
    sound_error_rate: float | None = None  # by sound (textnorm.sound_error_rate): what the text level judges

    @property
    def verdict(self) -> str:
        return max(self.levels.values(), key=LEVEL_ORDER.__getitem__, default=GREEN)

    @property
    def judged_error_rate(self) -> float:
        """The error rate the text level is judged on: by sound when known (older checks: WER / CER)."""
        return self.error_rate if self.sound_error_rate is None else self.sound_error_rate

    def passes(self, threshold: float = DEFAULT_RETRY_THRESHOLD) -> bool:
        """The auto-retry criterion: the error rate (by sound) at most ``threshold`` and no word missing."""
        return self.judged_error_rate <= threshold and self.deleted < DELETIONS_AMBER

    def summary(self) -> str:
        """One line with the numbers, e.g. for a badge's hover text."""
        parts = [f"{self.metric.upper()} {self.error_rate:.0%}" + (f" ({self.deleted} missing)" if self.deleted else "")
                 + (f" ({self.substituted} misheard)" if self.substituted else "")
                 + (f" (too short: {' '.join(self.rushed)})" if self.rushed else "")
                 + (f" (no audio under: {' '.join(self.unsupported)})" if self.unsupported else "")]
        if self.speaker_similarity is not None:
            parts.append(f"speaker {self.speaker_similarity:.2f} ({self.speaker_model}"
                         + (f": {NOT_JUDGED}, it cannot tell voices apart)" if self.speaker_judged is False else ")"))
        if self.duration_ratio is not None:
            parts.append(f"duration x{self.duration_ratio:.2f}")
        parts.append(f"clipping {self.clipped:.2%}")
        return f"{self.verdict}: " + ", ".join(parts) + f' — heard "{self.heard}"'

    def to_dict(self) -> dict:
        d = asdict(self)
        d["words"] = [[w.text, round(w.start, 3), round(w.end, 3)] for w in self.words]
        d["levels"] = dict(self.levels)
        d["rushed"] = list(self.rushed)
        d["unsupported"] = list(self.unsupported)
        d["evidence"] = [e.to_dict() for e in self.evidence]
        d["verdict"] = self.verdict
        for k in ("error_rate", "speaker_similarity", "duration_ratio", "clipped", "seconds", "sound_error_rate"):
            if d[k] is not None:
                d[k] = round(float(d[k]), 4)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "TakeCheck":
        fields = {k: d[k] for k in ("expected", "heard", "metric", "error_rate", "speaker_similarity",
                                    "speaker_model", "duration_ratio", "clipped", "deleted", "substituted")
                  if k in d}
        return cls(**fields, levels=dict(d.get("levels", {})), seconds=float(d.get("seconds", 0.0)),
                   rushed=tuple(str(w) for w in d.get("rushed", ())),
                   unsupported=tuple(str(w) for w in d.get("unsupported", ())),
                   evidence=tuple(WordEvidence.from_dict(e) for e in d.get("evidence", ())),
                   decodes=int(d.get("decodes", 1)), speaker_judged=d.get("speaker_judged"),
                   sound_error_rate=d.get("sound_error_rate"),
                   words=tuple(Word(str(t), float(a), float(b)) for t, a, b in d.get("words", ())))


# ---------------------------------------------------------------------------- measures
def expected_text(text: str) -> str:
    """The words a take should say: paralinguistic and language [tags] removed."""
    return " ".join(_TAG.sub(" ", text or "").split())


def language_of(text: str) -> str:
    return "zh" if _CJK.search(text or "") else "en"


def clipped_fraction(samples: np.ndarray) -> float:
    x = np.asarray(samples)
    return float(np.mean(np.abs(x) >= CLIP_LEVEL)) if x.size else 0.0


def expected_clone_seconds(text: str) -> float:
    """Read-speech duration of ``text`` (tags removed)."""
    plain = expected_text(text)
    n_cjk = len(_CJK.findall(plain))
    n_words = len(_CJK.sub(" ", plain).split())
    return n_cjk / ZH_CHARS_PER_S + n_words / EN_WORDS_PER_S


def expected_edit_seconds(source_seconds: float, edit_type: str, edit_info: str | None) -> float | None:
    """Length an edit's output should have; None when it is not predictable (silence removal)."""
    if edit_type == catalog.VAD:
        return None
    if edit_type == catalog.SPEED:
        return source_seconds * SPEED_DURATION.get(edit_info or "", 1.0)
    return source_seconds     # emotion, style, denoise keep the length; paralinguistic adds < 1 s per tag


def level(value: float | None, green: tuple | float, amber: tuple | float, *, higher_is_better: bool = False) -> str | None:
    """green / amber / red for ``value``; bands are (low, high) tuples or one bound."""
    if value is None:
        return None

    def inside(band) -> bool:
        if isinstance(band, tuple):
            return band[0] <= value <= band[1]
        return value >= band if higher_is_better else value <= band
    return GREEN if inside(green) else AMBER if inside(amber) else RED


# ---------------------------------------------------------------------------- the checker
Transcriber = Callable[[AudioClip, "str | None"], Heard]
Embedder = Callable[[AudioClip], np.ndarray]


class Checker:
    """Runs the check with a transcriber and a speaker embedder (both CPU, thread-safe by locking)."""

    def __init__(self, transcribe: Transcriber, embed: Embedder | None = None, speaker_model: str | None = None,
                 second_opinion: Transcriber | None = None):
        self._transcribe, self._embed, self.speaker_model = transcribe, embed, speaker_model
        self._second = second_opinion      # a second decode, asked only when the first one's text is not green
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def heard(self, clip: AudioClip, language: str | None = None) -> Heard:
        return self._transcribe(clip, language)

    def embedding(self, clip: AudioClip) -> np.ndarray | None:
        if self._embed is None:
            return None
        key = hashlib.sha1(np.ascontiguousarray(clip.samples).tobytes()).hexdigest() + str(clip.sample_rate)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        e = np.asarray(self._embed(clip), np.float64).reshape(-1)
        e = e / (np.linalg.norm(e) + 1e-12)
        with self._lock:
            self._cache[key] = e
            while len(self._cache) > EMBED_CACHE:
                self._cache.popitem(last=False)
        return e

    def similarity(self, a: AudioClip, b: AudioClip) -> float | None:
        ea, eb = self.embedding(a), self.embedding(b)
        return None if ea is None or eb is None else float(np.dot(ea, eb))

    def check(self, take: AudioClip, text: str, *, source: AudioClip | None = None,
              expected_seconds: float | None = None, language: str | None = None) -> TakeCheck:
        """Score ``take`` against the ``text`` it should say and the ``source`` voice; ``language`` ("en" /
        "zh") overrides the one the text's script implies (it picks the ASR language and WER vs CER)."""
        t0 = time.perf_counter()
        expected = expected_text(text)
        lang = language or language_of(expected)
        metric = "cer" if lang == "zh" else "wer"
        heard = self.heard(take, lang)
        part, decodes = self._text_part(take, expected, metric, heard), 1
        if part["level"] != GREEN and self._second is not None and expected and lang in SECOND_OPINION_LANGUAGES:
            again = self._text_part(take, expected, metric, self._second(take, lang))
            decodes = 2
            if _badness(again) < _badness(part):
                part = again
        sim = self.similarity(take, source) if source is not None else None
        ratio = take.duration / expected_seconds if expected_seconds else None
        clipped = clipped_fraction(take.samples)
        sim_levels = SIMILARITY_LEVELS.get(self.speaker_model or "", (0.0, 0.0))
        judged = None if sim is None else self.speaker_model not in UNJUDGED_EMBEDDERS
        levels = {"error_rate": part["level"],
                  "speaker_similarity": level(sim, *sim_levels, higher_is_better=True) if judged else None,
                  "duration_ratio": level(ratio, DURATION_GREEN, DURATION_AMBER),
                  "clipping": level(clipped, CLIP_GREEN, CLIP_AMBER)}
        heard = part["heard"]
        return TakeCheck(expected=expected, heard=heard.text, metric=metric, deleted=part["deleted"],
                         substituted=part["substituted"], rushed=part["rushed"],
                         error_rate=float(part["error_rate"]), speaker_similarity=sim,
                         speaker_model=self.speaker_model if sim is not None else None,
                         duration_ratio=ratio, clipped=clipped,
                         levels={k: v for k, v in levels.items() if v is not None}, words=heard.words,
                         seconds=time.perf_counter() - t0, unsupported=part["unsupported"],
                         evidence=part["evidence"], decodes=decodes, speaker_judged=judged,
                         sound_error_rate=float(part["sound_error_rate"]))

    @staticmethod
    @staticmethod
    def _text_part(take: AudioClip, expected: str, metric: str, heard: Heard) -> dict:
        """The text measures of one transcript (check_evidence.text_measures) and the text level they give."""
        m = text_measures(take.samples, take.sample_rate, expected, metric, heard, MIN_WORD_S)
        text_level = level(m["sound_error_rate"], ERROR_GREEN, ERROR_AMBER)
        if expected and text_level == GREEN and (m["deleted"] >= DELETIONS_AMBER or m["rushed"] or m["unsupported"]
                                                 or m["substituted"] >= SUBSTITUTIONS_AMBER):
            text_level = AMBER
        return {**m, "level": text_level}

    def check_result(self, result: EngineResult, *, source: AudioClip | None = None,
                     source_seconds: float | None = None) -> EngineResult:
        """``result`` with its check under ``metadata["check"]`` (other metadata untouched)."""
        if result.edit_type == catalog.CLONE:
            seconds = expected_clone_seconds(result.text)
        else:
            base = source_seconds if source_seconds is not None else (source.duration if source else None)
            seconds = expected_edit_seconds(base, result.edit_type, result.edit_info) if base else None
        c = self.check(result.audio, result.text, source=source, expected_seconds=seconds)
        return attach(result, c)


def attach(result: EngineResult, check: TakeCheck) -> EngineResult:
    return replace(result, metadata={**dict(result.metadata), "check": check.to_dict()})


def check_of(result: EngineResult) -> TakeCheck | None:
    d = result.metadata.get("check") if result.metadata else None
    return TakeCheck.from_dict(d) if isinstance(d, Mapping) else None


def _badness(part: Mapping) -> tuple:
    """Order of two decodes of one take: text level, then words lost or misheard, then error rate."""
    return (LEVEL_ORDER[part["level"]], part["deleted"] + part["substituted"] + len(part["unsupported"]),
            part["sound_error_rate"], part["error_rate"])


# ---------------------------------------------------------------------------- ranking and retries
def sort_key(c: TakeCheck) -> tuple:
    """Best first: verdict, then error rate, then speaker similarity (higher better)."""
    return (LEVEL_ORDER[c.verdict], round(c.judged_error_rate, 4), round(c.error_rate, 4),
            -(c.speaker_similarity or 0.0))


def rank(checks: Sequence[TakeCheck]) -> list[int]:
    """Indices of ``checks`` from best to worst (stable for ties)."""
    return sorted(range(len(checks)), key=lambda i: sort_key(checks[i]))


def retry_seeds(first: int, n: int) -> list[int]:
    """The seeds of tries 1..n: first, first+1, ... (mod 2**31), so a recipe replays them exactly."""
    return [(int(first) + i) % (MAX_SEED + 1) for i in range(n)]


def check_retry(max_tries: object, threshold: object) -> tuple[int, float]:
    """Retry settings as a caller sent them (None / "" = the defaults): whole tries in 1..MAX_RETRIES + 1 and a
    WER/CER threshold in [0, 1]; NaN, infinities, fractions and text are refused (every door's messages)."""
    tries = check_int(1 if max_tries in (None, "") else max_tries, "the number of tries", 1, MAX_RETRIES + 1)
    try:
        limit = float(DEFAULT_RETRY_THRESHOLD if threshold in (None, "") else threshold)
    except (TypeError, ValueError):
        raise InvalidInputError(f"the error-rate threshold must be a number (got {shown(threshold)})") from None
    if not 0.0 <= limit <= 1.0:          # NaN fails this too
        raise InvalidInputError(f"the error-rate threshold must be between 0 and 1 (got {threshold})")
    return tries, limit


def retry_until_ok(run: Callable[[int], EngineResult], check: Callable[[EngineResult], EngineResult], first_seed: int,
                   max_tries: int, threshold: float = DEFAULT_RETRY_THRESHOLD) -> tuple[list[EngineResult], int]:
    """Run with seeds first_seed, first_seed+1, ... until a checked result's error rate <= ``threshold`` or
    ``max_tries`` runs are done. Returns every checked result (in order) and the index of the best one."""
    if not 1 <= int(max_tries) <= MAX_RETRIES + 1:
        raise InvalidInputError(f"the number of tries must be between 1 and {MAX_RETRIES + 1}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise InvalidInputError(f"the error-rate threshold must be between 0 and 1, got {threshold}")
    done: list[EngineResult] = []
    for seed in retry_seeds(first_seed, int(max_tries)):
        done.append(check(run(seed)))
        if check_of(done[-1]).passes(threshold):
            break
    best = rank([check_of(r) for r in done])[0]
    return done, best


def best_of(run: Callable[[int], list[EngineResult]], checker: Checker, source: AudioClip | None, first_seed: int,
            max_tries: int, threshold: float = DEFAULT_RETRY_THRESHOLD,
            run_batch: Callable[[list[int]], list[list[EngineResult]]] | None = None
            ) -> tuple[list[EngineResult], list[EngineResult]]:
    """``run(seed) -> takes`` (a clone, a clone and its edits, an edit's rounds) with the last take checked
    against ``source`` (expected length from the take before it, else from ``source``), re-rolled as in
    :func:`retry_until_ok`. Returns the kept run's takes (its last one checked) and every checked last take in
    the order tried; try i ran with seed ``retry_seeds(first_seed, n)[i]``.

    ``run_batch(seeds) -> [takes per seed]`` (e.g. an engine's ``edit_batch``) makes every try at once, one
    prefill and one batched decode for all (stepedit_core.batching); the tries are then checked in order as
    above, and the ones after the first pass are never checked nor returned."""
    runs: list[list[EngineResult]] = []
    made: dict[int, list[EngineResult]] = {}
    if run_batch is not None and 1 < int(max_tries) <= MAX_RETRIES + 1:
        seeds = retry_seeds(first_seed, int(max_tries))
        made = dict(zip(seeds, run_batch(seeds)))

    def last_of(seed: int) -> EngineResult:
        runs.append(made[seed] if seed in made else run(seed))
        return runs[-1][-1]

    def check(result: EngineResult) -> EngineResult:
        before = runs[-1][-2].audio.duration if len(runs[-1]) > 1 else source.duration if source else None
        return checker.check_result(result, source=source, source_seconds=before)
    done, best = retry_until_ok(last_of, check, first_seed, max_tries, threshold)
    return runs[best][:-1] + [done[best]], done


# ---------------------------------------------------------------------------- default checker
_shared: dict[str, object] = {}
_shared_lock = threading.Lock()


def whisper_transcriber(min_window_s: int | None = None) -> Transcriber:
    """The lite whisper (or ``$STEPEDIT_CHECK_WHISPER``'s model folder) as a Transcriber, one per process;
    ``min_window_s`` = SECOND_OPINION_WINDOW_S for the second opinion."""
    from .listen.asr import WhisperASR   # noqa: PLC0415
    model_dir = os.environ.get(LARGE_WHISPER_ENV) or None
    with _shared_lock:
        asr = _shared.get(f"asr:{model_dir}")
        if asr is None:
            asr = _shared[f"asr:{model_dir}"] = WhisperASR(model_dir=model_dir)

    def transcribe(clip: AudioClip, language: str | None = None) -> Heard:
        t = asr.transcribe(clip.samples, clip.sample_rate, language, word_timestamps=True, fast=True,
                           **({"min_window_s": min_window_s} if min_window_s else {}))
        return Heard(t.text, t.language, tuple(Word(w.text.strip(), w.start, w.end) for w in t.words))
    return transcribe


def checker_for(engine) -> Checker:
    """A Checker for ``engine``: its ``transcribe_words`` / ``speaker_embedding`` when it declares them
    (``Engine.has_own_asr``, ``Engine.speaker_model``), else the lite whisper and the lite speaker embedder.
    ``$STEPEDIT_CHECK_WHISPER`` overrides the transcriber."""
    own = engine.has_own_asr and not os.environ.get(LARGE_WHISPER_ENV)
    transcribe = engine.transcribe_words if own else whisper_transcriber()
    second = whisper_transcriber(SECOND_OPINION_WINDOW_S)   # both engines' own transcriber is this whisper too
    model = engine.speaker_model
    embed = engine.speaker_embedding if model else None
    if embed is None:
        from .listen import speaker_embedding   # noqa: PLC0415
        embed, model = speaker_embedding.default_embedder()
    return Checker(transcribe, embed, model, second_opinion=second)
