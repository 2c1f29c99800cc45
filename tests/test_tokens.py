"""Dual-codebook token layout (stepedit_core/tokens.py) and LLM-output validation."""
import pytest
from safetensors.torch import load_file

from stepedit_core import tokens as T
from stepedit_core.errors import TokenStreamError


def test_interleave_two_to_three_and_tail_dropped():
    vq02 = [10, 11, 12, 13, 14]            # 2 whole pairs + 1 extra
    vq06 = [0, 1, 2, 3, 4, 5, 4095]        # 2 whole triples + 1 extra
    mixed = T.interleave_vq0206(vq02, vq06)
    assert mixed == [10, 11, 1024, 1025, 1026, 12, 13, 1027, 1028, 1029]
    assert T.split_vq0206(mixed) == ([10, 11, 12, 13], [0, 1, 2, 3, 4, 5])


def test_llm_ids_and_strings():
    mixed = [5, 1023, 1024, 5119, 2000]
    ids = T.to_llm_ids(mixed)
    assert ids == [65541, 66559, 66560, 70655, 67536]
    assert T.from_llm_ids(ids) == mixed
    s = T.tokens_to_str(mixed)
    assert s == "<audio_5><audio_1023><audio_1024><audio_5119><audio_2000>"
    assert T.str_to_tokens(s) == mixed
    with pytest.raises(TokenStreamError):
        T.from_llm_ids([3])


def test_rates():
    assert T.TOKEN_RATE_HZ == pytest.approx(41.6667, abs=1e-3)
    assert T.tokens_for_seconds(1.2) == 50


def test_reshape_matches_official_examples():
    assert T.reshape_for_flow([5]).tolist() == [[5, 1025], [0, 1025], [1024, 1025]]
    assert T.reshape_for_flow([5, 6, 1030, 2000, 5119]).tolist() == [[5, 1031], [6, 2001], [1024, 5120]]


def test_reshape_matches_fixture(fixtures_root):
    io = load_file(str(fixtures_root / "flow" / "io.safetensors"))
    names = [k[: -len(".in")] for k in io if k.startswith("reshape.") and k.endswith(".in")]
    assert len(names) >= 8
    for name in names:
        assert (T.reshape_for_flow(io[name + ".in"].tolist()) == io[name + ".out"].numpy()).all(), name
    assert (T.reshape_for_flow(io["in.token_mixed"][0].tolist()) == io["prep.token_reshaped"][0].numpy()).all()


def _group(a0=1, a1=2, b=(1024, 2000, 5119)):
    return T.to_llm_ids([a0, a1, *b])


def test_check_clean_stream():
    ids = _group() + _group(7, 8) + [T.EOT_ID]
    checked = T.check_llm_output(ids)
    assert checked.tokens == (1, 2, 1024, 2000, 5119, 7, 8, 1024, 2000, 5119)
    assert checked.had_eot and checked.dropped == 0 and checked.problem is None and checked.groups == 2


def test_check_missing_eot_keeps_whole_groups():
    ids = _group() + _group()[:3]                     # cap hit mid-group
    checked = T.check_llm_output(ids)
    assert checked.groups == 1 and not checked.had_eot and checked.dropped == 3
    assert "EOT" in checked.problem


def test_check_non_audio_id_cuts_the_stream():
    ids = _group() + [77] + _group() + [T.EOT_ID]
    checked = T.check_llm_output(ids)
    assert checked.groups == 1 and checked.dropped == 6 and "not an <audio_N>" in checked.problem
    with pytest.raises(TokenStreamError):
        T.check_llm_output(ids, repair=False)


def test_check_group_pattern_violation():
    bad = T.to_llm_ids([1, 2, 3, 1024, 1025])        # vq02 code where a vq06 code belongs
    checked = T.check_llm_output(_group() + bad + [T.EOT_ID])
    assert checked.groups == 1 and "2+3" in checked.problem


def test_check_nothing_usable_raises():
    with pytest.raises(TokenStreamError, match="no whole audio group"):
        T.check_llm_output([T.EOT_ID])
    with pytest.raises(TokenStreamError):
        T.check_llm_output(T.to_llm_ids([1, 2, 1024]))


def test_check_groups_rejects_partial():
    with pytest.raises(TokenStreamError):
        T.check_groups([1, 2, 1024])
