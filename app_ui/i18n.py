"""English and Chinese UI strings (``gr.I18n``); the browser's language picks one.

Static labels are ``gr.I18n`` keys, translated by the frontend. Text computed in Python (the engine note,
the edit tabs' summary) carries both languages as ``<span class="ui-en">`` / ``<span class="ui-zh">``, and
``LANG_CSS`` shows the one the page speaks: ``data-ui-lang`` on ``<html>``, set from the browser's language
at load and by the header's EN / 中文 switch. The script table's headers are plain text in the frontend, so
the CSS swaps them by their English title. Take captions and messages stay English.
"""
from __future__ import annotations

import html

import gradio as gr

from stepedit_core import catalog

_STRINGS: dict[str, tuple[str, str]] = {
    # key: (English, Chinese)
    "title": ("## Step-Audio-EditX — clone a voice, then edit speech like text",
              "## Step-Audio-EditX —— 克隆声音，像编辑文字一样编辑语音"),
    "tagline": ("Pick an example or upload a voice, press **Generate**, then make the take happier, faster or "
                "cleaner in ② Edit.",
                "选一个示例或上传声音，点 **生成**，然后在 ② 编辑 中让它更开心、更快或更干净。"),
    "tab_clone": ("① Clone", "① 克隆"),
    "tab_edit": ("② Edit", "② 编辑"),
    "tab_para": ("③ Paralinguistic", "③ 副语言"),
    "prompt_audio": ("Prompt audio (3–30 s of the voice to clone)", "参考音频（3–30 秒目标音色）"),
    "prompt_text": ("Prompt transcript (what the prompt audio says)", "参考音频文本（参考音频说的内容）"),
    "transcribe": ("Transcribe", "自动识别"),
    "target_text": ("Target text (what the cloned voice should say)", "目标文本（克隆声音要说的内容）"),
    "lang_tags": ("Language / dialect tag (put at the start):", "语言/方言标签（加在开头）："),
    "seed": ("Variation number (−1 = a new one each time)", "变体编号（−1 = 每次随机）"),
    "seed_info": ("The same number with the same inputs gives the same take; another number gives another "
                  "reading (pace, intonation).",
                  "相同编号和相同输入得到相同结果；换一个编号得到另一种读法（语速、语调）。"),
    "n_candidates": ("Versions per click", "每次生成的版本数"),
    "n_candidates_info": ("Each version is its own reading; listen and keep the best. 1 is fastest.",
                          "每个版本是一种不同的读法；试听后保留最好的。1 最快。"),
    "advanced": ("Advanced: versions, variation number, retries, saved voices",
                 "高级：版本数、变体编号、重试、已保存的声音"),
    "ex_en": ("English voice", "英文声音"),
    "ex_zh": ("Mandarin voice", "中文声音"),
    "ex_noisy": ("Noisy recording (denoise it)", "嘈杂录音（可降噪）"),
    "generate": ("Generate", "生成"),
    "candidates": ("Candidates — listen, then pick one to edit", "候选结果 —— 试听后选择一个继续编辑"),
    "use_take": ("Edit this take →", "编辑这个 →"),
    "examples": ("Examples — click one to fill every field", "示例 —— 点击即可填好所有字段"),
    "edit_type": ("Edit type", "编辑类型"),
    "edit_info": ("Option", "选项"),
    "n_iterations": ("Iterations (each round edits the previous round)", "迭代次数（每轮在上一轮基础上编辑）"),
    "apply_edit": ("Apply edit", "执行编辑"),
    "max_tries": ("Automatic retries", "自动重试次数"),
    "max_tries_info": ("When the take's words don't match the text, try the next variation, up to this many "
                       "times.", "当结果的词与文本不符时，换下一个变体重试，最多这么多次。"),
    "threshold": ("Allowed misheard words", "允许的听错比例"),
    "threshold_info": ("Retry while more than this share of words is misheard (0.1 = 10 %; word / character "
                       "error rate).", "听错的词（字）比例高于此值时重试（0.1 = 10%，即 WER / CER）。"),
    "region": ("Edit only part of the take", "只编辑部分内容"),
    "region_help": ("Tick the first and last word to edit (or give a time range). Only a window around them, "
                    "cut at pauses, is edited; the rest of the take stays sample-identical.",
                    "勾选要编辑的第一个和最后一个词（或填写时间范围）。只编辑它们周围在停顿处切开的片段，"
                    "其余部分逐采样点保持不变。"),
    "region_words": ("Words of the take (from the take check)", "音频中的词（来自质量检查）"),
    "region_wave": ("or drag across the waveform to pick a time range", "或在波形上拖动选择时间范围"),
    "region_start": ("or from (s)", "或从（秒）"),
    "region_end": ("to (s)", "到（秒）"),
    "own_recording": ("Start from your own recording", "从自己的录音开始"),
    "recording": ("Recording to edit", "要编辑的录音"),
    "recording_text": ("Its transcript", "录音文本"),
    "add_recording": ("Add as a take", "添加为一个版本"),
    "para_help": ("Click a tag to insert it at the cursor; the preview shows where the sounds fall.",
                  "点击标签插入到光标处；预览显示声音出现的位置。"),
    "para_text": ("Text with [tags] (starts as the selected take's transcript)",
                  "带 [标签] 的文本（初始为所选版本的文本）"),
    "apply_para": ("Add the sounds", "添加声音"),
    "words_box": ("Change words", "修改文字"),
    "words_text": ("The take's transcript: change up to 8 words; only they are regenerated",
                   "本条录音的文字：最多修改 8 个词，只重新生成改动的部分"),
    "apply_words": ("Apply the word edit", "应用文字修改"),
    "plan_box": ("Describe the change", "描述修改"),
    "plan_text": ("The change in your words, e.g. a bit happier and slower, laugh after 'morning'",
                  "用自己的话描述修改，例如：更开心一点，语速慢一点，在'早上'后面笑一下"),
    "plan_show": ("Show plan", "显示计划"),
    "plan_steps": ("The plan: one edit a row (change a cell, add or delete rows), then apply it",
                   "计划：每行一步修改（可修改单元格、增删行），然后应用"),
    "plan_apply": ("Apply plan", "应用计划"),
    "takes": ("Takes — your edit history (pick any take to branch from it)",
              "版本 —— 编辑历史（可从任意版本分支继续编辑）"),
    "timeline": ("Timeline", "时间线"),
    "undo": ("↶ Undo last action", "↶ 撤销上一步"),
    "export": ("Export recipe (JSON)", "导出配方 (JSON)"),
    "recipe_file": ("Recipe file", "配方文件"),
    "replay": ("Replay recipe", "重放配方"),
    "compare": ("Compare two takes", "对比两个版本"),
    "take_a": ("Take A", "版本 A"),
    "take_b": ("Take B", "版本 B"),
    "session_json": ("Session data (JSON)", "会话数据 (JSON)"),
    "engine": ("Engine", "引擎"),
    "stream": ("Play while generating", "边生成边播放"),
    "stop": ("■ Stop", "■ 停止"),
    "live": ("Live playback (plays as it is generated)", "实时播放（边生成边播放）"),
    # ④ Script and the voice library
    "tab_script": ("④ Script", "④ 脚本"),
    "script": ("Script", "脚本"),
    "script_default_voice": ("Voice for lines without a speaker", "无说话人行使用的声音"),
    "script_render": ("Render script", "生成脚本音频"),
    "script_master": ("Master", "成品音轨"),
    "script_files": ("Master WAV, SRT, VTT, recipe", "成品 WAV、SRT、VTT 字幕与配方"),
    "script_lines": ("Lines", "台词"),
    "script_line_no": ("Line # (click a row)", "行号（点击表格行）"),
    "script_reroll": ("Re-roll line", "重新生成该行"),
    "script_take_id": ("Take (click a row; e.g. L3.T1 = line 3, take 1)", "版本（点击表格行；如 L3.T1 = 第 3 行第 1 版）"),
    "script_use_take": ("Use take", "使用该版本"),
    "script_rounds": ("Rounds", "轮数"),
    "script_edit": ("Edit line", "编辑该行"),
    "script_replay_title": ("Replay a script recipe", "重放脚本配方"),
    "script_recipe": ("Recipe (.json)", "配方 (.json)"),
    "script_replay": ("Replay", "重放"),
    "voice_help": ("**Voice library** — save the clone tab's prompt under a name, then use the name in scripts "
                   "(`Name: text`).",
                   "**声音库** —— 将克隆页的参考音频以名字保存，然后在脚本中使用该名字（`名字: 文本`）。"),
    "voice_pick": ("Use a saved voice", "使用已保存的声音"),
    "voice_pick_info": ("Voices saved in ④ Script's voice library fill the prompt and its transcript.",
                        "在 ④ 脚本 的声音库中保存的声音，会填入参考音频和文本。"),
    "script_sample": ("# Speaker: text; {happy} {whisper} {faster x2} edit the line, [Laughter] adds a sound, "
                      "[pause 0.8s] waits. Ethan and Mei are the example voices.\n"
                      "Ethan: {happy} Good morning! Did you sleep well?\n"
                      "Mei: Not really. [Sigh] The neighbours had a party.\n"
                      "Ethan: [pause 0.5s] {whisper} I heard it too.\n",
                      "# 说话人: 文本；{happy} {whisper} {faster x2} 编辑这一行，[Laughter] 加入声音，"
                      "[pause 0.8s] 停顿。Ethan 和 Mei 是示例声音。\n"
                      "Ethan: {happy} 早上好！你睡得好吗？\n"
                      "Mei: 不太好。[Sigh] 邻居开了一晚上派对。\n"
                      "Ethan: [pause 0.5s] {whisper} 我也听到了。\n"),
    "th_no": ("#", "#"), "th_line": ("script line", "脚本行"), "th_speaker": ("speaker", "说话人"),
    "th_text": ("text", "文本"), "th_take": ("take", "版本"), "th_takes": ("takes", "版本数"),
    "th_start": ("start (s)", "开始（秒）"), "th_end": ("end (s)", "结束（秒）"),
    # computed text (``both``): the engine note and the edit tabs' summary
    "note_approx": ("approximate imitation of Step-Audio-EditX", "Step-Audio-EditX 的近似模仿"),
    "note_real": ("the Step-Audio-EditX model", "Step-Audio-EditX 模型"),
    "note_device": ("device", "设备"),
    "note_inputs": ("inputs up to {seconds} s", "输入最长 {seconds} 秒"),
    "note_supports": ("supports", "支持"),
    "note_missing": ("not available here", "此处不可用"),
    "note_about": ("about this engine", "关于此引擎"),
    "note_clone": ("voice clone", "声音克隆"),
    "note_transcribe": ("transcription", "语音识别"),
    "note_nothing": ("nothing", "无"),
    "no_take": ("<b>No take selected yet.</b> Clone a voice in tab ①, or add your own recording below; then pick "
                "the take to edit in the timeline.",
                "<b>还没有选择版本。</b>先在 ① 克隆 中克隆一个声音，或在下方添加自己的录音；然后在时间线中选择要编辑的版本。"),
    "editing": ("Editing <b>{title}</b> — the result becomes a new take branching from {take}.",
                "正在编辑 <b>{title}</b> —— 结果会成为从 {take} 分出的新版本。"),
    "no_voices": ("<i>No voices yet.</i>", "<i>还没有保存的声音。</i>"),
    "tags_empty": ("Type or paste the text, then insert tags.", "输入或粘贴文本，然后插入标签。"),
    "tags_unknown": ("Unknown tag(s): {tags} — the model only knows {known} (and the older spellings).",
                     "未知标签：{tags} —— 模型只认识 {known}（以及旧的写法）。"),
    "voice_sel": ("Voice", "声音"),
    "voice_name": ("Name (save / rename to)", "名字（保存 / 重命名为）"),
    "voice_save": ("Save clone-tab prompt", "保存克隆页的参考音频"),
    "voice_rename": ("Rename", "重命名"),
    "voice_delete": ("Delete", "删除"),
    "voice_export": ("Export all (.zip)", "全部导出 (.zip)"),
    "voice_zip": ("Voice library zip", "声音库压缩包"),
    "voice_import": ("Import a voice library zip", "导入声音库压缩包"),
}


