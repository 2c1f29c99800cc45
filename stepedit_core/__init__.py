"""stepedit_core: a compact inference stack for StepFun's Step-Audio-EditX."""
from __future__ import annotations

__version__ = "0.1.0"
