"""The words plans.py understands: English and Mandarin phrases for every catalogue step, intensity words and
the filler words an instruction may contain without meaning anything.

English entries are regular expressions matched on whole words of a lower-cased clause; Mandarin entries are
plain substrings (no word boundaries in Chinese). Longer phrases win over their parts (``快乐`` before ``快``).
A step is ``(edit_type, option)``; a sound is a 2026 tag name (catalog.PARALINGUISTIC_TAGS_2026).
"""
from __future__ import annotations

from . import catalog

Step = tuple[str, "str | None"]
E, S, SP = catalog.EMOTION, catalog.STYLE, catalog.SPEED


def _forms(forms: str) -> list[str]:
    """``"a|b (?:c|d)"`` -> ``["a", "b (?:c|d)"]``: split at the ``|`` outside parentheses."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(forms + "|"):
        depth += (ch == "(") - (ch == ")")
        if ch == "|" and depth == 0:
            out.append(forms[start:i].strip())
            start = i + 1
    return [f for f in out if f]


def _table(rows: dict[Step, str]) -> dict[str, Step]:
    """``{step: "a|b|c"}`` -> ``{"a": step, "b": step, ...}``."""
    return {form: step for step, forms in rows.items() for form in _forms(forms)}


# -- English ------------------------------------------------------------------------------------------------
EN_STEPS: dict[str, Step] = _table({
    (E, "happy"): "happy|happier|happily|happiness|cheerful|cheerfully|joyful|joyfully|glad|upbeat",
    (E, "angry"): "angry|angrier|angrily|anger|mad|furious|annoyed|irritated",
    (E, "sad"): "sad|sadder|sadly|sadness|unhappy|sorrowful|mournful",
    (E, "humour"): "humou?r|humorous|humorously|funny|funnier|witty",
    (E, "confusion"): "confused|confusion|puzzled|bewildered",
    (E, "disgusted"): "disgusted|disgust|grossed out|repulsed",
    (E, "empathy"): "empathy|empathetic|empathetically|sympathetic|compassionate",
    (E, "embarrass"): "embarrassed|embarrass|embarrassment|awkward",
    (E, "fear"): "fear|fearful|afraid|scared|frightened|terrified|nervous",
    (E, "surprised"): "surprised|surprise|amazed|astonished|shocked",
    (E, "excited"): "excited|excitedly|exciting|excitement|thrilled|enthusiastic",
    (E, "depressed"): "depressed|gloomy|downcast|dejected",
    (E, "coldness"): "cold|colder|coldly|coldness|distant|icy|detached",
    (E, "admiration"): "admiration|admiring|admiringly|impressed|in awe",
    (E, catalog.REMOVE): "neutral|neutrally|no emotion|without emotion|remove (?:the |any )?emotions?|"
                         "(?:less|no) emotional|unemotional",
    (S, "serious"): "serious|seriously|earnest",
    (S, "arrogant"): "arrogant|arrogantly|smug|haughty",
    (S, "child"): "child|childlike|a kid|kid|childish",
    (S, "older"): "older|old|elderly|old man|old woman|old person",
    (S, "girl"): "girl|girlish|young girl",
    (S, "pure"): "pure|innocent",
    (S, "sister"): "big sister|sister|older sister",
    (S, "sweet"): "sweet|sweeter|sweetly",
    (S, "ethereal"): "ethereal|dreamy|airy",
    (S, "whisper"): "whisper|whispering|whispered|whispery",
    (S, "gentle"): "gentle|gentler|gently|soft|softer|softly",
    (S, "recite"): "recite|reciting|recitation|like a poem|poetry",
    (S, "generous"): "generous|generously|magnanimous",
    (S, "act_coy"): "act coy|coy|coyly|cutesy|cute",
    (S, "warm"): "warm|warmer|warmly|warmth",
    (S, "shy"): "shy|shyer|shyly|timid|bashful",
    (S, "comfort"): "comforting|comfort|soothing|reassuring",
    (S, "authority"): "authority|authoritative|commanding",
    (S, "chat"): "chat|chatty|casual|casually|conversational",
    (S, "radio"): "radio|radio host|radio dj|on the radio",
    (S, "soulful"): "soulful|soulfully|heartfelt",
    (S, "story"): "story|stories|storytelling|storyteller|bedtime story|fairy tale",
    (S, "vivid"): "vivid|vividly|lively|animated",
    (S, "program"): "program|programme|programme host|program host|tv host|show host|host",
    (S, "news"): "news|news anchor|newsreader|news reader|newscaster|anchor",
    (S, "advertising"): "advertising|advert|advertisement|ad|commercial",
    (S, "roar"): "roar|roaring|roared",
    (S, "murmur"): "murmur|murmuring|murmured|mumble|mumbling",
    (S, "shout"): "shout|shouting|shouted|yell|yelling|scream",
    (S, "deeply"): "deep|deeper|deeply|lower pitched|low pitched",
    (S, "loudly"): "loud|louder|loudly|loudness",
    (S, "exaggerated"): "exaggerated|exaggerate|dramatic|dramatically|over the top|theatrical",
    (S, catalog.REMOVE): "no style|remove (?:the |any )?(?:speaking )?style|plain style|without style",
    (SP, "slower"): "slower|slow|slowly|slow down|slow it down|less fast|more slowly",
    (SP, "faster"): "faster|fast|quicker|quickly|speed up|speed it up|hurry|more quickly|quick",
    (catalog.DENOISE, None): "denoise|denoised|noise|noisy|background noise|hiss|hum|clean up|clean it up|"
                             "clean|cleaner",
    (catalog.VAD, None): "silence|silences|silent|silent parts|pauses|pause|gaps|dead air",
})
EN_SOUNDS: dict[str, str] = {form: tag for tag, forms in {
    "laugh": "laugh|laughter|laughing|laughs|a laugh", "chuckle": "chuckle|chuckling|chuckles",
    "giggle": "giggle|giggling|giggles", "sigh": "sigh|sighing|sighs", "cough": "cough|coughing|coughs",
    "inhale": "inhale|inhaling|breathe in|breath in|intake of breath|gasp",
    "exhale": "exhale|exhaling|breathe out|breath out",
    "breath": "breath|breathing|breathe|breaths", "snort": "snort|snorting|snorts",
    "clears throat": "clear (?:your |his |her |the )?throat|clears (?:your |his |her |the )?throat|"
                     "throat clearing|clearing (?:your |his |her |the )?throat",
    "uhm": "uhm|um|umm|erm|hesitation", "Dissatisfaction-hnn": "hnn|hmph|huff",
    "Surprise-oh": "surprised oh", "Surprise-wa": "wow|surprised wa", "Question-ei": "questioning ei",
}.items() for form in _forms(forms)}
# intensity word -> rounds (official issue #15: users want graded steps, not iteration counts)
EN_INTENSITY: dict[str, int] = {
    **{w: 1 for w in ("a little bit", "a tiny bit", "just a bit", "a little", "a bit", "a touch", "a tad",
                      "slightly", "somewhat", "a hint")},
    **{w: 2 for w in ("quite", "rather", "noticeably", "fairly", "moderately", "pretty")},
    **{w: 3 for w in ("much", "very", "a lot", "really", "extremely", "far", "super", "so much", "a lot more",
                      "heavily", "strongly", "totally")},
}
EN_AFTER, EN_BEFORE = r"after|following|behind", r"before|ahead of|in front of|preceding"
EN_END = r"at the end|in the end|to the end|at the very end|afterwards|at the finish"
EN_START = r"at the start|at the beginning|to the start|at first|in the beginning|at the very start"
# words that may stand in an instruction without meaning a step
EN_FILLER = frozenset(
    "a an the it its it's this that these those please make made sound sounds sounding more and then also with "
    "in on of to for be is are was voice tone way speak speaking spoken say said read reading talk talking like as "
    "add put insert include give some bit little little bit remove removing get rid cut out trim delete drop strip "
    "take away use using word words sentence clip audio recording take whole do keep just your his her their "
    "me us you i want would could can should let lets let's little one small short long longer quick brief "
    "kind sort style emotion emotional speed pace tempo of mood feel feeling bedtime".split())

# -- Mandarin -----------------------------------------------------------------------------------------------
ZH_STEPS: dict[str, Step] = _table({
    (E, "happy"): "开心|高兴|快乐|愉快|欢快|喜悦", (E, "angry"): "生气|愤怒|恼火|气愤",
    (E, "sad"): "悲伤|伤心|难过|悲哀", (E, "humour"): "幽默|搞笑|风趣", (E, "confusion"): "困惑|疑惑|迷惑",
    (E, "disgusted"): "厌恶|恶心|嫌弃", (E, "empathy"): "共情|同情|感同身受", (E, "embarrass"): "尴尬",
    (E, "fear"): "害怕|恐惧|惊恐|胆怯", (E, "surprised"): "惊讶|吃惊|惊奇|震惊", (E, "excited"): "兴奋|激动",
    (E, "depressed"): "沮丧|消沉|低落", (E, "coldness"): "冷漠|冷淡|冷冰冰", (E, "admiration"): "钦佩|崇拜|赞赏|敬佩",
    (E, catalog.REMOVE): "去掉情绪|去除情绪|去掉情感|去除情感|没有情绪|中性|平淡",
    (S, "serious"): "严肃|认真", (S, "arrogant"): "傲慢|高傲", (S, "child"): "孩童|小孩|孩子|童声",
    (S, "older"): "老年|老人", (S, "girl"): "少女|小女孩", (S, "pure"): "纯真|天真", (S, "sister"): "御姐",
    (S, "sweet"): "甜美|甜", (S, "ethereal"): "空灵", (S, "whisper"): "耳语|悄悄话|悄悄|轻声",
    (S, "gentle"): "温柔|柔和", (S, "recite"): "朗诵|朗读", (S, "generous"): "大方", (S, "act_coy"): "撒娇",
    (S, "warm"): "温暖", (S, "shy"): "害羞", (S, "comfort"): "安慰", (S, "authority"): "威严|权威",
    (S, "chat"): "闲聊|聊天", (S, "radio"): "电台", (S, "soulful"): "深情", (S, "story"): "讲故事|故事",
    (S, "vivid"): "生动", (S, "program"): "节目主持|主持人", (S, "news"): "新闻播报|新闻|播音",
    (S, "advertising"): "广告", (S, "roar"): "咆哮|怒吼", (S, "murmur"): "小声嘀咕|嘀咕|小声",
    (S, "shout"): "大喊|喊叫|喊", (S, "deeply"): "低沉", (S, "loudly"): "大声|响亮", (S, "exaggerated"): "夸张",
    (S, catalog.REMOVE): "去掉风格|去除风格",
    (SP, "slower"): "放慢|慢速|慢", (SP, "faster"): "加快|快速|快",
    (catalog.DENOISE, None): "降噪|去噪|噪音|噪声|杂音|底噪", (catalog.VAD, None): "静音|停顿|空白|沉默",
})
ZH_SOUNDS: dict[str, str] = {form: tag for tag, forms in {
    "laugh": "笑声|大笑|笑", "chuckle": "轻笑|偷笑", "giggle": "咯咯笑|傻笑|嘻嘻", "sigh": "叹一口气|叹口气|叹气|叹息",
    "cough": "咳嗽|咳", "inhale": "吸一口气|吸口气|吸气", "exhale": "呼一口气|呼口气|呼气|吐气",
    "breath": "呼吸|喘气|喘息", "snort": "哼鼻子|喷鼻", "clears throat": "清一下嗓子|清嗓子|清清嗓子",
    "uhm": "犹豫|嗯哼", "Dissatisfaction-hnn": "哼一声|不满地哼", "Surprise-wa": "哇", "Surprise-oh": "哦",
}.items() for form in _forms(forms)}
ZH_INTENSITY: dict[str, int] = {
    **{w: 1 for w in ("一点点", "一点儿", "一点", "一些", "有点", "有一点", "稍微", "稍稍", "略微", "些许", "一丢丢", "些")},
    **{w: 2 for w in ("比较", "挺", "相当", "明显")},
    **{w: 3 for w in ("很多", "多了", "非常", "特别", "十分", "超级", "极其", "极度", "很", "太", "好多")},
}
ZH_AFTER, ZH_BEFORE = "后面|之后|以后|后边|后", "前面|之前|以前|前边|前"
ZH_END, ZH_START = "结尾|末尾|最后|结束的时候|结束时|句末", "开头|开始的时候|一开始|最前面|句首|开始"
ZH_FILLER = ("然后", "再", "并且", "并", "同时", "和", "把", "让", "使", "它", "变得", "更加", "更", "的", "地", "得",
             "用", "方式", "一样", "像", "说话", "说", "读", "声音", "语气", "语调", "语速", "速度", "请", "加上",
             "加入", "加", "一下", "一声", "一个", "个", "在", "去除", "去掉", "删除", "删掉", "移除", "消除",
             "点", "里", "中", "来", "吧", "啊", "了", "要", "一口", "情绪", "风格", "整体", "整个", "音频", "录音", "变成", "变")
