"""Prompt strings and prompt-id assembly, against the official config/prompts.py and tts.py."""
import hashlib

import numpy as np
import pytest

from stepedit_core.errors import InvalidInputError
from stepedit_core.model import prompts as P

CLONE_TPL = """Generate audio with the following timbre, prosody and speaking style

[speaker_start]
speaker name: {speaker}
speaker prompt text: 
{prompt_text}
speaker audio tokens: 
{prompt_wav_tokens}
[speaker_end]
"""

EDIT_SYS = """As a highly skilled audio editing and tuning specialist, you excel in interpreting user instructions and applying precise adjustments to meet their needs. Your expertise spans a wide range of enhancement capabilities, including but not limited to:
# Emotional Enhancement
# Speaking Style Transfer
# Non-linguistic Adjustments
# Audio Tuning & Editing
Note: You will receive instructions in natural language and are expected to accurately interpret and execute the most suitable audio edits and enhancements.
"""


def test_system_prompts_verbatim():
    assert P.AUDIO_EDIT_CLONE_SYSTEM_PROMPT_TPL == CLONE_TPL
    assert "speaker prompt text: \n" in P.AUDIO_EDIT_CLONE_SYSTEM_PROMPT_TPL      # trailing space kept
    assert "speaker audio tokens: \n" in P.AUDIO_EDIT_CLONE_SYSTEM_PROMPT_TPL
    assert P.AUDIO_EDIT_SYSTEM_PROMPT == EDIT_SYS


@pytest.mark.parametrize("edit_type, info, expected", [
    ("emotion", "happy", "Make the following audio more happy. The text corresponding to the audio is: hi there\n"),
    ("emotion", "remove", "Remove any emotion in the following audio and the reference text is: hi there\n"),
    ("speed", "more faster",
     "Make the following audio more more faster. The text corresponding to the audio is: hi there\n"),
    ("speed", "slower", "Make the following audio more slower. The text corresponding to the audio is: hi there\n"),
    ("style", "whisper",
     "Make the following audio more whisper style. The text corresponding to the audio is: hi there\n"),
    ("style", "remove", "Remove any speaking styles in the following audio and the reference text is: hi there\n"),
    ("denoise", None, "Remove any noise from the given audio while preserving the voice content clearly. Ensure that "
     "the speech quality remains intact with minimal distortion, and eliminate all noise from the audio.\n"),
    ("vad", None, "Remove any silent portions from the given audio while preserving the voice content clearly. "
     "Ensure that the speech quality remains intact with minimal distortion, and eliminate all silence from the "
     "audio.\n"),
])
def test_instruction_strings(edit_type, info, expected):
    assert P.edit_instruction(edit_type, info, "  hi there \n") == expected


def test_paralinguistic_instruction_keeps_odd_spacing():
    got = P.edit_instruction("paralinguistic", None, "hi there", "hi [Laughter] there")
    assert got == ("Add some non-verbal sounds to make the audio more natural, the new text is : hi [Laughter] there\n"
                   "  The text corresponding to the audio is: hi there\n")
    with pytest.raises(InvalidInputError):
        P.edit_instruction("paralinguistic", None, "hi", "  ")
    with pytest.raises(InvalidInputError):
        P.edit_instruction("clone", None, "hi")
    with pytest.raises(InvalidInputError):
        P.edit_instruction("emotion", "cheerful", "hi")


class CharTokenizer:
    """A reversible stand-in for SentencePiece: one id per character (ids >= 1000), no BOS."""

    def encode(self, s):
        return [1000 + ord(c) for c in s]

    def decode(self, ids):
        return "".join(chr(i - 1000) if i >= 1000 else f"<{i}>" for i in ids)


def test_edit_prompt_layout():
    tok = CharTokenizer()
    prefix = P.edit_instruction("emotion", "sad", "ok")
    ids = P.build_edit_prompt(tok.encode, prefix, " <audio_1><audio_1030> ")
    expected = ([1, 4] + tok.encode("system\n" + EDIT_SYS) + [3] + [4] + tok.encode("human\n")
                + tok.encode(prefix + "\n<audio_1><audio_1030>\n") + [3] + [4] + tok.encode("assistant\n"))
    assert ids == expected
    # a blank line separates the instruction (which ends in \n) from the audio tokens
    assert "ok\n\n<audio_1>" in tok.decode(ids)


def test_clone_prompt_layout_and_newline_prefix_stripping():
    class SpaceMarking(CharTokenizer):      # SentencePiece-like: a piece marks the start of the text
        def encode(self, s):
            return [999] + super().encode(s)

    tok = SpaceMarking()
    ids = P.build_clone_prompt(tok.encode, "clone_abc", "prompt words", "<audio_3>", "Hello")
    system = CLONE_TPL.format(speaker="clone_abc", prompt_text="prompt words", prompt_wav_tokens="<audio_3>")
    target = tok.encode("\nHello")[len(tok.encode("\n")):]
    assert target == CharTokenizer().encode("Hello")          # the leading marker and "\n" are stripped
    assert ids == ([1, 4] + tok.encode("system\n" + system) + [3] + [4] + tok.encode("human\n") + target + [3]
                   + [4] + tok.encode("assistant\n"))
    with pytest.raises(InvalidInputError):
        P.build_clone_prompt(tok.encode, "s", "p", "<audio_3>", "   ")


def test_segment_bos_option():
    tok = CharTokenizer()
    plain = P.build_edit_prompt(tok.encode, "x\n", "<audio_1>")
    with_bos = P.build_edit_prompt(tok.encode, "x\n", "<audio_1>", segment_bos=True)
    # four encoded segments (system, human, user turn, assistant) each gain a BOS after the fixed prefix
    assert len(with_bos) == len(plain) + 4
    assert with_bos[:3] == [1, 4, 1] and plain[:3] == [1, 4, tok.encode("s")[0]]


def test_chat_template_render():
    msgs = P.edit_messages("Make it so.\n", "<audio_1>")
    text = P.render_chat(msgs)
    assert text == ("<s><|BOT|> system\n" + EDIT_SYS + "<|EOT|><|BOT|> human\nMake it so.\n\n<audio_1>\n<|EOT|>"
                    "<|BOT|> assistant\n")
    clone = P.render_chat(P.clone_messages("spk", "p", "<audio_2>", "Hi"), add_generation_prompt=False)
    assert clone.startswith("<s><|BOT|> system\nGenerate audio") and clone.endswith("<|BOT|> human\nHi<|EOT|>")


def test_clone_speaker_name_follows_the_official_hash():
    rng = np.random.default_rng(0)
    wav = rng.standard_normal((1, 5000)).astype(np.float32) * 0.1
    h = hashlib.sha256("你好 prompt".encode("utf-8"))
    h.update(np.concatenate([wav.reshape(-1)[:1000], wav.reshape(-1)[-1000:]]).tobytes())
    name = P.clone_speaker_name("你好 prompt", wav)
    assert name == "clone_" + h.hexdigest()[:16]
    middle_changed = wav.copy()
    middle_changed[0, 2500] += 0.5
    assert P.clone_speaker_name("你好 prompt", middle_changed) == name     # only the edges are hashed
    assert P.clone_speaker_name("other", wav) != name
    short = wav[:, :1500]
    h2 = hashlib.sha256(b"t")
    h2.update(short.reshape(-1).tobytes())
    assert P.clone_speaker_name("t", short) == "clone_" + h2.hexdigest()[:16]
