"""Text and HTML the app computes: the engine note, timeline rows, take captions, the tag preview."""
from __future__ import annotations

import html
import re

from stepedit_core import catalog, checks
from stepedit_core.interface import Capabilities

from .history import Take, TakeTree
from .i18n import STRINGS, both, engine_text, pair

_TAG = re.compile(r"\[([^\[\]]{1,40})\]")
_KNOWN_TAGS = {t.lower(): t for t in catalog.ACCEPTED_TAGS}


def op_label(op: str, option: str | None) -> str:
    if op == "upload":
        return "recording"
    name = catalog.EDIT_TYPE_LABELS[op].en if op in catalog.EDIT_TYPE_LABELS else op
    if option:
        opt = catalog.OPTION_LABELS.get(option)
        name += f" · {opt.en if opt else option}"
    return name


BADGE_DOT = {"green": "🟢", "amber": "🟠", "red": "🔴"}
_MEASURE_LABEL = {"error_rate": "text", "speaker_similarity": "voice", "duration_ratio": "length",
                  "clipping": "clipping"}


def check_short(check: dict | None) -> str:
    """Compact badge text for a take's check, e.g. "🟢 WER 4%"; empty when the take has no check."""
    if not check or "verdict" not in check:
        return ""
    return f"{BADGE_DOT.get(check['verdict'], '')} {check['metric'].upper()} {check['error_rate']:.0%}"


def check_hover(check: dict) -> str:
    """The numbers behind a badge, one per line (the badge's hover text)."""
    missing = (f" ({check['deleted']} missing)" if check.get("deleted") else "") + (
        f" ({check['substituted']} misheard)" if check.get("substituted") else "") + (
        f" (too short: {' '.join(check['rushed'])})" if check.get("rushed") else "")
    lines = [f"{check['metric'].upper()} {check['error_rate']:.1%}{missing} — heard: {check.get('heard', '')}"]
    if check.get("speaker_similarity") is not None:
        lines.append(f"speaker similarity {check['speaker_similarity']:.3f} ({check.get('speaker_model')})")
    if check.get("duration_ratio") is not None:
        lines.append(f"duration ratio {check['duration_ratio']:.2f}")
    lines.append(f"clipped samples {check.get('clipped', 0):.3%}")
    return "\n".join(lines)


def check_badges(check: dict | None) -> str:
    """HTML: one coloured badge per measure, numbers on hover."""
    if not check or "verdict" not in check:
        return "<span class='check-badge none'>not checked</span>"
    levels = check.get("levels", {})
    values = {"error_rate": f"{check['metric'].upper()} {check['error_rate']:.0%}",
              "speaker_similarity": (f"voice {check['speaker_similarity']:.2f}"
                                     if check.get("speaker_similarity") is not None else None),
              "duration_ratio": (f"length ×{check['duration_ratio']:.2f}"
                                 if check.get("duration_ratio") is not None else None),
              "clipping": f"clip {check.get('clipped', 0):.2%}"}
    title = html.escape(check_hover(check), quote=True)
    if check.get("speaker_judged") is False and values["speaker_similarity"]:    # an embedder that cannot judge
        values["speaker_similarity"] = f"voice not judged ({check.get('speaker_model')})"
    shown = [k for k, v in values.items() if v is not None and (k in levels or k == "speaker_similarity")]
    chips = "".join(f"<span class='check-badge {levels.get(k, 'none')}' title='{title}'>{html.escape(values[k])}</span>"
                    for k in shown)
    return f"<span class='check-badges' data-verdict='{check['verdict']}'>{chips}</span>"


def best_candidate(takes: list[Take]) -> str | None:
    """Id of the best-ranked of several checked takes (stepedit_core.checks.rank); None if < 2 are checked."""
    checked = [t for t in takes if t.check and "verdict" in t.check]
    if len(checked) < 2:
        return None
    order = checks.rank([checks.TakeCheck.from_dict(t.check) for t in checked])
    return checked[order[0]].id


def take_title(take: Take, with_seed: bool = True) -> str:
    seed = f" · seed {take.seed}" if take.seed is not None and with_seed else ""
    extra = ""
    if take.op == catalog.CLONE:
        extra = f" #{take.index}"
    elif take.op not in ("upload",) and take.index > 1:
        extra = f" (round {take.index})"
    return f"{take.id} · {op_label(take.op, take.option)}{extra} · {take.duration:.1f}s{seed}"


