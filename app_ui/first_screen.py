"""The first screen: a header that says what the app does with a visible EN / 中文 switch, the examples
row, and the CSS that keeps Generate above the fold at 1280x800 and every tab reachable at 390x844.

The language switch calls the frontend's own ``changeLocale`` (the one Gradio's footer settings use): the
module is found among the page's loaded resources, so it follows Gradio's hashed file names.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from stepedit_core import catalog

from .i18n import LANG_CSS, bilingual, t

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
# (label key, prompt stem, target text); each fills prompt audio, transcript and target text
EXAMPLES = (("ex_en", "prompt_en", "Editing speech is now as easy as editing text."),
            ("ex_zh", "prompt_zh", "现在编辑语音就像编辑文字一样简单。"),
            ("ex_noisy", "prompt_noisy", "Thanks for listening; I will call you back from somewhere quieter."))
NOISY_EXAMPLE = "ex_noisy"   # also prepares ② Edit with its recording and Denoise (wire_noisy_example)

# Gradio relabels only the selected tab on a locale change: visiting each tab and coming back relabels all.
SET_LOCALE_JS = """async () => {{
  const mod = performance.getEntriesByType("resource").map(r => r.name)
    .find(n => /\\/assets\\/core-[\\w-]+\\.js$/.test(n));
  if (!mod) return;
  (await import(mod)).changeLocale("{lang}");
  document.documentElement.setAttribute("data-ui-lang", "{lang}");   // i18n.LANG_CSS: computed text
  await new Promise(r => setTimeout(r, 50));
  const tabs = [...document.querySelectorAll("#tabs [role=tab]")];
  const current = tabs.find(b => b.getAttribute("aria-selected") === "true");
  for (const b of tabs) {{ b.click(); await new Promise(r => setTimeout(r, 30)); }}
  if (current) current.click();
  document.documentElement.setAttribute("data-ui-lang-done", "{lang}");   // relabelled (tests wait for it)
}}"""

# The page's first language is the browser's, as Gradio's own i18n picks it (zh-* -> zh, else en); computed
# text in both languages (i18n.both) follows data-ui-lang.
INIT_LANG_JS = """(navigator.language || "en").toLowerCase().startsWith("zh")
  ? document.documentElement.setAttribute("data-ui-lang", "zh")
  : document.documentElement.setAttribute("data-ui-lang", "en");"""

CSS = LANG_CSS + """
#header { gap: 8px; }
#header #title h2 { margin: 0; font-size: 22px; }
#tagline p { margin: 0; font-size: 14px; color: #555; }
#lang-switch { gap: 4px; justify-content: flex-end; flex-grow: 0; min-width: 110px; align-self: flex-start; }
#engine-note { flex-grow: 4; }
#lang-switch button { flex-grow: 0; min-width: 0; padding: 2px 12px; }
#engine-note .engine-note { padding: 4px 8px; font-size: 12px; line-height: 1.35; }
#prompt-audio .upload-container { min-height: 0 !important; height: 110px !important; }
#clone-examples { gap: 4px; }
/* labels wrap instead of being cut */
label span, .block-label, button { white-space: normal; overflow-wrap: break-word; }
#lang-switch button { white-space: nowrap; }
@media (max-width: 600px) {
  /* Gradio moves tabs that do not fit into a "•••" menu, measuring a hidden copy of the tab row: both
     copies get the compact size, so the four tabs fit in 390 px */
  #tabs .tab-container button { padding: 4px 6px; font-size: 12.5px; }
  #header { flex-wrap: wrap; }
  #header > .column, #engine-note { min-width: 100% !important; }
  #lang-switch { order: -1; min-width: 100% !important; }
}
"""


def header(engine_note_html: str) -> None:
    """Title and the one-line explanation; beside them the EN / 中文 switch and the engine note."""
    with gr.Row(elem_id="header", equal_height=False):
        with gr.Column(scale=5, min_width=300):
            gr.Markdown(t("title"), elem_id="title")
            gr.Markdown(t("tagline"), elem_id="tagline")
        gr.HTML(engine_note_html, elem_id="engine-note", min_width=300, js_on_load=INIT_LANG_JS)
        with gr.Row(elem_id="lang-switch"):
            for lang, label in (("en", "EN"), ("zh", "中文")):
                gr.Button(label, size="sm", elem_id=f"lang-{lang}", min_width=0, scale=0).click(
                    None, None, None, js=SET_LOCALE_JS.format(lang=lang))


def example_files() -> list[str]:
    """The audio files the examples hand out (their copies in Gradio's folder are never pruned)."""
    return [row[0] for _, row in examples()]


def _available() -> list[tuple[str, Path, str, str]]:
    """(label key, prompt wav, its transcript, target text) of each example whose files are present."""
    rows = []
    for key, stem, target in EXAMPLES:
        wav, txt = EXAMPLES_DIR / f"{stem}.wav", EXAMPLES_DIR / f"{stem}.txt"
        if wav.is_file() and txt.is_file():
            rows.append((key, wav, txt.read_text(encoding="utf-8").strip(), target))
    return rows


def examples() -> list[tuple]:
    """(label, [prompt wav, its transcript, target text]) for the examples shipped in examples/."""
    return [(bilingual(key), [str(wav), text, target]) for key, wav, text, target in _available()]


def wire_noisy_example(shown: gr.Examples, recording: gr.Audio, recording_text: gr.Textbox,
                       edit_type: gr.components.Component, recording_box: gr.Accordion) -> None:
    """The noisy example fills the clone fields like the others and also prepares ② Edit: its recording and
    transcript in "Start from your own recording" (opened) and Denoise chosen, so *Add as a take* then
    *Apply edit* cleans it."""
    rows = _available()

    def prepare(picked):
        index = picked[0] if isinstance(picked, (list, tuple)) else picked   # the Dataset is type="tuple"
        if not isinstance(index, int) or not 0 <= index < len(rows) or rows[index][0] != NOISY_EXAMPLE:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        _, wav, text, _ = rows[index]
        return str(wav), text, catalog.DENOISE, gr.Accordion(open=True)

    shown.dataset.click(prepare, [shown.dataset], [recording, recording_text, edit_type, recording_box],
                        api_visibility="private", queue=False)
