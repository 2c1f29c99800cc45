"""Spoken-form text normalisation before the take check scores a transcript (WER / CER).

A correct take saying "nine" and "twelve" must not be scored as wrong because the ASR writes "9" and "12" (issue
#30), and the reverse. Both the expected and the heard text are brought to one canonical form:

- English: number words become digits ("twenty-three" -> ``23``, "a hundred and five" -> ``105``), ordinals
  become ``<n>th`` ("twenty third" and "23rd" -> ``23th``), currency is ``<n> dollar [<m> cent]`` ("$12.50" and
  "twelve dollars fifty cents"), times drop ":00" / "o'clock" and split "9:30" into ``9 30`` (as "nine thirty"
  is said), decimals read ``<a> point <b>``, "%" reads ``percent``, and every number from 1000 to 2999 is split
  into two-digit groups (``19 90``) so that a year said as "nineteen ninety" or "two thousand five" ("twenty oh
  five") matches its digits;
- Mandarin: Chinese numerals become Arabic digits with cn2an (MIT; already a lite-engine dependency through
  misaki.zh): 一百二十 -> 120, 二零二三年 -> 2023年, 两个 -> 2个.

The result is lower-case with punctuation removed (``listen.metrics.normalise_text``), ready for WER / CER. No
library on the index fits the English side without pulling a model stack or an LGPL licence (num2words), so
it is a compact parser here.
"""
from __future__ import annotations

import re
import unicodedata
import warnings
from typing import Sequence

import numpy as np

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_SCALES = {"thousand": 1000, "million": 10**6, "billion": 10**9}
_ORDINALS = {"first": "one", "second": "two", "third": "three", "fifth": "five", "eighth": "eight",
             "ninth": "nine", "twelfth": "twelve"}
for _w in list(_UNITS) + list(_TENS) + ["hundred", *_SCALES]:
    _ORDINALS.setdefault((_w[:-1] + "ieth") if _w.endswith("y") else _w + "th", _w)
_CURRENCY = {"$": "dollar", "£": "pound", "€": "euro"}
_UNIT_SINGULAR = {"dollars": "dollar", "cents": "cent", "pounds": "pound", "euros": "euro", "pence": "penny"}
YEAR_LIKE = re.compile(r"^[12]\d{3}$")        # 1000-2999: read as two-digit groups ("nineteen ninety")
_CJK = re.compile(r"[\u3400-\u9fff]")
_VOWELS = re.compile(r"[aeiouy]+")        # vowel groups: an English syllable count
_PUNCT = re.compile(r"[^\w\s]|_")


