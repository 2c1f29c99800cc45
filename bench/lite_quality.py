"""Quality and speed of the lite engine on speech it makes itself.

    python bench/lite_quality.py [--out bench/RESULTS_lite.md] [--quick]

For every edit: what it should change (speed ratio, F0 / range / level / rate per preset, SNR gain,
silence removed), what must stay (ASR error rate against the text, speaker similarity to the input),
and the real-time factor on ~10 s of speech. Speaker similarity uses the GE2E encoder (numpy port in
``stepedit_core/lite/speaker.py``) with resemblyzer's ``pretrained.pt`` fetched by ``pip download``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))            # clip helpers shared with the tests

from audio_clips import add_noise, with_pauses  # noqa: E402
from stepedit_core import catalog  # noqa: E402
from stepedit_core.interface import AudioClip, CloneRequest, EditRequest  # noqa: E402
from stepedit_core.lite import LiteEngine, prosody, voice  # noqa: E402
from stepedit_core.listen import speaker  # noqa: E402
from stepedit_core.listen.dsp import active_rms_db  # noqa: E402
from stepedit_core.listen.metrics import error_rate, f0_stats, si_sdr, spectral_centroid  # noqa: E402
from stepedit_core.lite.timestretch import SPEED_RATIOS  # noqa: E402
from stepedit_core.lite.tts import FEMALE_VOICE, MALE_VOICE  # noqa: E402
from stepedit_core.lite.vad import speech_regions  # noqa: E402

SR = 24000
EN = ("Every morning I walk to the small bakery on the corner. The baker always smiles and asks about my "
      "family, and I buy two warm rolls for breakfast.")
ZH = "每天早上我都会走到街角的小面包店。老板总是笑着问候我的家人，我会买两个热面包当早餐。"


def ge2e_state():
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "resemblyzer==0.1.4",
                        "-d", d], check=True)
        return speaker.load_from_wheel(next(Path(d).glob("*.whl")))


def timed(fn, *a, **k):
    t = time.perf_counter()
    out = fn(*a, **k)
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_lite.md"))
    ap.add_argument("--quick", action="store_true", help="a few presets only")
    args = ap.parse_args()

    eng = LiteEngine()
    state = ge2e_state()
    lines: list[str] = []
    emit = lines.append

    def asr(wav, lang):
        return eng.transcribe(AudioClip(samples=wav, sample_rate=SR), lang)

    def sim(a, b):
        return speaker.similarity(state, a, b, SR)

    def edit(wav, kind, info=None, text=EN, new_text=None):
        req = EditRequest(audio=AudioClip(samples=wav, sample_rate=SR), audio_text=text, edit_type=kind,
                          edit_info=info, new_text=new_text, seed=1)
        res, dt = timed(eng.edit, req)
        return res[0].audio.samples, dt

    # warm up every model once so timings are steady-state
    eng._tts.synthesize("warm up.")
    asr(np.zeros(SR, np.float32) + 1e-4, "en")

    # ---- TTS
    emit("## TTS (Kokoro-82M int8 + misaki G2P)\n")
    emit("| language | voice | audio s | synth s | RTF | ASR error (WER/CER) |")
    emit("|---|---|---|---|---|---|")
    clips = {}
    for lang, text in (("en", EN), ("zh", ZH)):
        for v in (MALE_VOICE, FEMALE_VOICE):
            wav, dt = timed(eng._tts.synthesize, text, v)
            clips[(lang, v)] = wav
            emit(f"| {lang} | {v} | {len(wav) / SR:.1f} | {dt:.2f} | {dt / (len(wav) / SR):.2f} | "
                 f"{error_rate(text, asr(wav, lang)):.1%} |")
    x = clips[("en", MALE_VOICE)]
    dur = len(x) / SR
    base = f0_stats(x, SR)
    base_lvl, base_cent = active_rms_db(x, SR), spectral_centroid(x, SR)
    emit(f"\nEdits below run on the English {MALE_VOICE} clip ({dur:.1f} s; F0 median {base['median']:.0f} Hz, "
         f"range {base['range_st']:.1f} st, level {base_lvl:.1f} dBFS).\n")

    # ---- speed
    emit("## Speed (WSOLA)\n")
    emit("| option | target ratio | measured | within 5 % | F0 change st | WER | speaker sim | RTF |")
    emit("|---|---|---|---|---|---|---|---|")
    for opt, r in SPEED_RATIOS.items():
        y, dt = edit(x, catalog.SPEED, opt)
        m = len(x) / len(y)
        df0 = 12 * np.log2(f0_stats(y, SR)["median"] / base["median"])
        emit(f"| {opt} | {r:.2f} | {m:.3f} | {'yes' if abs(m / r - 1) < 0.05 else 'NO'} | {df0:+.2f} | "
             f"{error_rate(EN, asr(y, 'en')):.1%} | {sim(x, y):.3f} | {dt / dur:.3f} |")

    # ---- denoise
    emit("\n## Denoise (DeepFilterNet3, attenuation limit 30 dB)\n")
    emit("| input SNR dB | SI-SDR in | SI-SDR out | gain dB | WER noisy | WER denoised | speaker sim (clean vs out) | RTF |")
    emit("|---|---|---|---|---|---|---|---|")
    for snr in (0.0, 5.0, 10.0):
        noisy = add_noise(x, snr)
        y, dt = edit(noisy, catalog.DENOISE, text="")
        a, b = si_sdr(x, noisy), si_sdr(x, y)
        emit(f"| {snr:.0f} | {a:.1f} | {b:.1f} | {b - a:+.1f} | {error_rate(EN, asr(noisy, 'en')):.1%} | "
             f"{error_rate(EN, asr(y, 'en')):.1%} | {sim(x, y):.3f} | {dt / (len(noisy) / SR):.3f} |")

    # ---- vad
    emit("\n## Silence removal (WebRTC VAD)\n")
    emit("| clip | in s | out s | silence added s | removed s | speech kept | WER | RTF |")
    emit("|---|---|---|---|---|---|---|---|")
    for pause in (0.8, 1.5):
        padded = with_pauses(x, pause)
        y, dt = edit(padded, catalog.VAD, text="")
        kept = sum(b - a for a, b in speech_regions(y, SR)) / max(1, sum(b - a for a, b in speech_regions(padded, SR)))
        emit(f"| 3 pauses of {pause} s | {len(padded) / SR:.1f} | {len(y) / SR:.1f} | {3 * pause:.1f} | "
             f"{(len(padded) - len(y)) / SR:.1f} | {kept:.1%} | {error_rate(EN, asr(y, 'en')):.1%} | "
             f"{dt / (len(padded) / SR):.3f} |")

    # ---- emotion / style
    emit("\n## Emotion and style presets (WORLD), round 1\n")
    emit("Targets come from `prosody.EMOTION_PRESETS` / `STYLE_PRESETS`; measured = on the output. "
         "'dir' = every targeted change (|pitch| >= 0.5 st, |range-1| >= 0.1, |energy| >= 1 dB, |rate-1| >= 0.03, "
         "|tilt| >= 0.5 dB/oct via spectral centroid) moves the intended way.\n")
    emit("| kind | option | pitch st (target) | range x (target) | level dB (target) | rate (target) | "
         "centroid x | dir | WER | speaker sim | RTF |")
    emit("|---|---|---|---|---|---|---|---|---|---|---|")
    presets = [("emotion", k, p) for k, p in prosody.EMOTION_PRESETS.items()] + \
              [("style", k, p) for k, p in prosody.STYLE_PRESETS.items()]
    if args.quick:
        presets = presets[:4] + [p for p in presets if p[1] in ("whisper", "child", "shout")]
    n_ok = 0
    for kind, opt, p in presets + [("emotion", "remove", None)]:
        y, dt = edit(x, kind, opt)
        st = f0_stats(y, SR)
        dp = 12 * np.log2(st["median"] / base["median"]) if st["median"] else float("nan")
        rr = st["range_st"] / base["range_st"]
        dl = active_rms_db(y, SR) - base_lvl
        rate = len(x) / len(y)
        cent = spectral_centroid(y, SR) / base_cent
        if p is None:
            ok = "n/a"
            tgt = ("-", "4 st", "-", "-")
        else:
            checks = []
            if abs(p.pitch_st) >= 0.5 and not p.whisper:
                checks.append(np.sign(dp) == np.sign(p.pitch_st))
            if abs(p.range - 1) >= 0.1 and not p.whisper:
                checks.append(np.sign(rr - 1) == np.sign(p.range - 1))
            if abs(p.energy_db) >= 1:
                checks.append(np.sign(dl) == np.sign(p.energy_db))
            if abs(p.rate - 1) >= 0.03:
                checks.append(np.sign(rate - 1) == np.sign(p.rate - 1))
            if abs(p.tilt_db) >= 0.5:
                checks.append(np.sign(cent - 1) == np.sign(p.tilt_db))
            if p.whisper:
                checks.append(st["voiced"] < 0.5 * base["voiced"])
            ok = "yes" if all(checks) else "NO"
            n_ok += all(checks)
            tgt = (f"{p.pitch_st:+.1f}", f"{p.range:.2f}", f"{p.energy_db:+.1f}", f"{p.rate:.2f}")
        emit(f"| {kind} | {opt} | {dp:+.2f} ({tgt[0]}) | {rr:.2f} ({tgt[1]}) | {dl:+.1f} ({tgt[2]}) | "
             f"{rate:.3f} ({tgt[3]}) | {cent:.2f} | {ok} | {error_rate(EN, asr(y, 'en')):.1%} | {sim(x, y):.3f} | "
             f"{dt / dur:.3f} |")
    emit(f"\nDirections correct: {n_ok}/{len(presets)} presets.\n")

    # ---- paralinguistic
    emit("## Paralinguistic (one tag after the 8th word)\n")
    emit("| tag | added s | inserted at s | word boundary s | WER of words | speaker sim | RTF |")
    emit("|---|---|---|---|---|---|---|")
    words_en = EN.split()
    words = eng._asr.transcribe(x, SR, "en", word_timestamps=True).words
    boundary = (words[7].end + words[8].start) / 2
    for tag in catalog.PARALINGUISTIC_TAGS:
        new_text = " ".join(words_en[:8] + [f"[{tag}]"] + words_en[8:])
        y, dt = edit(x, catalog.PARALINGUISTIC, new_text=new_text)
        n = min(len(x), len(y))
        at = int(np.flatnonzero(np.abs(y[:n] - x[:n]) > 1e-3)[0]) / SR
        emit(f"| {tag} | {(len(y) - len(x)) / SR:.2f} | {at:.2f} | {boundary:.2f} | "
             f"{error_rate(EN, asr(y, 'en')):.1%} | {sim(x, y):.3f} | {dt / dur:.3f} |")

    # ---- clone
    emit("\n## Clone (stock Kokoro voice -> prompt speaker)\n")
    emit("| prompt | target | stock voice | sim stock->prompt | sim clone->prompt | F0 prompt / clone Hz | "
         "ASR error | RTF (total / audio) |")
    emit("|---|---|---|---|---|---|---|---|")
    prompt_zh = clips[("zh", FEMALE_VOICE)]
    other = prosody.apply_preset(clips[("en", FEMALE_VOICE)], SR, prosody.Preset(pitch_st=-4.0, formant=0.92))
    cases = [("zh female (jf_nezumi)", prompt_zh, "I will see you at the library tomorrow afternoon.", "en"),
             ("en female, pitch -4 st, formants x0.92", other, "明天下午我们在图书馆见面吧。", "zh"),
             ("en male (jm_kumo)", x, "Thank you for coming, it was lovely to see you.", "en")]
    for name, prompt, target, lang in cases:
        res, dt = timed(eng.clone, CloneRequest(prompt_audio=AudioClip(samples=prompt, sample_rate=SR),
                                                prompt_text="-", target_text=target, seed=1))
        y = res.audio.samples
        stock = eng._tts.synthesize(target, res.metadata["stock_voice"])
        prof = voice.estimate_profile(prompt, SR)
        emit(f"| {name} | {target} | {res.metadata['stock_voice']} | {sim(prompt, stock):.3f} | {sim(prompt, y):.3f} | "
             f"{prof.median_f0:.0f} / {f0_stats(y, SR)['median']:.0f} | {error_rate(target, asr(y, lang)):.1%} | "
             f"{dt / (len(y) / SR):.2f} |")

    header = ["# Lite engine quality and speed", "",
              f"Command: `python bench/lite_quality.py{' --quick' if args.quick else ''}` "
              f"(2-core CPU, {time.strftime('%Y-%m-%d')}). All audio is made by the lite TTS; "
              "ASR is the shipped whisper-base; speaker similarity is GE2E cosine (1.0 = same embedding). "
              "RTF = wall time / audio duration, steady state (models loaded).",
              f"Load average while running (other jobs share the 2 cores): {os.getloadavg()[0]:.1f} at the end.", ""]
    Path(args.out).write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    print("\n".join(header + lines))


if __name__ == "__main__":
    main()
