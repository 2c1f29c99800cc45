"""Bounded disk use: what the app writes (session takes, API outputs) and what Gradio keeps (uploads and
the served copies of outputs) is removed once nothing needs it, under a hard cap on the folder's size.

- API outputs (``api-*.wav``): a stateless call's answer; the client downloads it at once. Removed after
  ``API_OUTPUT_TTL_S``.
- Gradio's upload folder (uploads and served copies, one ``<hash>/`` folder each): a served copy of an API
  output (only ``api-*`` files inside) goes after ``API_OUTPUT_TTL_S`` as well; anything else after
  ``UPLOAD_TTL_S`` untouched. A session's takes live in its own folder and are copied back when shown.
- Session folders: removed ``SESSION_MAX_AGE_S`` after last use (their ``gr.State`` also deletes them).
- Over ``storage_cap_bytes()`` in all: the oldest upload folders and API outputs go first, then the
  least recently used sessions, until the total is below ``CAP_LOW_WATER`` of the cap.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

API_OUTPUT_PREFIX = "api-"
API_OUTPUT_TTL_S = 300            # a client fetches a result within seconds; 5 min covers slow links
UPLOAD_TTL_S = 900                # an uploaded prompt stays usable for 15 min in an open tab
SESSION_MAX_AGE_S = 6 * 3600      # session folders untouched this long are removed
STORAGE_CAP_MB = 2048             # default hard cap of the whole upload folder (env STEPEDIT_STORAGE_CAP_MB)
CAP_LOW_WATER = 0.8               # prune down to 80 % of the cap, so pruning does not run on every request
CAP_ENV = "STEPEDIT_STORAGE_CAP_MB"


def storage_cap_bytes() -> int:
    try:
        mb = float(os.environ.get(CAP_ENV, STORAGE_CAP_MB))
    except ValueError:
        mb = STORAGE_CAP_MB
    return int(max(mb, 1.0) * 2**20)


@dataclass
class PruneReport:
    sessions: int = 0
    api_outputs: int = 0
    uploads: int = 0
    freed_bytes: int = 0
    total_bytes: int = 0


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _remove(path: Path) -> int:
    try:
        size = _size(path)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        return size
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def prune(root: Path, upload_dir: Path | None, session_prefix: str, now: float,
          session_max_age_s: float = SESSION_MAX_AGE_S) -> PruneReport:
    """One pass over ``root`` (this app's sessions) and ``upload_dir`` (Gradio's folder, holding ``root``)."""
    report = PruneReport()
    sessions = [d for d in root.glob(f"{session_prefix}*") if d.is_dir()]
    for d in sessions:
        if now - _mtime(d) > session_max_age_s:
            report.freed_bytes += _remove(d)
            report.sessions += 1
    for f in root.glob(f"{session_prefix}*/{API_OUTPUT_PREFIX}*"):
        if now - _mtime(f) > API_OUTPUT_TTL_S:
            report.freed_bytes += _remove(f)
            report.api_outputs += 1
    uploads = _upload_entries(root, upload_dir)
    for entry in uploads:
        if now - _mtime(entry) > (API_OUTPUT_TTL_S if _only_api_outputs(entry) else UPLOAD_TTL_S):
            report.freed_bytes += _remove(entry)
            report.uploads += 1
    _enforce_cap(root, upload_dir, session_prefix, report)
    return report


def _upload_entries(root: Path, upload_dir: Path | None) -> list[Path]:
    if upload_dir is None or not upload_dir.is_dir():
        return []
    root = root.resolve()
    return [e for e in upload_dir.iterdir() if e.resolve() != root and root not in e.resolve().parents]


def _only_api_outputs(entry: Path) -> bool:
    """A Gradio cache folder holding nothing but served copies of API outputs."""
    try:
        names = [f.name for f in entry.iterdir()] if entry.is_dir() else [entry.name]
    except OSError:
        return False
    return bool(names) and all(n.startswith(API_OUTPUT_PREFIX) for n in names)


def _enforce_cap(root: Path, upload_dir: Path | None, session_prefix: str, report: PruneReport) -> None:
    cap = storage_cap_bytes()
    top = upload_dir if upload_dir is not None and upload_dir.is_dir() else root
    total = _size(top) if top.exists() else 0
    if total > cap:
        # oldest first: uploads and API outputs (nobody needs them after the request) ...
        first = sorted(_upload_entries(root, upload_dir) + list(root.glob(f"{session_prefix}*/{API_OUTPUT_PREFIX}*")),
                       key=_mtime)
        # ... then whole sessions, least recently used first
        then = sorted((d for d in root.glob(f"{session_prefix}*") if d.is_dir()), key=_mtime)
        for entry in first + then:
            if total <= CAP_LOW_WATER * cap:
                break
            freed = _remove(entry)
            total -= freed
            report.freed_bytes += freed
            if entry in then:
                report.sessions += 1
            elif entry.name.startswith(API_OUTPUT_PREFIX):
                report.api_outputs += 1
            else:
                report.uploads += 1
    report.total_bytes = max(total, 0)
