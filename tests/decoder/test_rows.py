"""token2wav of a batch's rows (stepedit_core.decoder.rows): one run of the flow's solver for every candidate.

fp32: each row's waveform is bit-identical to the row decoded alone, whatever the other rows' lengths (rows
padded to the longest, attention per length, the adaLN modulation computed once per timestep). int8 DiT: the
activation scales see the whole batch, so rows move (measured on this fixture: mel relative L2 0.015-0.021
against the row decoded alone with the int8 DiT, vs 0.032 for int8 against fp32 and ~1 for another noise
draw: tests/decoder/test_flow.py), and the same batch decoded again is bit-identical.
"""
from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from stepedit_core.decoder.cosyvoice import CosyVoiceDecoder, flow_config_from_dict, load_flow
from stepedit_core.decoder.flow import prefix_lengths, quantize_estimator_int8
from stepedit_core.decoder.hift import HiFTConfig, load_hift

# rows stop at different steps: mixed-token lengths in whole 2+3 groups (the fixture stream has 33 tokens),
# two rows of one length, and different seeds per row
LENGTHS = [30, 20, 30, 10]
FLOW_SEEDS, HIFT_SEEDS = [3, 4, 5, 6], [7, 8, 9, 10]
INT8_BATCH_DRIFT_BOUND = 0.04     # mel relative L2, batch vs alone with the int8 DiT (measured 0.015-0.021)


@pytest.fixture(scope="module")
def decoder(fixtures_root):
    flow = load_flow(load_file(str(fixtures_root / "flow" / "weights.safetensors")),
                     flow_config_from_dict(json.loads((fixtures_root / "flow" / "config.json").read_text())))
    hift = load_hift(load_file(str(fixtures_root / "hift" / "weights.safetensors")),
                     HiFTConfig.from_dict(json.loads((fixtures_root / "hift" / "config.json").read_text())))
    return CosyVoiceDecoder(flow, hift)


@pytest.fixture(scope="module")
def e2e(fixtures_root):
    return load_file(str(fixtures_root / "flow" / "token2wav_e2e.safetensors"))


def _rows(e2e):
    return [e2e["in.token_mixed"][:, :n] for n in LENGTHS]


def _prompt(e2e):
    return e2e["in.prompt_token_mixed"], e2e["in.prompt_feat_bf16"], e2e["in.embedding_bf16"]


def _alone(decoder, e2e, mel_trace: list | None = None):
    out = []
    for tok, fs, hs in zip(_rows(e2e), FLOW_SEEDS, HIFT_SEEDS):
        trace = {} if mel_trace is not None else None
        out.append(decoder.token2wav(tok, *_prompt(e2e), flow_seed=fs, hift_seed=hs, trace=trace))
        if mel_trace is not None:
            mel_trace.append(trace["mel"])
    return out


def test_rows_in_one_batch_are_bit_identical_to_each_row_alone(decoder, e2e):
    batch = decoder.token2wav_rows(_rows(e2e), *_prompt(e2e), flow_seeds=FLOW_SEEDS, hift_seeds=HIFT_SEEDS)
    alone = _alone(decoder, e2e)
    assert [w.shape[1] for w in batch] == [w.shape[1] for w in alone] == [480 * 2 * (3 * n // 5) for n in LENGTHS]
    for a, b in zip(alone, batch):
        assert torch.equal(a, b)
    assert not torch.equal(batch[0], batch[2])          # same length, other seeds: another take


def test_one_row_is_token2wav(decoder, e2e):
    tok = _rows(e2e)[0]
    (wav,) = decoder.token2wav_rows([tok], *_prompt(e2e), flow_seeds=[3], hift_seeds=[7])
    assert torch.equal(wav, decoder.token2wav(tok, *_prompt(e2e), flow_seed=3, hift_seed=7))


def test_rows_need_one_seed_each(decoder, e2e):
    with pytest.raises(ValueError, match="one flow seed and one HiFT seed per row"):
        decoder.token2wav_rows(_rows(e2e), *_prompt(e2e), flow_seeds=[1], hift_seeds=HIFT_SEEDS)


def test_prefix_lengths_reads_only_prefix_masks():
    mask = torch.tensor([[[1, 1, 1, 0]], [[1, 1, 1, 1]], [[1, 0, 0, 0]]], dtype=torch.float32)
    assert prefix_lengths(mask) == [3, 4, 1]
    holed = torch.tensor([[[1, 0, 1, 1]]], dtype=torch.float32)
    assert prefix_lengths(holed) is None                # a general key-padding mask keeps the masked path


def test_int8_rows_stay_close_and_replay_bit_for_bit(decoder, e2e):
    q = CosyVoiceDecoder(copy.deepcopy(decoder.flow), decoder.hift)
    quantize_estimator_int8(q.flow)
    mels = []
    _alone(q, e2e, mels)
    got = {}

    def keep_mels(hift_inference):
        def run(mel, **kw):
            got.setdefault("mels", []).append(mel)
            return hift_inference(mel, **kw)
        return run
    q.hift = copy.copy(decoder.hift)
    q.hift.inference = keep_mels(decoder.hift.inference)
    first = q.token2wav_rows(_rows(e2e), *_prompt(e2e), flow_seeds=FLOW_SEEDS, hift_seeds=HIFT_SEEDS)
    drift = [float((b - a).norm() / a.norm()) for a, b in zip(mels, got["mels"])]
    assert all(d < INT8_BATCH_DRIFT_BOUND for d in drift), drift
    again = q.token2wav_rows(_rows(e2e), *_prompt(e2e), flow_seeds=FLOW_SEEDS, hift_seeds=HIFT_SEEDS)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
