"""System prompts, instruction strings and the Step1 LLM prompt-id layout of Step-Audio-EditX (the prompt builder).

Everything here is model input and is bit-exact with the official ``config/prompts.py`` and ``tts.py``
Token ids are assembled by hand, as the official code does, around an ``encode``
callable that turns text into SentencePiece ids **without** a BOS.

Open question: the official code calls ``tokenizer.encode`` for every segment, and
whether that prepends ``<s>`` depends on the tokenizer's ``add_bos_token``. ``segment_bos=False`` (default)
gives the layout of the official chat template (``<s><|BOT|> system\\n...``), which the SWIFT oracle's prompt
lengths support; ``segment_bos=True`` reproduces a BOS-prepending tokenizer.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np

from .. import catalog
from ..audio import SPEAKER_HASH_EDGE_SAMPLES  # noqa: F401  (the hash window; audio keeps it for long files)
from ..errors import InvalidInputError

Encode = Callable[[str], list[int]]

# Special ids of the Step1 vocabulary (the release's tokenizer.model).
BOS_ID = 1      # <s>
EOT_ID = 3      # <|EOT|>, the model's eos_token_id
BOT_ID = 4      # <|BOT|>

AUDIO_EDIT_CLONE_SYSTEM_PROMPT_TPL = (
    "Generate audio with the following timbre, prosody and speaking style\n"
    "\n"
    "[speaker_start]\n"
    "speaker name: {speaker}\n"
    "speaker prompt text: \n"
    "{prompt_text}\n"
    "speaker audio tokens: \n"
    "{prompt_wav_tokens}\n"
    "[speaker_end]\n"
)

AUDIO_EDIT_SYSTEM_PROMPT = (
    "As a highly skilled audio editing and tuning specialist, you excel in interpreting user instructions "
    "and applying precise adjustments to meet their needs. Your expertise spans a wide range of enhancement "
    "capabilities, including but not limited to:\n"
    "# Emotional Enhancement\n"
    "# Speaking Style Transfer\n"
    "# Non-linguistic Adjustments\n"
    "# Audio Tuning & Editing\n"
    "Note: You will receive instructions in natural language and are expected to accurately interpret and "
    "execute the most suitable audio edits and enhancements.\n"
)

_REMOVE_EMOTION = "Remove any emotion in the following audio and the reference text is: {audio_text}\n"
_MORE_EMOTION = "Make the following audio more {edit_info}. The text corresponding to the audio is: {audio_text}\n"
_REMOVE_STYLE = "Remove any speaking styles in the following audio and the reference text is: {audio_text}\n"
_MORE_STYLE = ("Make the following audio more {edit_info} style. "
               "The text corresponding to the audio is: {audio_text}\n")
_DENOISE = ("Remove any noise from the given audio while preserving the voice content clearly. Ensure that the "
            "speech quality remains intact with minimal distortion, and eliminate all noise from the audio.\n")
_VAD = ("Remove any silent portions from the given audio while preserving the voice content clearly. Ensure "
        "that the speech quality remains intact with minimal distortion, and eliminate all silence from the "
        "audio.\n")
_PARALINGUISTIC = ("Add some non-verbal sounds to make the audio more natural, the new text is : {text}\n"
                   "  The text corresponding to the audio is: {audio_text}\n")



def edit_instruction(edit_type: str, edit_info: str | None, audio_text: str, text: str | None = None) -> str:
    """The official ``instruct_prefix`` for an audio edit (GH:tts.py ``_build_audio_edit_instruction``).

    ``audio_text`` is the transcript of the audio being edited; ``text`` the new text (paralinguistic only).
    The speed edit shares the emotion templates, exactly as official.
    """
    if edit_type == catalog.CLONE:
        raise InvalidInputError("clone is not an audio edit; use build_clone_prompt")
    edit_info = catalog.check_edit(edit_type, edit_info)
    audio_text = audio_text.strip() if audio_text else ""
    if edit_type in (catalog.EMOTION, catalog.SPEED):
        tpl = _REMOVE_EMOTION if edit_info == catalog.REMOVE else _MORE_EMOTION
    elif edit_type == catalog.STYLE:
        tpl = _REMOVE_STYLE if edit_info == catalog.REMOVE else _MORE_STYLE
    elif edit_type == catalog.DENOISE:
        tpl = _DENOISE
    elif edit_type == catalog.VAD:
        tpl = _VAD
    else:  # paralinguistic
        if not text or not text.strip():
            raise InvalidInputError("a paralinguistic edit needs the new text with its [tags]")
        tpl = _PARALINGUISTIC
    return tpl.format(edit_info=edit_info, audio_text=audio_text, text=text)


def _encoder(encode: Encode, segment_bos: bool) -> Encode:
    if not segment_bos:
        return encode
    return lambda s: [BOS_ID] + list(encode(s))


def build_edit_prompt(encode: Encode, instruct_prefix: str, audio_token_str: str, *,
                      system_prompt: str = AUDIO_EDIT_SYSTEM_PROMPT, segment_bos: bool = False) -> list[int]:
    """Prompt ids of an audio edit (GH:tts.py ``_encode_audio_edit_prompt``).

    ``[1] + [4] + enc("system\\n"+sys) + [3] + [4] + enc("human\\n") + enc(prefix+"\\n"+tokens+"\\n") + [3]
    + [4] + enc("assistant\\n")``.
    """
    enc = _encoder(encode, segment_bos)
    user = f"{instruct_prefix}\n{audio_token_str.strip()}\n"
    return ([BOS_ID, BOT_ID] + enc(f"system\n{system_prompt}") + [EOT_ID]
            + [BOT_ID] + enc("human\n") + enc(user) + [EOT_ID]
            + [BOT_ID] + enc("assistant\n"))


def clone_system_prompt(speaker: str, prompt_text: str, prompt_wav_tokens: str) -> str:
    return AUDIO_EDIT_CLONE_SYSTEM_PROMPT_TPL.format(
        speaker=speaker, prompt_text=prompt_text, prompt_wav_tokens=prompt_wav_tokens)


def build_clone_prompt(encode: Encode, speaker: str, prompt_text: str, prompt_wav_tokens: str,
                       target_text: str, *, segment_bos: bool = False) -> list[int]:
    """Prompt ids of zero-shot cloning (GH:tts.py ``_encode_audio_edit_clone_prompt``).

    The target text is encoded after a ``"\\n"`` prefix whose own ids are then cut off, so the first word
    gets the same SentencePiece segmentation as mid-line text.
    """
    if not target_text or not target_text.strip():
        raise InvalidInputError("the target text is empty")
    enc = _encoder(encode, segment_bos)
    prefix = enc("\n")
    target = enc("\n" + target_text)[len(prefix):]
    return (clone_prompt_head(encode, speaker, prompt_text, prompt_wav_tokens, segment_bos=segment_bos)
            + target + [EOT_ID] + [BOT_ID] + enc("assistant\n"))


def clone_prompt_head(encode: Encode, speaker: str, prompt_text: str, prompt_wav_tokens: str, *,
                      segment_bos: bool = False) -> list[int]:
    """The ids every clone prompt of one voice starts with (system part with the voice, then ``human``): its
    length is the prefix cache's boundary for the lines of that voice (model.prefix_cache)."""
    enc = _encoder(encode, segment_bos)
    system = clone_system_prompt(speaker, prompt_text, prompt_wav_tokens)
    return [BOS_ID, BOT_ID] + enc(f"system\n{system}") + [EOT_ID] + [BOT_ID] + enc("human\n")


