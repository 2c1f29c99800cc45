"""The app's tabs, one module each: every module builds its widgets into a frozen dataclass (named fields, so a
renamed widget fails when the app is built, not when an event fires) and wires their events with ``wire(...)``,
which takes the shared pieces as named parameters: the :class:`~app_ui.tabs.timeline.Session` (the studio, the
session's take tree and the view refresh after each action) and the other tabs' widgets it reads or updates.

    clone.py      ① voice clone: prompt, target text, candidates
    edit.py       ② iterative edit: edit type, regions, own recordings (the words box: words_box.py; the
                  plain-language plan: plan_box.py)
    para.py       ③ paralinguistic: [tags] in the take's text
    script.py     ④ script: long-form multi-speaker audio and the voice library (ScriptService: script_tab.py)
    timeline.py   the session's takes below the tabs: timeline, undo, recipes, comparison; the Session
"""