def timeline_choices(tree: TakeTree) -> list[tuple[str, str]]:
    """Radio choices (label, take id) drawn as an indented tree with box-drawing branches."""
    rows: list[tuple[str, str]] = []
    open_levels: list[bool] = []      # per depth: does an ancestor at that depth have later siblings?
    for take, depth, last in tree.walk():
        del open_levels[depth:]
        prefix = "".join("│  " if more else "   " for more in open_levels[1:]) if depth else ""
        branch = ("└─ " if last else "├─ ") if depth else ""
        badge = check_short(take.check)
        rows.append((f"{prefix}{branch}{take_title(take, with_seed=False)}" + (f" · {badge}" if badge else ""),
                     take.id))
        open_levels.append(not last)
    return rows


def take_caption(tree: TakeTree, take_id: str | None) -> str:
    """Markdown under a player: what the take is, how it was made, its text."""
    if not take_id or not tree.has(take_id):
        return ""
    take = tree.get(take_id)
    path = " → ".join(t.id for t in tree.lineage(take.id))
    text = html.escape(take.text) if take.text else "<i>(no transcript)</i>"
    how = "".join(f"{line}  \n" for line in _how_made(tree, take))
    return f"**{take_title(take)}**  \n{check_badges(take.check)}  \n{how}lineage: {path}  \n{text}"


def _how_made(tree: TakeTree, take) -> list[str]:
    """The region and the re-rolls of the action that made ``take`` (empty for a plain take)."""
    action = next((a for a in tree.actions if a.id == take.action), None)
    params = action.params if action else {}
    lines = []
    region = params.get("region")
    if region:
        sel = (f"words {region['words'][0]}-{region['words'][1]}" if "words" in region
               else "{:.2f}-{:.2f} s".format(*region.get("seconds", (0, 0))))
        lines.append(f"region: {sel}, edited window {region['window_s'][0]:.2f}-{region['window_s'][1]:.2f} s"
                     if "window_s" in region else f"region: {sel}")
    retry = params.get("retry")
    if retry and retry.get("tried"):
        tried = ", ".join(f"{t['seed']}: " + ("?" if t.get("error_rate") is None else f"{t['error_rate']:.0%}")
                          for t in retry["tried"])
        lines.append(f"tries: {len(retry['tried'])} of {retry['max_tries']}, error rate by seed {tried}")
    return lines


def base_summary(tree: TakeTree, take_id: str | None) -> str:
    """The edit tabs' line above the controls, in both languages (HTML inside Markdown)."""
    if not take_id or not tree.has(take_id):
        return both("no_take")
    take = tree.get(take_id)
    return both("editing", title=take_title(take), take=take.id)


def engine_note(caps: Capabilities) -> str:
    """One-line HTML banner in both languages: which engine runs, on what, and what it can do."""
    def names(types, lang: int) -> list[str]:
        return [catalog.EDIT_TYPE_LABELS[t]("zh" if lang else "en") for t in types]

    have = [t for t in catalog.AUDIO_EDIT_TYPES if t in caps.edit_options]
    missing = [t for t in catalog.AUDIO_EDIT_TYPES if t not in caps.edit_options]
    versions = []
    for lang in (0, 1):   # 0 English, 1 Chinese: the columns of i18n.STRINGS and of the catalogue labels
        word = {k: STRINGS[k][lang] for k in STRINGS if k.startswith("note_")}
        can = (([word["note_clone"]] if caps.clone else []) + names(have, lang)
               + ([word["note_transcribe"]] if caps.transcribe else []))
        sep, colon = (", ", ": ") if lang == 0 else ("、", "：")
        parts = [word["note_device"] + f" <code>{html.escape(caps.device)}</code>",
                 word["note_inputs"].format(seconds=f"{caps.max_input_seconds:.0f}"),
                 word["note_supports"] + colon + html.escape(sep.join(can) or word["note_nothing"])]
        if missing:
            parts.append(word["note_missing"] + colon + html.escape(sep.join(names(missing, lang))))
        versions.append(" · ".join(parts))
    kind = both("note_approx" if caps.approximate else "note_real")
    cls = "engine-note approx" if caps.approximate else "engine-note real"
    about = f"<summary>{both('note_about')}</summary>{engine_text(caps.notes, caps.notes_zh)}"
    notes = f"<details>{about}</details>" if caps.notes else ""
    name = engine_text(caps.display_name, caps.display_name_zh)
    return f"<div class='{cls}'><b>{name}</b> — {kind} · {pair(*versions)}{notes}</div>"


