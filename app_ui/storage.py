"""Bounded disk use: what the app writes (session takes, API outputs) and what Gradio keeps for it (uploads and
the served copies of outputs) is removed once nothing needs it, under a hard cap on the app's own bytes.

Only the app's own files are ever removed: its session folders under ``root`` (an app-owned subfolder of
Gradio's folder) and the files Gradio registered for this app (``owned``: ``Blocks.temp_file_sets``, i.e.
uploads received through this app and the copies of its outputs it served). Anything else in
``GRADIO_TEMP_DIR`` (a user's or another app's files) is neither removed nor counted against the cap.

- API outputs (``api-*.wav``): a stateless call's answer; the client downloads it at once. Removed after
  ``API_OUTPUT_TTL_S``.
- Registered uploads and served copies (``<upload dir>/<hash>/<name>``): a served copy of an API output
  (``api-*``) goes after ``API_OUTPUT_TTL_S`` as well; anything else after ``UPLOAD_TTL_S`` untouched. Its
  ``<hash>/`` folder goes with it once empty. A session's takes live in its own folder and are copied back
  when shown.
- Session folders: removed ``SESSION_MAX_AGE_S`` after last use (their ``gr.State`` also deletes them).
- Over ``storage_cap_bytes()`` in all: the oldest uploads and API outputs go first, then the least recently
  used sessions, until the total is below ``CAP_LOW_WATER`` of the cap.
- Never removed (nor counted): Gradio's copies of the files in ``keep`` (:class:`KeepFiles`), i.e. the app's
  examples. Gradio copies each example into the upload folder once, at start-up, with ``shutil.copy2`` (so the
  copy keeps the source file's modification time, often days old), and hands out that one copy for the app's
  whole life: removing it breaks the example for every later visitor (its URL answers 403).
"""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

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


@dataclass
class KeepFiles:
    """Content of files whose copies the pruner keeps: (size in bytes, sha256) of each source; a candidate is
    hashed only when its size matches one of them, and each hash is remembered by (path, size, mtime)."""
    digests: frozenset[tuple[int, str]] = frozenset()
    _seen: dict[tuple[str, int, int], bool] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, paths: Iterable[str | Path]) -> "KeepFiles":
        files = [Path(p) for p in paths if Path(p).is_file()]
        return cls(frozenset((f.stat().st_size, _sha256(f)) for f in files))

    def __contains__(self, path: Path) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        if not any(size == st.st_size for size, _ in self.digests):
            return False
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._seen:
            self._seen[key] = (st.st_size, _sha256(path)) in self.digests
        return self._seen[key]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
          session_max_age_s: float = SESSION_MAX_AGE_S, owned: Iterable[str | Path] = (),
          keep: KeepFiles = KeepFiles()) -> PruneReport:
    """One pass over ``root`` (this app's sessions) and the ``owned`` files inside ``upload_dir`` (Gradio's
    folder, holding ``root``), sparing copies of the files in ``keep``."""
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
    uploads = [f for f in _owned_files(root, upload_dir, owned) if f not in keep]
    for f in uploads:
        if now - _mtime(f) > (API_OUTPUT_TTL_S if f.name.startswith(API_OUTPUT_PREFIX) else UPLOAD_TTL_S):
            report.freed_bytes += _remove_upload(f, upload_dir)
            report.uploads += 1
    _enforce_cap(root, upload_dir, session_prefix, [f for f in uploads if f.exists()], report)
    return report


def registered_files(blocks) -> list[str]:
    """Paths Gradio registered for ``blocks`` (``temp_file_sets``: uploads through it and the copies of its
    outputs); the sets grow from request threads, so each is copied, retrying if it changes meanwhile."""
    out: list[str] = []
    for files in list(getattr(blocks, "temp_file_sets", ())):
        for _ in range(3):
            try:
                out.extend(list(files))
                break
            except RuntimeError:     # "Set changed size during iteration"
                continue
    return out


def _owned_files(root: Path, upload_dir: Path | None, owned: Iterable[str | Path]) -> list[Path]:
    """The registered files that exist inside ``upload_dir`` but outside ``root`` (sessions are pruned apart)."""
    if upload_dir is None or not upload_dir.is_dir():
        return []
    top, root = upload_dir.resolve(), root.resolve()
    out = set()
    for p in list(owned):
        f = Path(p).resolve()
        if f.is_file() and top in f.parents and f.parent != top and root != f and root not in f.parents:
            out.add(f)
    return sorted(out)


def _remove_upload(f: Path, upload_dir: Path | None) -> int:
    """Remove one registered file, and its ``<hash>/`` folder when that is left empty."""
    size = _remove(f)
    parent = f.parent
    if upload_dir is not None and parent != upload_dir.resolve():
        try:
            parent.rmdir()            # only when empty: a folder also holding other files stays
        except OSError:
            pass
    return size


def _enforce_cap(root: Path, upload_dir: Path | None, session_prefix: str, uploads: list[Path],
                 report: PruneReport) -> None:
    cap = storage_cap_bytes()
    total = (_size(root) if root.exists() else 0) + sum(_size(f) for f in uploads)     # the app's own bytes
    if total > cap:
        # oldest first: uploads and API outputs (nobody needs them after the request) ...
        first = sorted(uploads + list(root.glob(f"{session_prefix}*/{API_OUTPUT_PREFIX}*")), key=_mtime)
        # ... then whole sessions, least recently used first
        then = sorted((d for d in root.glob(f"{session_prefix}*") if d.is_dir()), key=_mtime)
        for entry in first + then:
            if total <= CAP_LOW_WATER * cap:
                break
            is_upload = entry in uploads
            freed = _remove_upload(entry, upload_dir) if is_upload else _remove(entry)
            total -= freed
            report.freed_bytes += freed
            if entry in then:
                report.sessions += 1
            elif is_upload:
                report.uploads += 1
            else:
                report.api_outputs += 1
    report.total_bytes = max(total, 0)
