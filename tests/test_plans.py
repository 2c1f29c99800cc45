"""Plain-language edit plans: the instruction list written before the parser, errors, plan text, running."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stepedit_core import catalog, plans
from stepedit_core.interface import AudioClip, CloneRequest
from stepedit_core.plans import PlanError, PlanStep
from tests.fake_engine import FakeEngine

CASES = json.loads((Path(__file__).parent / "data" / "plan_instructions.json").read_text(encoding="utf-8"))["cases"]
GOAL = 0.9


def _mapped(case: dict) -> bool:
    try:
        got = plans.describe(plans.parse_plan(case["text"]))
    except PlanError as exc:
        return "unknown" in case and set(exc.unknown) == set(case["unknown"])
    return got == case.get("plan")


def test_the_instruction_list_is_large_and_bilingual():
    zh = [c for c in CASES if any("\u4e00" <= ch <= "\u9fff" for ch in c["text"])]
    assert len(CASES) >= 60 and len(zh) >= 25 and len(CASES) - len(zh) >= 35


def test_share_of_instructions_mapped_exactly():
    share = sum(_mapped(c) for c in CASES) / len(CASES)
    assert share >= GOAL, [c["text"] for c in CASES if not _mapped(c)]


@pytest.mark.parametrize("text,plan", [
    ("a bit happier and slower, laugh after 'morning'",
     ["emotion happy x1", "speed slower x1", "paralinguistic laugh after 'morning'"]),
    ("更开心一点，语速慢一点，在'早上'后面笑一下",
     ["emotion happy x1", "speed slower x1", "paralinguistic laugh after '早上'"]),
    ("much slower", ["speed slower x3"]), ("quite sad", ["emotion sad x2"]), ("非常生气", ["emotion angry x3"]),
])
def test_the_examples_of_the_issue_and_the_intensity_grades(text, plan):
    assert plans.describe(plans.parse_plan(text)) == plan


def test_unknown_words_are_named_with_the_closest_options():
    with pytest.raises(PlanError) as info:
        plans.parse_plan("make it happyish and whispr")
    assert info.value.unknown == ["happyish", "whispr"]
    assert "happy" in info.value.closest and "whisper" in info.value.closest
    assert "'happyish'" in str(info.value) and "closest options" in str(info.value)
    with pytest.raises(PlanError, match="empty"):
        plans.parse_plan("   ")
    with pytest.raises(PlanError, match="names no edit"):
        plans.parse_plan("please")
    with pytest.raises(PlanError, match="after 'dog'"):
        plans.parse_plan("after 'dog'")


def test_plan_text_round_trips_and_can_be_edited():
    plan = plans.parse_plan("denoise, a bit happier, much slower, cough before 'well' and a sigh at the end")
    lines = plans.describe(plan)
    assert lines == ["denoise", "emotion happy x1", "speed slower x3", "paralinguistic cough before 'well'",
                     "paralinguistic sigh at end"]
    assert plans.parse_plan_text("\n".join(lines)) == plan
    edited = plans.parse_plan_text("emotion sad x2; paralinguistic clears throat after 'Hello'")
    assert edited == (PlanStep("emotion", "sad", 2), PlanStep("paralinguistic", None, 1, "clears throat", "Hello",
                                                              "after"))
    for bad, match in (("emotion purple x1", "unknown emotion option; use one of happy"), ("speed slower x9", "rounds"),
                       ("dance", "not '<edit type>"), ("paralinguistic yawn at end", "unknown paralinguistic")):
        with pytest.raises(Exception, match=match):
            plans.parse_plan_text(bad)


def test_sounds_go_next_to_their_word():
    step = PlanStep(catalog.PARALINGUISTIC, None, 1, "laugh", "morning", "after")
    assert plans.text_with_sound("Good morning, everyone.", step) == "Good morning, [laugh] everyone."
    assert plans.text_with_sound("早上好", PlanStep(catalog.PARALINGUISTIC, None, 1, "laugh", "早上", "after")) == \
        "早上 [laugh]好"
    assert plans.text_with_sound("Well then", PlanStep(catalog.PARALINGUISTIC, None, 1, "sigh", "well",
                                                       "before")) == "[sigh] Well then"
    with pytest.raises(PlanError, match="no 'evening'"):
        plans.text_with_sound("Good morning", PlanStep(catalog.PARALINGUISTIC, None, 1, "laugh", "evening", "after"))


def test_run_plan_on_the_fake_engine():
    engine = FakeEngine()
    base = engine.clone(CloneRequest(AudioClip.from_array(np.sin(np.arange(24000) / 9).astype(np.float32), 24000),
                                     "a prompt", "Good morning everyone", seed=5))
    plan = plans.parse_plan("much happier, a bit slower, laugh after 'morning'")
    takes = plans.run_plan(engine, base.audio, base.text, plan, seed=5)
    assert engine.calls[-5:] == ["emotion", "emotion", "emotion", "speed", "paralinguistic"]
    assert [t.edit_type for t in takes] == ["emotion", "speed", "paralinguistic"]
    assert takes[0].iteration == 3 and takes[-1].text == "Good morning [laugh] everyone"


def test_cli_prints_edits_and_runs_a_plan(capsys, tmp_path):
    import soundfile as sf

    from stepedit_core import cli
    code = cli.main(["plan", "a bit happier and slower, laugh after 'morning'"], engine=FakeEngine())
    assert code == cli.EXIT_OK and capsys.readouterr().out.splitlines() == [
        "emotion happy x1", "speed slower x1", "paralinguistic laugh after 'morning'"]
    assert cli.main(["plan", "make it purple"], engine=FakeEngine()) == cli.EXIT_USAGE
    assert "'purple'" in capsys.readouterr().err
    src, out = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, (0.3 * np.sin(np.arange(24000) / 7)).astype(np.float32), 24000)
    engine = FakeEngine()
    code = cli.main(["plan", "--plan", "emotion sad x2; paralinguistic sigh after 'morning'", "--input", str(src),
                     "--text", "Good morning all", "-o", str(out), "--json", "-q"], engine=engine)
    record = json.loads(capsys.readouterr().out)
    assert code == cli.EXIT_OK and out.exists() and engine.calls == ["emotion", "emotion", "paralinguistic"]
    assert record["text"] == "Good morning [sigh] all" and record["plan"][0] == "emotion sad x2"
