"""Spoken-form normalisation before WER / CER (stepedit_core.textnorm): a take that says "nine" is not wrong when
the ASR writes "9", on either side, and a real difference still counts."""
from __future__ import annotations

import numpy as np
import pytest

from stepedit_core import checks
from stepedit_core.interface import AudioClip
from stepedit_core.textnorm import normalise_spoken

SAME = [  # (as the text says it, as an ASR may write it)
    ("The museum opens at nine and closes at twelve.", "The museum opens at 9 and closes at 12."),
    ("It happened in nineteen ninety.", "It happened in 1990."),
    ("Born in two thousand five.", "Born in 2005."),
    ("Back in twenty oh five.", "Back in 2005."),
    ("The year two thousand and twenty three.", "The year 2023."),
    ("In twenty twenty-three we moved.", "In 2023 we moved."),
    ("A hundred and five people came.", "105 people came."),
    ("One thousand two hundred fifty", "1,250"),
    ("On the twenty third of May", "On the 23rd of May"),
    ("She came first, he came second.", "She came 1st, he came 2nd."),
    ("It costs twelve dollars fifty cents.", "It costs $12.50."),
    ("It costs five dollars.", "It costs $5."),
    ("Meet me at nine thirty.", "Meet me at 9:30."),
    ("At nine o'clock sharp.", "At 9:00 sharp."),
    ("The train leaves at ten p.m.", "The train leaves at 10 PM."),
    ("Fifty percent of three point five", "50% of 3.5"),
    ("一百二十个人", "120个人"),
    ("二零二三年九月十二日", "2023年9月12日"),
    ("两个苹果", "2个苹果"),
]


@pytest.mark.parametrize("said, written", SAME)
def test_spoken_and_written_numbers_have_one_form(said, written):
    assert normalise_spoken(said) == normalise_spoken(written)


def test_the_canonical_forms():
    assert normalise_spoken("Twenty-three, a hundred, 1st!") == "23 100 1th"
    assert normalise_spoken("nineteen ninety") == "19 90"            # years and 1000-2999 in two-digit groups
    assert normalise_spoken("nine thirty") == "9 30"                  # a time is two numbers, as it is said
    assert normalise_spoken("one two three") == "1 2 3"
    assert normalise_spoken("seven hundred thousand") == "700000"
    assert normalise_spoken("He said [Laughter] hi") == "he said hi"
    assert normalise_spoken("我们三点见面", "zh") == "我们3点见面"


@pytest.mark.parametrize("said, written", [
    ("The museum opens at nine.", "The museum opens at 10."),
    ("It happened in nineteen ninety.", "It happened in 1991."),
    ("It costs five dollars.", "It costs $6."),
    ("一百二十个人", "121个人"),
    ("twenty three", "23 3"),
])
def test_different_numbers_stay_different(said, written):
    assert normalise_spoken(said) != normalise_spoken(written)


def _checker(heard: str) -> checks.Checker:
    return checks.Checker(lambda clip, lang: checks.Heard(heard, lang, ()), None, None)


def test_the_check_scores_numbers_by_sound_on_both_sides():
    clip = AudioClip(np.zeros(24000, np.float32), 24000)
    said = "The museum opens at nine and closes at twelve on public holidays."
    for expected, heard in ((said, "The museum opens at 9 and closes at 12 on public holidays."),
                            ("Doors open at 9:30.", "Doors open at nine thirty."),
                            ("博物馆九点开门。", "博物馆9点开门。")):
        c = _checker(heard).check(clip, expected)
        assert c.error_rate == 0.0 and c.deleted == 0 and c.substituted == 0 and c.levels["error_rate"] == "green"
    wrong = _checker("The museum opens at 10 and closes at 12 on public holidays.").check(clip, said)
    assert wrong.substituted == 1 and wrong.levels["error_rate"] != "green"
    assert c.expected == "博物馆九点开门。"            # the JSON keeps the texts as written


def test_mandarin_is_judged_by_its_syllables_and_near_homophones_are_not_errors():
    """Whisper base writes right syllables with other characters (野餐 as 也参, 三点一刻 as 3.1克) and merges the
    fuzzy-pinyin pairs (堵车 du che as 读策 du ce): the take said the text, so the level is green; the CER keeps
    counting the characters. Other syllables (liang / yang) and lost syllables still count."""
    from stepedit_core.textnorm import fuzzy_pinyin, sound_error_rate, sound_tokens
    clip = AudioClip(np.zeros(24000, np.float32), 24000)
    for expected, heard in (("如果下雨，野餐就改到室内。", "如果下雨，也参就改倒室内。"),
                            ("我们三点一刻在街角的咖啡店见面。", "我们3.1克在接轿的咖啡店见面"),
                            ("我觉得我们明天应该早一点出发，避开堵车。", "我觉得我们明天应该早一点出发，避开读策。"),
                            ("今天很累，但是结果很值得。", "今天很累，当时结果很值得。")):
        c = _checker(heard).check(clip, expected)
        assert c.sound_error_rate == 0.0 and c.error_rate > 0, c.summary()    # the CER still counts characters
        assert c.substituted == 0 and c.levels["error_rate"] == "green", c.summary()
        assert c.to_dict()["sound_error_rate"] == 0.0 and c.passes()
        assert checks.TakeCheck.from_dict(c.to_dict()).sound_error_rate == 0.0
    assert sound_tokens("我们3.1克", "cer") == ["wo", "men", "san", "dian", "yi", "ke"]
    assert sound_tokens("2023年", "cer") == sound_tokens("二零二三年", "cer") == ["er", "ling", "er", "san", "nian"]
    assert [fuzzy_pinyin(s) for s in ("zhe", "chang", "shi", "nan", "ling", "xiong", "liang")] == [
        "ze", "can", "si", "lan", "lin", "xiong", "lian"]
    assert fuzzy_pinyin("liang") != fuzzy_pinyin("yang") and fuzzy_pinyin("yuan") != fuzzy_pinyin("yun")
    lost = _checker("我哥哥给他女儿买了一样红色的自行车").check(clip, "我哥哥给他女儿买了一辆红色的小自行车")
    assert lost.substituted == 1 and lost.deleted == 1 and lost.levels["error_rate"] == "amber"
    assert sound_error_rate("一辆红色的小自行车", "一样红色的自行车", "cer") == pytest.approx(2 / 9)
