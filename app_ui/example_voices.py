"""The example voices (examples/prompt_*.wav) as a small read-only voice library next to the user's, so the
sample script renders on a fresh install before anyone has saved a voice.

They are not copied into the user's library (a user's list stays theirs, and deleting an example there
would be undone at the next start); a script may name them, and a saved voice of the same name wins.
"""
from __future__ import annotations

from pathlib import Path

from stepedit_core.interface import AudioClip
from stepedit_core.voices import VoiceLibrary

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_VOICES = {"Ethan": "prompt_en", "Mei": "prompt_zh"}     # name -> examples/<stem>.wav + .txt


def example_library(root: Path) -> VoiceLibrary:
    """The example voices saved under ``root`` (made again if missing, e.g. after a cache prune)."""
    lib = VoiceLibrary(root)
    have = {n.casefold() for n in lib.names()}
    for name, stem in EXAMPLE_VOICES.items():
        wav, txt = EXAMPLES_DIR / f"{stem}.wav", EXAMPLES_DIR / f"{stem}.txt"
        if name.casefold() not in have and wav.is_file() and txt.is_file():
            lib.save(name, AudioClip.from_file(str(wav)), txt.read_text(encoding="utf-8").strip(), overwrite=True)
    return lib


class WithExamples:
    """A VoiceSource: the user's library first, then the example voices."""

    def __init__(self, library: VoiceLibrary, examples: VoiceLibrary):
        self.library, self.examples = library, examples

    def _holder(self, name: str) -> VoiceLibrary:
        return self.library if name in self.library or name not in self.examples else self.examples

    def get(self, name: str):
        return self._holder(name).get(name)

    def token_store(self, name: str):
        return self._holder(name).token_store(name)

    def names(self) -> list[str]:
        own = self.library.names()
        taken = {n.casefold() for n in own}
        return own + [n for n in self.examples.names() if n.casefold() not in taken]
