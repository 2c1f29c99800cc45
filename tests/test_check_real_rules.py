"""Rules of the take check changed after real recordings (issue #30, third pass; bench/check_real.py)."""
import numpy as np

from stepedit_core import checks
from stepedit_core.interface import AudioClip, Heard, Word
from stepedit_core.listen import asr


def _checker(text, words):
    return checks.Checker(lambda clip, lang=None: Heard(text, "en", tuple(words)))


def _speech(seconds=1.0, sr=16000):
    t = np.arange(int(sr * seconds)) / sr
    return AudioClip((0.2 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), sr)


def test_a_short_spoken_function_word_is_not_rushed_but_a_word_with_no_time_is():
    # real speech: "the" timed 0.06 s inside a phrase (a real Codec 2 recording had 0.02-0.08 s words)
    spoken = [Word("in", 0.0, 0.2), Word("the", 0.2, 0.26), Word("last", 0.26, 0.6), Word("while", 0.6, 0.95)]
    c = _checker("in the last while", spoken).check(_speech(), "in the last while")
    assert c.rushed == () and c.levels["error_rate"] == "green"
    restored = [Word("in", 0.0, 0.3), Word("the", 0.3, 0.32), Word("last", 0.32, 0.6), Word("while", 0.6, 0.95)]
    c = _checker("in the last while", restored).check(_speech(), "in the last while")
    assert c.rushed == ("the",) and c.levels["error_rate"] == "amber"


def test_a_decoding_loop_aligned_at_zero_length_is_dropped_from_words_and_text():
    w = asr.Word
    said = [w(" Press", 0.0, 0.4), w(" 4", 0.4, 0.88), w(" now.", 0.88, 1.2)]
    loop = [w(" Press", 1.2, 1.2), w(" 4", 1.2, 1.2), w(" now.", 1.2, 1.2), w(" Press", 1.2, 1.2)]
    kept = asr.drop_unplaced_runs(said + loop)
    assert [x.text for x in kept] == [" Press", " 4", " now."]
    # one restored word with no time (a cut the language model wrote back) is not a loop: it stays for the check
    one = [w(" Press", 0.0, 0.4), w(" 4", 0.4, 0.4), w(" now.", 0.4, 0.7)]
    assert asr.drop_unplaced_runs(one) == one
    two = one[:2] + [w(" to", 0.4, 0.4)] + one[2:]
    assert len(asr.drop_unplaced_runs(two)) == 4 and asr.LOOP_RUN_WORDS == 3