def edit_prompt_head(encode: Encode, *, system_prompt: str = AUDIO_EDIT_SYSTEM_PROMPT,
                     segment_bos: bool = False) -> list[int]:
    """The ids every edit prompt starts with (system part, then ``human``); see :func:`clone_prompt_head`."""
    enc = _encoder(encode, segment_bos)
    return [BOS_ID, BOT_ID] + enc(f"system\n{system_prompt}") + [EOT_ID] + [BOT_ID] + enc("human\n")


def clone_speaker_name(prompt_text: str, loaded_wav: np.ndarray) -> str:
    """Official clone speaker name: ``"clone_" + sha256(text ‖ edge samples)[:16]`` (GH:tts.py).

    ``loaded_wav`` is the prompt as loaded, before mono mixing or normalisation, float32, channel-first
    (as ``torchaudio.load`` returns it); it is flattened in C order, as the official code does.
    """
    flat = np.ascontiguousarray(loaded_wav, dtype=np.float32).reshape(-1)
    edge = SPEAKER_HASH_EDGE_SAMPLES
    sample = np.concatenate([flat[:edge], flat[-edge:]]) if flat.size > 2 * edge else flat
    hasher = hashlib.sha256()
    hasher.update(prompt_text.encode("utf-8"))
    hasher.update(sample.tobytes())
    return "clone_" + hasher.hexdigest()[:16]


# --- chat-template form (the tokenizer's own template), used to cross-check the hand-built layout ----------

def render_chat(messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
    """Render messages with the official ``tokenizer_config.json`` chat template, as plain text."""
    out = "<s>" if messages and messages[0]["role"] == "system" else ""
    for i, message in enumerate(messages):
        role = "human" if message["role"] == "user" else message["role"]
        out += "<|BOT|> " + role + "\n" + message["content"]
        if i != len(messages) - 1 or message["role"] != "assistant":
            out += "<|EOT|>"
    if add_generation_prompt:
        out += "<|BOT|> assistant\n"
    return out


def edit_messages(instruct_prefix: str, audio_token_str: str,
                  system_prompt: str = AUDIO_EDIT_SYSTEM_PROMPT) -> list[dict]:
    return [{"role": "system", "content": system_prompt},
            {"role": "user", "content": f"{instruct_prefix}\n{audio_token_str.strip()}\n"}]


def clone_messages(speaker: str, prompt_text: str, prompt_wav_tokens: str, target_text: str) -> list[dict]:
    return [{"role": "system", "content": clone_system_prompt(speaker, prompt_text, prompt_wav_tokens)},
            {"role": "user", "content": target_text}]