def normalise_spoken(text: str, language: str | None = None) -> str:
    """The canonical spoken form of ``text`` (lower case, no punctuation); ``language`` "zh" for Mandarin (also
    picked when the text holds CJK characters)."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = re.sub(r"\[[^\]]*\]", " ", text)                       # paralinguistic / language tags
    if language == "zh" or _CJK.search(text):
        text = chinese_numerals_to_digits(text)
    text = _written_forms(text)
    words = _number_words(_PUNCT.sub(" ", text).split())
    return " ".join(_split_years(words))


def chinese_numerals_to_digits(text: str) -> str:
    """一百二十 -> 120, 二零二三年 -> 2023年 (cn2an's in-sentence transform); text it cannot read is kept."""
    try:
        import cn2an  # noqa: PLC0415  (MIT)
    except ImportError:          # the lite dependencies are not installed: compare the characters as written
        return text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # cn2an warns on words such as 万一 that look like numerals
        try:
            return cn2an.transform(text, "cn2an")
        except (ValueError, KeyError, IndexError):
            return text


def _written_forms(text: str) -> str:
    """Currency, thousands commas, times, am/pm, percent, decimals and digit ordinals as they are said."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)                               # 1,000 -> 1000
    text = re.sub(r"([$£€])\s?(\d+)(?:\.(\d\d))?\b",
                  lambda m: f" {m.group(2)} {_CURRENCY[m.group(1)]} "
                  + (f"{int(m.group(3))} cent " if m.group(3) and int(m.group(3)) else ""), text)
    text = re.sub(r"\b(\d{1,2}):(\d\d)\b", lambda m: m.group(1) + ("" if m.group(2) == "00" else " " + m.group(2)),
                  text)
    text = re.sub(r"\bo['’]?\s?clock\b", " ", text)
    text = re.sub(r"(?<=\d)\s?([ap])\.?\s?m\b\.?", r" \1m", text)
    text = re.sub(r"\s*%", " percent", text).replace("per cent", "percent")
    text = re.sub(r"(\d)\.(\d)", r"\1 point \2", text)
    return re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", r"\1th", text)


class _Run:
    """A number being read from words: ``total`` (scales done) + ``current`` (< 1000); ``last`` = the kind of
    the last word ("unit", "teen", "tens", "hundred", "scale") to tell "twenty three" (23) from "nine thirty"."""

    def __init__(self):
        self.total = self.current = 0
        self.last: str | None = None
        self.scale = 10**12

    def empty(self) -> bool:
        return self.last is None

    def value(self) -> int:
        return self.total + self.current

    def add(self, word: str) -> bool:
        """Take ``word`` into this number; False when it starts a new one."""
        if word in _UNITS or word in _TENS:
            v = _UNITS.get(word, _TENS.get(word))
            kind = "unit" if v < 10 else "teen" if v < 20 else "tens"
            fresh = self.last in (None, "hundred", "scale")
            if not (fresh or (kind == "unit" and self.last == "tens")) or (v == 0 and not self.empty()):
                return False
            self.current += v
            self.last = kind
            return True
        if word == "hundred":
            if self.last not in ("unit", "teen", "tens", None) or self.current >= 100:
                return False
            self.current = (self.current or 1) * 100
            self.last = "hundred"
            return True
        scale = _SCALES[word]
        if scale >= self.scale or self.last == "scale":
            return False
        self.total += (self.current or 1) * scale
        self.current, self.scale, self.last = 0, scale, "scale"
        return True


def _is_number_word(w: str) -> bool:
    return w in _UNITS or w in _TENS or w == "hundred" or w in _SCALES


def _number_words(words: list[str]) -> list[str]:
    """Runs of English number words -> digit tokens; "and" inside a number and "a" before a scale are read."""
    out: list[str] = []
    run = _Run()

    def flush():
        nonlocal run
        if not run.empty():
            out.append(str(run.value()))
        run = _Run()

    skip = False
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if skip:
            skip = False
            continue
        if nxt in ("hundred", *_SCALES) and (w == "a" or (w == "one" and run.empty())):
            flush()
            continue                                      # "a hundred" = 100 (run adds the implied 1)
        if w == "and" and not run.empty() and run.last in ("hundred", "scale") and _is_number_word(nxt):
            continue
        if w == "oh" and (not run.empty() or (out and out[-1].isdigit())) and _UNITS.get(nxt, 10) < 10:
            flush()
            out.append("0" + str(_UNITS[nxt]))            # "twenty oh five" -> 20 05
            skip = True
            continue
        if w in _ORDINALS:      # "second" (of time) too: both texts get the same form, so they still match
            if not run.add(_ORDINALS[w]):
                flush()
                run.add(_ORDINALS[w])
            out.append(f"{run.value()}th")
            run = _Run()
            continue
        if _is_number_word(w):
            if not run.add(w):
                flush()
                run.add(w)
            continue
        flush()
        if w:
            out.append(_UNIT_SINGULAR.get(w, w))
    flush()
    return _am_pm(out)


def _am_pm(words: list[str]) -> list[str]:
    """"10 p m" (spoken "ten p.m." once its dots are gone) -> "10 pm", as "10 PM" reads."""
    out: list[str] = []
    for w in words:
        if w == "m" and len(out) > 1 and out[-1] in ("a", "p") and out[-2].isdigit():
            out[-1] += "m"
        else:
            out.append(w)
    return out


def _split_years(words: list[str]) -> list[str]:
    out: list[str] = []
    for w in words:
        out += [w[:2], w[2:]] if YEAR_LIKE.match(w) else [w]
    return out


# ---------------------------------------------------------------------------- the units WER / CER count
def tokens_of(text: str, metric: str) -> list[str]:
    """The units WER / CER count, after spoken-form normalisation (``textnorm``: "nine" = "9", 一百二十 = 120):
    words, or characters (spaces ignored) for CER."""
    norm = normalise_spoken(text, "zh" if metric == "cer" else None)
    return list(norm.replace(" ", "")) if metric == "cer" else norm.split()


def sound_error_rate(expected: str, heard: str, metric: str) -> float:
    """(substitutions + deletions + insertions) / expected units, compared by sound (:func:`sound_tokens`,
    :func:`sound_key`): what the take check's text level is judged on. An ASR's spelling of what it heard right
    (报告 written 包告, 野餐 written 也参) is not an error of the take; the CER keeps it."""
    ref = sound_tokens(expected, metric)
    subs, dels, ins = align_counts(ref, sound_tokens(heard, metric), sound_key(metric))
    return (subs + dels + ins) / len(ref) if ref else float(bool(sound_tokens(heard, metric)))


def scored_error_rate(expected: str, heard: str, metric: str) -> float:
    """WER / CER of ``heard`` against ``expected``, both in their normalised spoken form."""
    from .listen.metrics import cer, wer   # noqa: PLC0415  (pure python; lite holds the shared metrics)
    return (cer if metric == "cer" else wer)(normalise_spoken(expected, "zh" if metric == "cer" else None),
                                             normalise_spoken(heard, "zh" if metric == "cer" else None))


def sound_tokens(text: str, metric: str) -> list[str]:
    """The units compared by sound: English words with integers spelled out, Mandarin toneless pinyin (numbers,
    written either way, read out in Chinese: 3.1 and 三点一 are both san dian yi)."""
    from .listen.g2p import number_words   # noqa: PLC0415
    if metric == "cer":
        from pypinyin import Style, lazy_pinyin   # noqa: PLC0415  (MIT; already a lite-engine dependency)
        plain = re.sub(r"\[[^\]]*\]", " ", unicodedata.normalize("NFKC", text or "").lower())
        said = _PUNCT.sub(" ", chinese_numbers_read_out(chinese_numerals_to_digits(plain)))
        return [lazy_pinyin(c, style=Style.NORMAL)[0] for c in said if not c.isspace()]
    out: list[str] = []
    for t in tokens_of(text, metric):
        out += number_words(int(t)).split() if t.isdigit() and len(t) < 12 else [t]
    return out


def chinese_numbers_read_out(text: str) -> str:
    """Arabic numbers in Mandarin text as they are read (cn2an's an2cn: 120 -> 一百二十, 2023年 -> 二零二三年,
    3.1 -> 三点一, 50% -> 百分之五十); unchanged without cn2an or where it cannot read them."""
    if not re.search(r"\d", text):
        return text
    try:
        import cn2an  # noqa: PLC0415  (MIT)
    except ImportError:
        return text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return cn2an.transform(text, "an2cn")
        except (ValueError, KeyError, IndexError):
            return text


def fuzzy_pinyin(syllable: str) -> str:
    """The comparison key of a toneless pinyin syllable: the pairs that Mandarin ASR (and many speakers) merge
    are folded, retroflex and flat initials (zh/z, ch/c, sh/s), n/l, and front and back nasal finals (an/ang,
    en/eng, in/ing, ian/iang, uan/uang): 堵车 du che heard as 读策 du ce, 但是 dan shi as 当时 dang shi. These
    are the "fuzzy pinyin" sets of Chinese input methods; anything else (liang / yang, yuan / yun) stays apart."""
    s = syllable
    if s[:2] in ("zh", "ch", "sh"):
        s = s[0] + s[2:]
    elif s[:1] == "n" and len(s) > 1 and s != "ng":
        s = "l" + s[1:]
    if s.endswith("ng") and not s.endswith("ong") and len(s) > 2:
        s = s[:-1]
    return s


def sound_key(metric: str):
    """The function two sound tokens are compared by: fuzzy_pinyin for Mandarin (CER), identity otherwise."""
    return fuzzy_pinyin if metric == "cer" else (lambda t: t)


def heard_tokens(heard, metric: str) -> list[tuple]:
    """The heard text as sound tokens, each with its ASR word's span and that word's syllables ("1990" ->
    nineteen, ninety, both with the span of "1990" and its 4 syllables); no spans when the ASR gave no word
    times. The span is not split between tokens: whisper often gives a word the pause before it."""
    if not heard.words:
        return [(t, None, None, 1) for t in sound_tokens(heard.text, metric)]
    out: list[tuple] = []
    for w in heard.words:
        toks = sound_tokens(w.text, metric)
        n = sum(syllables(t) for t in toks)
        out += [(t, w.start, w.end, n) for t in toks]
    return out


def align_counts(ref: Sequence[str], hyp: Sequence[str], key=None) -> tuple[int, int, int]:
    """(substitutions, deletions, insertions) of the Levenshtein alignment of ``hyp`` to ``ref`` (tokens compared
    as ``key(token)``, e.g. :func:`fuzzy_pinyin`)."""
    if key is not None:
        ref, hyp = [key(t) for t in ref], [key(t) for t in hyp]
    n, m = len(ref), len(hyp)
    d = edit_table(ref, hyp)
    i, j, subs, dels, ins = n, m, 0, 0, 0
    while i or j:
        if i and j and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            subs += ref[i - 1] != hyp[j - 1]
            i, j = i - 1, j - 1
        elif i and d[i, j] == d[i - 1, j] + 1:
            dels, i = dels + 1, i - 1
        else:
            ins, j = ins + 1, j - 1
    return subs, dels, ins


def syllables(word: str) -> int:
    """Syllables of a normalised token: one per CJK character, vowel groups in English (a final silent e
    dropped), spelled-out for digits."""
    if _CJK.search(word):
        return len(_CJK.findall(word))
    if word.isdigit() or (word[:-2].isdigit() and word.endswith("th")):
        from .listen.g2p import number_words  # noqa: PLC0415
        digits = word if word.isdigit() else word[:-2]
        return sum(syllables(w) for w in number_words(int(digits[:11])).split()) if digits else 1
    groups = len(_VOWELS.findall(word))
    if word.endswith("e") and not word.endswith(("le", "ee")) and groups > 1:
        groups -= 1
    return max(1, groups)


def edit_table(ref: Sequence[str], hyp: Sequence[str]) -> np.ndarray:
    """(len(ref) + 1, len(hyp) + 1) Levenshtein distances between every pair of prefixes (unit costs)."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), np.int32)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    return d
