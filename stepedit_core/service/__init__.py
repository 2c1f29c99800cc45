"""The one service above the engine that every door calls (see :mod:`.core`): the app's session UI and its
API / MCP tools (app_ui/), the HTTP server (stepedit_core/server/) and the CLI (stepedit_core/cli.py).

- :mod:`.core`: :class:`Service` (clone, edit, streams, transcribe, checks, best-of-N, seeds, work cap,
  capabilities), :func:`service_for` (one per engine) and :func:`user_message` (the sentence every door shows);
- :mod:`.gate`: the one concurrency gate; :mod:`.selection`: the one region-selection parser;
- :mod:`.speech`: the speech plan (OpenAI ``instructions`` and ``speed`` as edits after a clone).
"""
from .core import NO_AUDIO, NO_CHECK_TEXT, Service, Tries, service_for, user_message
from .gate import Gate
from .selection import API_FIELDS, HTTP_FIELDS, FieldNames, parse_selection, recipe_of_selection, selection_of_recipe
from .speech import SpeechPlan, Step, plan_speech, run_plan

__all__ = ["Service", "Tries", "service_for", "user_message", "Gate", "FieldNames", "HTTP_FIELDS", "API_FIELDS",
           "parse_selection", "selection_of_recipe", "recipe_of_selection", "SpeechPlan", "Step", "plan_speech",
           "run_plan", "NO_CHECK_TEXT", "NO_AUDIO"]