def tag_preview(text: str, duration: float | None = None) -> str:
    """HTML: the text with tags as chips, unknown tags flagged, and where each sound lands in time.

    Positions are proportional to characters (the model re-times speech), hence "≈".
    """
    text = text or ""
    if not text.strip():
        return f"<div class='tag-preview empty'>{both('tags_empty')}</div>"
    out, pos, marks, plain_len = [], 0, [], len(_TAG.sub("", text)) or 1
    consumed = 0
    for m in _TAG.finditer(text):
        chunk = text[pos:m.start()]
        out.append(html.escape(chunk))
        consumed += len(chunk)
        name = " ".join(m.group(1).split())
        known = name.lower() in _KNOWN_TAGS or name in catalog.LANGUAGE_TAGS
        out.append(f"<span class='tag-chip{'' if known else ' unknown'}'>{html.escape(name)}</span>")
        if name.lower() in _KNOWN_TAGS:
            marks.append((consumed / plain_len, _KNOWN_TAGS[name.lower()]))
        pos = m.end()
    out.append(html.escape(text[pos:]))
    bar = ""
    if marks:
        pins = "".join(
            f"<span class='tag-pin' style='left:{100 * f:.1f}%' title='{html.escape(n)}'>▼<small>{html.escape(n)}"
            + (f" ≈{f * duration:.1f}s" if duration else "") + "</small></span>" for f, n in marks)
        bar = f"<div class='tag-bar'>{pins}</div>"
    unknown = [m.group(1) for m in _TAG.finditer(text)
               if " ".join(m.group(1).split()).lower() not in _KNOWN_TAGS
               and m.group(1).strip() not in catalog.LANGUAGE_TAGS]
    warn = (f"<div class='tag-warn'>"
            f"{both('tags_unknown', tags=', '.join(unknown), known=', '.join(catalog.PARALINGUISTIC_TAGS_2026))}"
            "</div>") if unknown else ""
    return f"<div class='tag-preview'><div class='tag-text'>{''.join(out)}</div>{bar}{warn}</div>"


CSS = """
#timeline .wrap { flex-direction: column; gap: 2px; }
#timeline label { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px;
  white-space: pre; width: 100%; padding: 3px 8px; overflow: hidden; text-overflow: ellipsis; }
.engine-note { padding: 8px 12px; border-radius: 8px; font-size: 14px; }
.engine-note.approx { background: #fff7e6; border: 1px solid #f5c16c; color: #6b4500; }
.engine-note.real { background: #ecfdf3; border: 1px solid #6ccf95; color: #0b5a2b; }
.engine-note details { margin-top: 4px; font-size: 12px; }
.tag-preview { padding: 8px; border: 1px dashed #c7c9d9; border-radius: 8px; }
.tag-text { line-height: 1.9; }
.tag-chip { background: #eef0ff; color: #3b35b5; border: 1px solid #b9b6f5; border-radius: 10px;
  padding: 1px 7px; margin: 0 2px; font-size: 12px; }
.tag-chip.unknown { background: #ffecec; color: #a10e0e; border-color: #f0a3a3; }
.tag-bar { position: relative; height: 34px; margin-top: 8px; border-top: 3px solid #a5a0f5; }
.tag-pin { position: absolute; top: -4px; transform: translateX(-50%); color: #4f46e5; font-size: 12px;
  text-align: center; white-space: nowrap; }
.tag-pin small { display: block; color: #555; }
.tag-warn { color: #a10e0e; font-size: 12px; margin-top: 4px; }
.tag-btn { min-width: 0 !important; }
.check-badges { display: inline-flex; gap: 4px; flex-wrap: wrap; }
.check-badge { border-radius: 9px; padding: 0 7px; font-size: 12px; border: 1px solid; cursor: help; }
.check-badge.green { background: #ecfdf3; color: #0b5a2b; border-color: #6ccf95; }
.check-badge.amber { background: #fff7e6; color: #6b4500; border-color: #f5c16c; }
.check-badge.red { background: #ffecec; color: #a10e0e; border-color: #f0a3a3; }
.check-badge.none { background: #f3f4f6; color: #555; border-color: #d1d5db; }
.small-note p { margin: 4px 0 -6px; font-size: 13px; color: #666; }
"""