def _catalog_strings() -> dict[str, tuple[str, str]]:
    out = {f"type.{k}": (v.en, v.zh) for k, v in catalog.EDIT_TYPE_LABELS.items()}
    out.update({f"opt.{k}": (v.en, v.zh) for k, v in catalog.OPTION_LABELS.items()})
    out.update({f"tag.{k}": (v.en, v.zh) for k, v in catalog.TAG_LABELS.items()})
    return out


STRINGS = {**_STRINGS, **_catalog_strings()}
I18N = gr.I18n(en={k: v[0] for k, v in STRINGS.items()}, zh={k: v[1] for k, v in STRINGS.items()})


def t(key: str):
    """The translatable label of ``key`` (raises KeyError for unknown keys, so typos fail at build time)."""
    if key not in STRINGS:
        raise KeyError(key)
    return I18N(key)


def both(key: str, **fields) -> str:
    """HTML with the English and the Chinese text of ``key`` (``str.format`` fields are HTML-escaped);
    ``LANG_CSS`` shows the one the page speaks."""
    safe = {k: html.escape(str(v)) for k, v in fields.items()}
    en, zh = (s.format(**safe) if safe else s for s in STRINGS[key])
    return pair(en, zh)


def pair(en_html: str, zh_html: str) -> str:
    """Two HTML fragments, one per language (already escaped by the caller)."""
    if en_html == zh_html:
        return en_html
    return f'<span class="ui-en" lang="en">{en_html}</span><span class="ui-zh" lang="zh">{zh_html}</span>'


def engine_text(en: str, zh: str) -> str:
    """An engine's note (or name) in English and, when the engine gives one, Chinese, as HTML."""
    return pair(html.escape(en), html.escape(zh or en))


# The script table's headers: their English text is the Dataframe header; the CSS draws the Chinese one.
TABLE_HEADER_KEYS = ("th_no", "th_line", "th_speaker", "th_text", "th_take", "th_takes", "th_start", "th_end")


def _header_css() -> str:
    rules = []
    for key in TABLE_HEADER_KEYS:
        en, zh = STRINGS[key]
        if en != zh:
            cell = f'html[data-ui-lang="zh"] #script-lines th[title="{en}"] .header.text'
            rules.append(f'{cell} {{ font-size: 0; }}\n{cell}::after {{ content: "{zh}"; font-size: var(--text-md); }}')
    return "\n".join(rules)


LANG_CSS = ('html[data-ui-lang="zh"] .ui-en, html:not([data-ui-lang="zh"]) .ui-zh { display: none; }\n'
            + _header_css() + "\n")


def bilingual(key: str) -> str:
    """``"English / 中文"`` for places that cannot be translated on the frontend (computed text)."""
    en, zh = STRINGS[key]
    return en if en == zh else f"{en} / {zh}"
