"""English and Chinese UI strings (``gr.I18n``); the browser's language picks one.

Static labels only: Gradio translates on the frontend, so values computed in Python (take info, the
engine note) stay in English, with the edit names taken from the catalogue's bilingual labels.
"""
from __future__ import annotations

import gradio as gr

from stepedit_core import catalog

_STRINGS: dict[str, tuple[str, str]] = {
    # key: (English, Chinese)
    "title": ("## Step-Audio-EditX — clone a voice, then edit speech like text",
              "## Step-Audio-EditX —— 克隆声音，像编辑文字一样编辑语音"),
    "tab_clone": ("① Voice clone (TTS)", "① 声音克隆 (TTS)"),
    "tab_edit": ("② Iterative edit", "② 迭代编辑"),
    "tab_para": ("③ Paralinguistic", "③ 副语言"),
    "prompt_audio": ("Prompt audio (3–30 s of the voice to clone)", "参考音频（3–30 秒目标音色）"),
    "prompt_text": ("Prompt transcript (what the prompt audio says)", "参考音频文本（参考音频说的内容）"),
    "transcribe": ("Transcribe", "自动识别"),
    "target_text": ("Target text (what the cloned voice should say)", "目标文本（克隆声音要说的内容）"),
    "lang_tags": ("Language / dialect tag (put at the start):", "语言/方言标签（加在开头）："),
    "seed": ("Seed (−1 = random)", "随机种子（−1 = 随机）"),
    "n_candidates": ("Candidates (each a take with its own seed)", "候选数（每个候选单独一个种子）"),
    "generate": ("Generate", "生成"),
    "candidates": ("Candidates — listen, then pick one to edit", "候选结果 —— 试听后选择一个继续编辑"),
    "use_take": ("Edit this take →", "编辑这个 →"),
    "examples": ("Examples (prompt + transcript)", "示例（参考音频 + 文本）"),
    "edit_type": ("Edit type", "编辑类型"),
    "edit_info": ("Sub-type", "子类型"),
    "n_iterations": ("Iterations (each round edits the previous round)", "迭代次数（每轮在上一轮基础上编辑）"),
    "apply_edit": ("Apply edit", "执行编辑"),
    "max_tries": ("Tries (re-roll the seed until the check passes)", "尝试次数（未通过检查则换种子重试）"),
    "threshold": ("Pass when WER / CER ≤", "通过条件：WER / CER ≤"),
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
    "script_line_no": ("Line #", "行号"),
    "script_reroll": ("Re-roll line", "重新生成该行"),
    "script_take_id": ("Take id (e.g. L3.T1)", "版本编号（如 L3.T1）"),
    "script_use_take": ("Use take", "使用该版本"),
    "script_rounds": ("Rounds", "轮数"),
    "script_edit": ("Edit line", "编辑该行"),
    "script_replay_title": ("Replay a script recipe", "重放脚本配方"),
    "script_recipe": ("Recipe (.json)", "配方 (.json)"),
    "script_replay": ("Replay", "重放"),
    "voice_help": ("**Voice library** — save the clone tab's prompt under a name, then use the name in scripts "
                   "(`Name: text`).",
                   "**声音库** —— 将克隆页的参考音频以名字保存，然后在脚本中使用该名字（`名字: 文本`）。"),
    "voice_pick": ("Saved voice (voice library)", "已保存的声音（声音库）"),
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


def bilingual(key: str) -> str:
    """``"English / 中文"`` for places that cannot be translated on the frontend (computed text)."""
    en, zh = STRINGS[key]
    return en if en == zh else f"{en} / {zh}"
