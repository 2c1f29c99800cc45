"""Text -> Kokoro phonemes for Mandarin and English, GPL-free and offline.

- Mandarin: ``misaki.zh.ZHG2P`` (jieba + pypinyin + cn2an; the Kokoro v1.0 phoneme set, Apache-2.0).
- English: a dictionary G2P over misaki's shipped US lexicons (``us_gold.json`` 90k words, ``us_silver.json``
  93k words; the phoneme set Kokoro v1.0 was trained on). ``misaki.en`` itself needs a spaCy pipeline that
  is a hub download, so it is not used: words are looked up directly, with -s/-ed/-ing/'s suffix rules,
  numbers spelled out, and unknown words spelled letter by letter. Homographs take the lexicon's DEFAULT.

Mixed text is split into CJK and Latin runs and each run goes to its own G2P.
"""
from __future__ import annotations

import importlib.resources as resources
import json
import re
from functools import lru_cache

CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(rf"([{CJK}][{CJK}\d\s，。！？、；：“”‘’（）《》…—,.!?;:%]*)|([^{CJK}]+)")
_EN_TOKEN = re.compile(r"\d+(?:\.\d+)?%?|[A-Za-z]+(?:['’][A-Za-z]+)*|[.,!?;:—…()\"“”-]")
PUNCT_KEEP = set(";:,.!?—…\"()“”")      # punctuation symbols in the Kokoro vocabulary
STRESS = "ˈˌ"
VOWEL_STARTS = set("aeiouæɑɐɔəɛɜɪʊʌAIOWYᵊɚ")

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))


def is_chinese(text: str) -> bool:
    """True when ``text`` holds more CJK characters than Latin letters."""
    cjk = len(re.findall(rf"[{CJK}]", text))
    return cjk > 0 and cjk >= len(re.findall(r"[A-Za-z]", text)) / 4


def number_words(n: int) -> str:
    """0 <= n < 10**12 in English words ("one hundred twenty three")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return f"{number_words(head)} {name}" + ("" if rest == 0 else " " + number_words(rest))
    return str(n)


@lru_cache(maxsize=1)
def _lexicons() -> tuple[dict, dict]:
    data = resources.files("misaki") / "data"
    gold = json.loads((data / "us_gold.json").read_text(encoding="utf-8"))
    silver = json.loads((data / "us_silver.json").read_text(encoding="utf-8"))
    return gold, silver


def _lookup(word: str) -> str | None:
    gold, silver = _lexicons()
    for w in (word, word.lower(), word.capitalize()):
        for lex in (gold, silver):
            ps = lex.get(w)
            if isinstance(ps, dict):
                ps = ps.get("DEFAULT")
            if ps:
                return ps
    return None


def _ends_voiceless(ps: str) -> bool:
    return ps[-1:] in tuple("ptkfθ")


def _with_suffix(word: str) -> str | None:
    """-s / -es / -ies / 's, -ed, -ing on a known stem."""
    low = word.lower().replace("’", "'")
    if low.endswith("'s") and (stem := _lookup(low[:-2])):
        return stem + ("s" if _ends_voiceless(stem) else "ᵻz" if stem[-1:] in "szʃʒʧʤ" else "z")
    if low.endswith("s") and len(low) > 3:
        for cut, add in ((1, ""), (2, ""), (3, "y")):
            if (stem := _lookup(low[:-cut] + add)):
                return stem + ("s" if _ends_voiceless(stem) else "ᵻz" if stem[-1:] in "szʃʒʧʤ" else "z")
    if low.endswith("ed") and len(low) > 4:
        for cut in (1, 2):
            if (stem := _lookup(low[:-cut])):
                return stem + ("ᵻd" if stem[-1:] in "td" else "t" if stem[-1:] in "pkfθʃsʧ" else "d")
    if low.endswith("ing") and len(low) > 5:
        for cand in (low[:-3], low[:-3] + "e", low[:-4]):
            if (stem := _lookup(cand)):
                return stem + "ɪŋ"
    return None


def _spell(word: str) -> str:
    return " ".join(_lookup(c.upper()) or "" for c in word if c.isalpha()).strip()


def english_word(word: str) -> str:
    """Phonemes of one English word or number."""
    if word[0].isdigit():
        pct = word.endswith("%")
        word = word.rstrip("%")
        whole, _, frac = word.partition(".")
        spoken = number_words(int(whole)) if len(whole) < 13 else " ".join(_ONES[int(d)] for d in whole)
        if frac:
            spoken += " point " + " ".join(_ONES[int(d)] for d in frac)
        if pct:
            spoken += " percent"
        return " ".join(english_word(w) for w in spoken.split())
    if word.lower() == "a":
        return "ɐ"
    return _lookup(word) or _with_suffix(word) or _spell(word)


def english_g2p(text: str) -> str:
    """English text -> phoneme string (words separated by spaces, punctuation attached)."""
    out, the_pending = "", False
    for tok in _EN_TOKEN.findall(text.replace("’", "'")):
        if tok in PUNCT_KEEP or tok == "-":
            if tok != "-":
                out = out.rstrip() + tok + " "
            continue
        ps = english_word(tok)
        if the_pending:                          # "the" is ði before a vowel, ðə before a consonant
            out += ("ði " if ps.lstrip(STRESS)[:1] in VOWEL_STARTS else "ðə ")
        the_pending = tok.lower() == "the"
        if not the_pending:
            out += ps + " "
    if the_pending:
        out += "ðə"
    return out.strip()


@lru_cache(maxsize=1)
def _zh_g2p():
    import jieba  # noqa: PLC0415
    jieba.setLogLevel(60)                       # silence "Building prefix dict" chatter
    from misaki.zh import ZHG2P  # noqa: PLC0415
    return ZHG2P()


def chinese_g2p(text: str) -> str:
    phonemes, _ = _zh_g2p()(text)
    return phonemes


def phonemize(text: str) -> str:
    """Any mix of Mandarin and English -> one phoneme string."""
    parts = []
    for zh, other in _RUN.findall(text):
        if zh.strip():
            parts.append(chinese_g2p(zh))
        elif other.strip():
            parts.append(english_g2p(other))
    return " ".join(p for p in parts if p).strip()
