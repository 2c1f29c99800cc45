"""The Step1 text tokenizer: the official SentencePiece ``tokenizer.model``.

The official code loads it with ``AutoTokenizer`` (``tokenizer_config.json``: LlamaTokenizer, legacy false)
under transformers 4.53, i.e. the fast tokenizer converted from the SentencePiece model. Its rules, which both
backends here follow:
- special and user-defined pieces written in the text (``<s>``, ``<|BOT|>``, ``<audio_N>``, ...) are matched
  first and map to their own ids;
- the text between them is split by the unigram model with byte fallback; a space becomes ``▁``; no other
  normalisation is applied;
- a ``▁`` is prepended only when the text starts with ordinary text (Metaspace ``prepend_scheme="first"``):
  ``"<|BOT|> system"`` -> ``[4, ▁system]``, ``"system"`` -> ``[▁system]``.

``encode`` never adds ``<s>``: prompt assembly (prompts.py) places BOS itself.

Backends: ``"sentencepiece"`` (default: the SentencePiece unigram with its normaliser switched off and the rules
above applied by hand) and ``"tokenizers"`` (the 4.53 conversion rebuilt with the ``tokenizers`` library; a
cross-check). Decoding drops one leading space, as the converted decoder does.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

from ..errors import CheckpointError, InvalidInputError

TOKENIZER_FILE = "tokenizer.model"
# Official special ids (the release's tokenizer.model): <unk> (also pad), <s>, </s>, <|EOT|> (eos of the LLM), <|BOT|>.
UNK_ID, BOS_ID, EOS_ID, EOT_ID, BOT_ID = 0, 1, 2, 3, 4
OFFICIAL_VOCAB_SIZE = 74752
OFFICIAL_AUDIO_OFFSET = 65536        # id of <audio_0>
OFFICIAL_AUDIO_TOKENS = 5120         # <audio_0> .. <audio_5119> are used (vq02 1024 + vq06 4096)
_SPECIAL_PIECES = {UNK_ID: "<unk>", BOS_ID: "<s>", EOS_ID: "</s>", EOT_ID: "<|EOT|>", BOT_ID: "<|BOT|>"}
# ModelProto.SentencePiece.Type values that are matched as whole strings in the text.
_UNKNOWN, _CONTROL, _USER_DEFINED = 2, 3, 4


class TextTokenizer:
    """``encode(text) -> ids`` (no BOS), ``decode(ids) -> text``, special ids and ``<audio_N>`` ids."""

    def __init__(self, model_file: str | Path, backend: str = "sentencepiece", *, check_official: bool = False):
        self.model_file = Path(model_file)
        if not self.model_file.is_file():
            raise CheckpointError(f"{self.model_file} not found")
        if backend == "sentencepiece":
            self._init_sentencepiece()
        elif backend == "tokenizers":
            self._init_tokenizers()
        else:
            raise InvalidInputError(f"unknown tokenizer backend {backend!r}")
        self.backend = backend
        for i, piece in _SPECIAL_PIECES.items():
            if self.piece_to_id(piece) != i:
                raise CheckpointError(f"{self.model_file}: {piece} has id {self.piece_to_id(piece)}, expected {i}")
        self.audio_offset = self.piece_to_id("<audio_0>")
        if check_official:
            self.check_official()

    # -- sentencepiece backend -------------------------------------------------------------------------
    def _init_sentencepiece(self) -> None:
        import sentencepiece as spm
        from sentencepiece import sentencepiece_model_pb2 as pb

        proto = pb.ModelProto()
        proto.ParseFromString(self.model_file.read_bytes())
        # The converted tokenizer applies no SentencePiece normalisation: no NFKC, no whitespace folding, no
        # dummy prefix (prepended by hand for a leading text segment, see encode).
        proto.normalizer_spec.name = "identity"
        proto.normalizer_spec.precompiled_charsmap = b""
        proto.normalizer_spec.add_dummy_prefix = False
        proto.normalizer_spec.remove_extra_whitespaces = False
        self._sp = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
        self._piece_ids = {p.piece: i for i, p in enumerate(proto.pieces)}
        specials = sorted((p.piece for p in proto.pieces if p.type in (_UNKNOWN, _CONTROL, _USER_DEFINED)),
                          key=len, reverse=True)
        self._split_re = re.compile("(" + "|".join(map(re.escape, specials)) + ")")
        self.vocab_size = len(proto.pieces)

    def _encode_sentencepiece(self, text: str) -> list[int]:
        ids: list[int] = []
        for k, seg in enumerate(self._split_re.split(text)):
            if k % 2:                                   # odd entries are the matched special pieces
                ids.append(self._piece_ids[seg])
            elif seg:
                first = k == 0 and not seg.startswith((" ", "\u2581"))   # Metaspace prepend "first"
                ids += self._sp.encode(" " + seg if first else seg)
        return ids

    # -- tokenizers backend -----------------------------------------------------------------------------
    def _init_tokenizers(self) -> None:
        """The fast tokenizer that transformers 4.53 built from tokenizer.model (LlamaConverter, legacy false):
        Unigram over the piece scores with byte fallback, spaces replaced by ``▁``, Metaspace prepend
        "first", user-defined pieces as added tokens, control pieces as special tokens. (transformers 5
        maps LlamaTokenizer to a BPE model, which does not reproduce a unigram vocabulary, so it is not used.)"""
        from sentencepiece import sentencepiece_model_pb2 as pb
        from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

        proto = pb.ModelProto()
        proto.ParseFromString(self.model_file.read_bytes())
        if proto.trainer_spec.model_type != 1:
            raise CheckpointError(f"{self.model_file} is not a unigram SentencePiece model")
        vocab = [(p.piece, 0.0 if p.type in (_UNKNOWN, _CONTROL) else p.score) for p in proto.pieces]
        tok = Tokenizer(models.Unigram(vocab, unk_id=proto.trainer_spec.unk_id, byte_fallback=True))
        tok.normalizer = normalizers.Replace(" ", "\u2581")
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
        tok.add_tokens([AddedToken(p.piece, normalized=False, special=False)
                        for p in proto.pieces if p.type == _USER_DEFINED])
        tok.add_special_tokens([AddedToken(p.piece, normalized=False, special=True)
                                for p in proto.pieces if p.type in (_UNKNOWN, _CONTROL)])
        self._tk = tok
        self.vocab_size = tok.get_vocab_size()

    # -- public API ------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without BOS / EOS."""
        if self.backend == "sentencepiece":
            return self._encode_sentencepiece(text)
        return self._tk.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; special and ``<audio_N>`` pieces are rendered as their strings."""
        ids = [int(i) for i in ids]
        if self.backend == "tokenizers":
            text = self._tk.decode(ids, skip_special_tokens=False)
            return text[1:] if text.startswith(" ") else text
        out, run = [], []
        for i in ids:       # sentencepiece drops control pieces when decoding: render them explicitly
            if self._sp.is_control(i) or self._sp.is_unknown(i):
                out.append(self._sp.decode(run))
                out.append(self._sp.id_to_piece(i))
                run = []
            else:
                run.append(i)
        out.append(self._sp.decode(run))
        text = "".join(out)
        return text[1:] if text.startswith(" ") else text

    def piece_to_id(self, piece: str) -> int:
        if self.backend == "sentencepiece":
            return self._piece_ids.get(piece, UNK_ID)
        found = self._tk.token_to_id(piece)
        return UNK_ID if found is None else int(found)

    def audio_id(self, n: int) -> int:
        """LLM id of ``<audio_n>`` (65536 + n in the official vocabulary)."""
        return self.audio_offset + int(n)

    @property
    def bos_id(self) -> int:
        return BOS_ID

    @property
    def eot_id(self) -> int:
        return EOT_ID

    @property
    def bot_id(self) -> int:
        return BOT_ID

    def check_official(self) -> None:
        """Raise CheckpointError unless this is the official vocabulary (size, <audio_N> = 65536 + N)."""
        problems = []
        if self.vocab_size != OFFICIAL_VOCAB_SIZE:
            problems.append(f"vocab size {self.vocab_size} != {OFFICIAL_VOCAB_SIZE}")
        for n in (0, 1, 1023, 1024, OFFICIAL_AUDIO_TOKENS - 1):
            got = self.encode(f"<audio_{n}>")
            if got != [OFFICIAL_AUDIO_OFFSET + n]:
                problems.append(f"<audio_{n}> encodes to {got}, expected [{OFFICIAL_AUDIO_OFFSET + n}]")
        if problems:
            raise CheckpointError(f"{self.model_file} is not the official Step1 vocabulary: " + "; ".join(problems))


def load_text_tokenizer(folder: str | Path, backend: str = "sentencepiece", *,
                        check_official: bool = True) -> TextTokenizer:
    """Tokenizer of an official checkpoint folder (``tokenizer.model`` next to ``config.json``)."""
    folder = Path(folder)
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file() and json.loads(cfg.read_text()).get("legacy", False) is not False:
        raise CheckpointError(f"{cfg.name}: expected legacy false (the official tokenizer splits text without "
                              "SentencePiece's legacy prefix rule)")
    return TextTokenizer(folder / TOKENIZER_FILE, backend, check_official=check_official)
