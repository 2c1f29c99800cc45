"""Text tokenizer on a tiny SentencePiece unigram model trained here with the official special layout:
0 <unk>, 1 <s>, 2 </s>, 3 <|EOT|>, 4 <|BOT|>, then <audio_0..11> as user-defined pieces, byte fallback."""
from __future__ import annotations

import io
import json

import pytest

from stepedit_core.errors import CheckpointError, InvalidInputError
from stepedit_core.model.text_tokenizer import TextTokenizer, load_text_tokenizer

N_AUDIO = 12
CORPUS = ["system human assistant hello world this is a test of the tokenizer",
          "please edit the audio to sound happy and speak slowly", "Speak clearly 你好 世界",
          "emotion style speed paralinguistic breathing laughter"] * 10
CASES = ["<|BOT|> system\nhello<audio_3><audio_11><|EOT|>", "system\nhello", "human\n", "\n", "\nhello world",
         "<s><|BOT|> assistant\n<audio_1><|EOT|>", "  two  spaces ", "你好", "a\tb \u2581x", "<audio_1> <audio_2>x",
         "Hello <unk> there</s>", "\uff21\uff22 \ufb01 é"]


def _train(path, user_symbols):
    import sentencepiece as spm
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=buf, vocab_size=340, model_type="unigram",
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, byte_fallback=True, user_defined_symbols=user_symbols,
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    _train(d / "tokenizer.model", ["<|EOT|>", "<|BOT|>"] + [f"<audio_{i}>" for i in range(N_AUDIO)])
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer", "legacy": False}))
    return d


@pytest.fixture(scope="module", params=["sentencepiece", "tokenizers"])
def tok(folder, request):
    return load_text_tokenizer(folder, request.param, check_official=False)


def test_backends_agree(folder):
    sp = load_text_tokenizer(folder, "sentencepiece", check_official=False)
    tk = load_text_tokenizer(folder, "tokenizers", check_official=False)
    for text in CASES:
        assert sp.encode(text) == tk.encode(text), text
        assert sp.decode(sp.encode(text)) == tk.decode(tk.encode(text)), text


def test_special_ids_and_no_bos(tok):
    assert (tok.bos_id, tok.eot_id, tok.bot_id) == (1, 3, 4)
    assert [tok.piece_to_id(p) for p in ("<unk>", "<s>", "</s>", "<|EOT|>", "<|BOT|>")] == [0, 1, 2, 3, 4]
    assert tok.encode("system\n")[0] != tok.bos_id
    assert tok.encode("<s><|BOT|>") == [1, 4]


def test_prefix_space_only_for_leading_text(tok):
    # "<|BOT|> system" == [4] + enc("system"): the literal space becomes the ▁ of ▁system (architecture §7.2).
    assert tok.encode("<|BOT|> system\n") == [4] + tok.encode("system\n")
    assert tok.encode("<|EOT|>human") != [3] + tok.encode("human")     # no ▁ after a special piece
    assert tok.encode("  x")[:2] == tok.encode(" x")[:1] * 2          # no extra ▁ before leading spaces


def test_audio_tokens_map_to_offset(tok):
    offset = tok.audio_offset
    assert offset == 5                     # right after the specials here; 65536 in the official vocabulary
    ids = tok.encode("".join(f"<audio_{n}>" for n in range(N_AUDIO)))
    assert ids == [offset + n for n in range(N_AUDIO)] == [tok.audio_id(n) for n in range(N_AUDIO)]
    assert tok.encode("<audio_2>\n<audio_7>") == [offset + 2] + tok.encode("\n")[1:] + [offset + 7]


def test_decode_round_trip(tok):
    for text in ["hello world", "<|BOT|> system\nhello<audio_3><|EOT|>", "你好 é"]:
        assert tok.decode(tok.encode(text)) == text


def test_official_vocabulary_check_and_errors(folder, tmp_path):
    with pytest.raises(CheckpointError):
        load_text_tokenizer(folder, check_official=True)       # 340 pieces, <audio_0> = 5
    with pytest.raises(CheckpointError):
        TextTokenizer(tmp_path / "absent.model")
    with pytest.raises(InvalidInputError):
        TextTokenizer(folder / "tokenizer.model", backend="bpe")
    swapped = _train(tmp_path / "tokenizer.model", ["<|BOT|>", "<|EOT|>"])
    with pytest.raises(CheckpointError):
        TextTokenizer(swapped)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"legacy": True}))
    with pytest.raises(CheckpointError):
        load_text_tokenizer(tmp_path, check_official=False)
