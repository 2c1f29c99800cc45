"""② The plan box (issue 29): a change described in plain language ("a bit happier and slower, laugh after
'morning'", "更开心一点，语速慢一点") becomes the service's edit plan (stepedit_core.plans), shown as an editable
table before anything runs; applying it runs the steps as stacked edits of the selected take, each step an edit
of the previous step's take through the studio's runner jobs (so each step is a take of the timeline: undoable,
comparable, in the recipe).

The table's rows are the plan's steps; its cells are the catalogue's values (edit type, option, rounds; a sound's
tag, where it goes and next to which word), read back through ``plans.parse_plan_text``: one check, one message
for a plan typed in the app, given to the CLI (``plan --plan``) or parsed from words."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from stepedit_core import catalog, plans
from stepedit_core.errors import StepEditError

from ..history import TakeTree
from ..i18n import bilingual, t
from ..runner import GPU, error_message
from .timeline import SESSION, Session, session_hash

# the table's columns: a bilingual label of the step (not edited), then the step's catalogue values
PLAN_HEADERS = ["step", "edit type", "option", "rounds", "sound", "where", "word"]
_COLUMNS = len(PLAN_HEADERS)


@dataclass(frozen=True)
class PlanBox:
    instruction: gr.Textbox         # the change in plain language (English or Mandarin)
    show_btn: gr.Button
    table: gr.Dataframe             # the plan, one step a row (PLAN_HEADERS), editable
    apply_btn: gr.Button


def build() -> PlanBox:
    """The plan accordion (call inside the edit tab)."""
    with gr.Accordion(t("plan_box"), open=False, elem_id="plan-box"):
        instruction = gr.Textbox(label=t("plan_text"), lines=1, max_length=plans.MAX_INSTRUCTION_CHARS,
                                 placeholder="a bit happier and slower, laugh after 'morning' · 更开心一点，语速慢一点",
                                 elem_id="plan-text")
        show_btn = gr.Button(t("plan_show"), size="sm", elem_id="plan-show")
        table = gr.Dataframe(headers=PLAN_HEADERS, value=[], interactive=True, label=t("plan_steps"),
                             column_count=_COLUMNS, static_columns=[0],
                             datatype=["str", "str", "str", "number", "str", "str", "str"], elem_id="plan-table")
        apply_btn = gr.Button(t("plan_apply"), variant="primary", elem_id="plan-apply")
    return PlanBox(instruction, show_btn, table, apply_btn)


# ---------------------------------------------------------------------- plan <-> table
def step_label(step: plans.PlanStep) -> str:
    """"Emotion / 情感: Happy / 开心 ×2", "Sound / 声音: laugh after 'morning'"."""
    kind = bilingual(f"type.{step.edit_type}")
    if step.edit_type == catalog.PARALINGUISTIC:
        where = f"{step.position} '{step.anchor}'" if step.anchor else f"at {step.position}"
        return f"{kind}: [{step.tag}] {where}"
    if step.edit_info is None:
        return kind
    return f"{kind}: {bilingual(f'opt.{step.edit_info}')} ×{step.rounds}"


def plan_rows(plan: tuple[plans.PlanStep, ...]) -> list[list]:
    return [[step_label(s), s.edit_type, s.edit_info or "", s.rounds, s.tag or "", s.position if s.tag else "",
             s.anchor or ""] for s in plan]


def _cell(row: list, i: int) -> str:
    value = row[i] if i < len(row) else ""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()


def _line(row: list) -> str:
    """A table row -> the plan line ``plans.describe`` writes (``emotion happy x2``, ``paralinguistic laugh
    after 'morning'``), for ``plans.parse_plan_text`` to check."""
    kind, option, rounds, tag, where, word = (_cell(row, i) for i in range(1, _COLUMNS))
    if kind == catalog.PARALINGUISTIC:
        return f"{kind} {tag} {where} '{word}'" if word else f"{kind} {tag} at {where or 'end'}"
    rounds = rounds.removesuffix(".0")
    return " ".join(p for p in (kind, option, f"x{rounds}" if option and rounds else "") if p)


def table_plan(table) -> tuple[plans.PlanStep, ...]:
    """The (edited) table back to plan steps, checked like any plan; a gr.Error names what is wrong."""
    rows = table.values.tolist() if hasattr(table, "values") else list(table or [])
    lines = [_line(list(r)) for r in rows if any(_cell(list(r), i) for i in range(1, _COLUMNS))]
    if not lines:
        raise gr.Error("Show a plan first: describe the change, then press Show plan.")
    try:
        return plans.parse_plan_text(lines)
    except StepEditError as exc:
        raise gr.Error(error_message(exc)) from exc


def show_plan(instruction: str):
    """The plan an instruction asks for, as table rows; a PlanError names the words it did not understand."""
    try:
        return plan_rows(plans.parse_plan(instruction))
    except StepEditError as exc:
        raise gr.Error(error_message(exc)) from exc


# ---------------------------------------------------------------------- the action (undocumented API)
def _action(session: Session):
    studio = session.studio

    def session_plan(base_take: str, plan: list, seed: int, tree: TakeTree = None, request: gr.Request = None,
                     progress=gr.Progress()):
        """Run an edit plan on a take of this session: each step edits the previous step's take.

        Args:
            base_take: id of the take to edit, e.g. "T2".
            plan: the plan table (columns step, edit type, option, rounds, sound, where, word).
            seed: seed of the edits; -1 for random.
        """
        steps = table_plan(plan)
        tree = studio.ensure_workdir(tree, session_hash(request))
        s = studio.candidate_seeds(seed, 1)[0]
        base = base_take
        for step in steps:
            new_text = None
            if step.edit_type == catalog.PARALINGUISTIC:
                try:
                    new_text = plans.text_with_sound(tree.get(base).text, step)
                except StepEditError as exc:
                    raise gr.Error(error_message(exc)) from exc
            tree, ids = studio.edit(tree, base, step.edit_type, step.edit_info, new_text, step.rounds, s, progress)
            base = ids[-1]
        return tree, tree.summary()

    return session_plan


def wire(session: Session, box: PlanBox, *, base_take: gr.Textbox, seed: gr.Number, timeline: gr.Radio,
         audio_b: gr.Audio) -> None:
    """Show plan fills the table (private); Apply plan runs it on the base take (``seed``: the edit tab's)."""
    session_plan = _action(session)

    def plan_check(base, table, seed_, tree):
        return [session.base_check(None, base, "", ""), gr.validate(True, ""), gr.validate(True, ""),
                gr.validate(True, "")]

    box.show_btn.click(show_plan, [box.instruction], [box.table], api_visibility="private")   # queued: toasts
    box.instruction.submit(show_plan, [box.instruction], [box.table], api_visibility="private")
    session.chain(box.apply_btn.click(session_plan, [base_take, box.table, seed, session.tree],
                                      [session.tree, session.history], api_name="session_plan",
                                      concurrency_id=GPU, **SESSION, show_progress_on=[timeline, audio_b],
                                      validator=plan_check))
