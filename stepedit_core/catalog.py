"""The edit catalogue: edit types, their official options, and display labels (English / Chinese).

Option values are model input (they are spliced into the instruction strings of ``model/prompts.py``) and are
kept verbatim from the official ``config/edit_config.py``, in its order. Labels are for display only.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidInputError, shown

CLONE, EMOTION, STYLE, SPEED, PARALINGUISTIC, DENOISE, VAD = (
    "clone", "emotion", "style", "speed", "paralinguistic", "denoise", "vad")
EDIT_TYPES: tuple[str, ...] = (CLONE, EMOTION, STYLE, SPEED, PARALINGUISTIC, DENOISE, VAD)
# Edit types that change an existing recording (everything but clone).
AUDIO_EDIT_TYPES: tuple[str, ...] = (EMOTION, STYLE, SPEED, PARALINGUISTIC, DENOISE, VAD)
REMOVE = "remove"
TRANSCRIBE = "transcribe"     # a kind of engine work (Engine.estimate_seconds), not an edit type

EMOTIONS: tuple[str, ...] = (
    "happy", "angry", "sad", "humour", "confusion", "disgusted", "empathy", "embarrass", "fear",
    "surprised", "excited", "depressed", "coldness", "admiration", "remove")
# Official list, order kept (``remove`` stands before ``exaggerated`` there): 32 styles + remove.
STYLES: tuple[str, ...] = (
    "serious", "arrogant", "child", "older", "girl", "pure", "sister", "sweet", "ethereal", "whisper",
    "gentle", "recite", "generous", "act_coy", "warm", "shy", "comfort", "authority", "chat", "radio",
    "soulful", "story", "vivid", "program", "news", "advertising", "roar", "murmur", "shout", "deeply",
    "loudly", "remove", "exaggerated")
SPEEDS: tuple[str, ...] = ("faster", "slower", "more faster", "more slower")
# Nominal speed ratio (input duration / output duration) of each speed option. The official model has no
# numbers; these are our choice (a noticeable and a strong step each way): the lite engine stretches by them and
# the HTTP API maps OpenAI's ``speed`` to the nearest option with them.
SPEED_RATIOS: dict[str, float] = {"faster": 1.2, "slower": 0.83, "more faster": 1.45, "more slower": 0.7}

OPTIONS: dict[str, tuple[str, ...]] = {
    CLONE: (), EMOTION: EMOTIONS, STYLE: STYLES, SPEED: SPEEDS, PARALINGUISTIC: (), DENOISE: (), VAD: (),
}

# Non-verbal tags accepted inside the new text of a paralinguistic edit (official README / app).
PARALINGUISTIC_TAGS: tuple[str, ...] = (
    "Breathing", "Laughter", "Surprise-oh", "Confirmation-en", "Uhm", "Surprise-ah", "Surprise-wa", "Sigh",
    "Question-ei", "Dissatisfaction-hnn")
# The 22 tags of the 2026 model (official README at a652e87, 20260129 release), spelled and ordered as there.
# Either spelling is accepted everywhere; stepedit_core/tags.py maps a tag to what the selected model expects.
PARALINGUISTIC_TAGS_2026: tuple[str, ...] = (
    "sigh", "inhale", "laugh", "chuckle", "exhale", "clears throat", "snort", "giggle", "cough", "breath", "uhm",
    "Confirmation-en", "Surprise-oh", "Surprise-ah", "Surprise-wa", "Surprise-yo", "Dissatisfaction-hnn",
    "Question-ei", "Question-ah", "Question-en", "Question-yi", "Question-oh")
# Every accepted spelling: the 22 of 2026 and the older ones they do not already spell (case-insensitive).
ACCEPTED_TAGS: tuple[str, ...] = PARALINGUISTIC_TAGS_2026 + tuple(
    t for t in PARALINGUISTIC_TAGS if t.casefold() not in {n.casefold() for n in PARALINGUISTIC_TAGS_2026})
# Tags written before TTS target text to select a language or dialect.
LANGUAGE_TAGS: tuple[str, ...] = ("Sichuanese", "Cantonese", "Japanese", "Korean")


@dataclass(frozen=True)
class Label:
    en: str
    zh: str

    def __call__(self, lang: str = "en") -> str:
        return self.zh if lang.lower().startswith("zh") else self.en


EDIT_TYPE_LABELS: dict[str, Label] = {
    CLONE: Label("Voice clone", "声音克隆"), EMOTION: Label("Emotion", "情感"),
    STYLE: Label("Speaking style", "说话风格"), SPEED: Label("Speed", "语速"),
    PARALINGUISTIC: Label("Paralinguistic", "副语言"), DENOISE: Label("Denoise", "降噪"),
    VAD: Label("Remove silence", "去除静音"),
}

OPTION_LABELS: dict[str, Label] = {
    # emotions
    "happy": Label("Happy", "开心"), "angry": Label("Angry", "生气"), "sad": Label("Sad", "悲伤"),
    "humour": Label("Humour", "幽默"), "confusion": Label("Confusion", "困惑"),
    "disgusted": Label("Disgusted", "厌恶"), "empathy": Label("Empathy", "共情"),
    "embarrass": Label("Embarrassed", "尴尬"), "fear": Label("Fear", "恐惧"),
    "surprised": Label("Surprised", "惊讶"), "excited": Label("Excited", "兴奋"),
    "depressed": Label("Depressed", "沮丧"), "coldness": Label("Cold", "冷漠"),
    "admiration": Label("Admiration", "钦佩"), "remove": Label("Remove (neutral)", "去除"),
    # styles
    "serious": Label("Serious", "严肃"), "arrogant": Label("Arrogant", "傲慢"), "child": Label("Child", "孩童"),
    "older": Label("Older", "老年"), "girl": Label("Girl", "少女"), "pure": Label("Pure", "纯真"),
    "sister": Label("Big sister", "御姐"), "sweet": Label("Sweet", "甜美"), "ethereal": Label("Ethereal", "空灵"),
    "whisper": Label("Whisper", "耳语"), "gentle": Label("Gentle", "温柔"), "recite": Label("Recite", "朗诵"),
    "generous": Label("Generous", "大方"), "act_coy": Label("Act coy", "撒娇"), "warm": Label("Warm", "温暖"),
    "shy": Label("Shy", "害羞"), "comfort": Label("Comforting", "安慰"), "authority": Label("Authority", "威严"),
    "chat": Label("Chatty", "闲聊"), "radio": Label("Radio", "电台"), "soulful": Label("Soulful", "深情"),
    "story": Label("Storytelling", "讲故事"), "vivid": Label("Vivid", "生动"), "program": Label("Programme host", "节目主持"),
    "news": Label("News", "新闻播报"), "advertising": Label("Advertising", "广告"), "roar": Label("Roar", "咆哮"),
    "murmur": Label("Murmur", "小声嘀咕"), "shout": Label("Shout", "大喊"), "deeply": Label("Deep", "低沉"),
    "loudly": Label("Loud", "大声"), "exaggerated": Label("Exaggerated", "夸张"),
    # speeds
    "faster": Label("Faster", "快一点"), "slower": Label("Slower", "慢一点"),
    "more faster": Label("Much faster", "快很多"), "more slower": Label("Much slower", "慢很多"),
}

TAG_LABELS: dict[str, Label] = {
    "Breathing": Label("Breathing", "呼吸"), "Laughter": Label("Laughter", "笑声"),
    "Surprise-oh": Label("Surprise (oh)", "惊讶-哦"), "Confirmation-en": Label("Confirmation (en)", "确认-嗯"),
    "Uhm": Label("Uhm", "犹豫-嗯"), "Surprise-ah": Label("Surprise (ah)", "惊讶-啊"),
    "Surprise-wa": Label("Surprise (wa)", "惊讶-哇"), "Sigh": Label("Sigh", "叹气"),
    "Question-ei": Label("Question (ei)", "疑问-诶"), "Dissatisfaction-hnn": Label("Dissatisfaction (hnn)", "不满-哼"),
    # 2026 spellings
    "sigh": Label("Sigh", "叹气"), "inhale": Label("Inhale", "吸气"), "laugh": Label("Laugh", "笑声"),
    "chuckle": Label("Chuckle", "轻笑"), "exhale": Label("Exhale", "呼气"),
    "clears throat": Label("Clear throat", "清嗓子"),
    "snort": Label("Snort", "哼鼻"), "giggle": Label("Giggle", "咯咯笑"), "cough": Label("Cough", "咳嗽"),
    "breath": Label("Breath", "呼吸"), "uhm": Label("Uhm", "犹豫-嗯"),
    "Surprise-yo": Label("Surprise (yo)", "惊讶-哟"),
    "Question-ah": Label("Question (ah)", "疑问-啊"), "Question-en": Label("Question (en)", "疑问-嗯"),
    "Question-yi": Label("Question (yi)", "疑问-咦"), "Question-oh": Label("Question (oh)", "疑问-哦"),
}


def options_for(edit_type: str) -> tuple[str, ...]:
    """The official options of an edit type (empty for types that take none, clone included)."""
    return OPTIONS[edit_type] if edit_type in OPTIONS else OPTIONS[check_edit_type(edit_type)]


def check_edit_type(edit_type: object) -> str:
    """One of the audio edit types, exactly as listed (no case or space folding: option values are model input).
    The one check, and message, of every door (validation.check_edit_type) and of prompts, training and scripts."""
    if not isinstance(edit_type, str) or edit_type not in AUDIO_EDIT_TYPES:
        extra = " (cloning is not an edit of audio: use the clone endpoint or command)" if edit_type == CLONE else ""
        raise InvalidInputError(f"unknown edit type {shown(edit_type)}{extra}; use one of "
                                f"{', '.join(AUDIO_EDIT_TYPES)}")
    return edit_type


def check_edit(edit_type: object, edit_info: object) -> str | None:
    """The option of an audio edit type (None for types that take none); empty strings count as none. The one
    check of an (edit type, option) pair (validation.check_edit_info is this function)."""
    options = OPTIONS[check_edit_type(edit_type)]
    if not options:
        return None
    if edit_info in (None, ""):
        raise InvalidInputError(f"the {edit_type} edit needs an option: one of {', '.join(options)}")
    if not isinstance(edit_info, str) or edit_info not in options:
        raise InvalidInputError(f"unknown {edit_type} option; use one of {', '.join(options)} "
                                f"(got {shown(edit_info)})")
    return edit_info


def tag_token(tag: str) -> str:
    """``"Laughter"`` -> ``"[Laughter]"``."""
    return f"[{tag}]"
