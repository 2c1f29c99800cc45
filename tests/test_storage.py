"""Disk use stays bounded: API outputs and uploads expire, and a hard cap removes the oldest first."""
from __future__ import annotations

import os
import time
from pathlib import Path

from app_ui import storage


def _file(path: Path, size: int, age_s: float, now: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    os.utime(path, (now - age_s, now - age_s))
    return path


def _tree(tmp: Path, now: float):
    up = tmp / "gradio"
    root = up / "stepedit"
    session = root / "session-a"
    files = {
        "old_upload": _file(up / ("a" * 64) / "voice.wav", 1000, storage.UPLOAD_TTL_S + 10, now),
        "new_upload": _file(up / ("b" * 64) / "voice.wav", 1000, 10, now),
        "old_api": _file(session / "api-edit-1.wav", 1000, storage.API_OUTPUT_TTL_S + 10, now),
        "new_api": _file(session / "api-edit-2.wav", 1000, 10, now),
        "take": _file(session / "T1.wav", 1000, storage.UPLOAD_TTL_S + 10, now),
        "served_api": _file(up / ("c" * 64) / "api-clone-3.wav", 1000, storage.API_OUTPUT_TTL_S + 10, now),
    }
    for d in (up / ("a" * 64), up / ("b" * 64), up / ("c" * 64)):
        os.utime(d, (now - _age(files, d), now - _age(files, d)))
    os.utime(session, (now - 5, now - 5))
    return up, root, files


def _age(files, d):
    return {"a": storage.UPLOAD_TTL_S + 10, "b": 10, "c": storage.API_OUTPUT_TTL_S + 10}[d.name[0]]


def test_expired_outputs_and_uploads_go_takes_stay(tmp_path):
    now = time.time()
    up, root, files = _tree(tmp_path, now)
    report = storage.prune(root, up, "session-", now)
    assert not files["old_upload"].exists() and not files["old_api"].exists()
    assert not files["served_api"].exists()                  # the served copy of an API answer, after 5 min
    assert files["new_upload"].exists() and files["new_api"].exists() and files["take"].exists()
    assert (report.uploads, report.api_outputs, report.sessions) == (2, 1, 0)


def test_hard_cap_removes_oldest_first_and_sessions_last(tmp_path, monkeypatch):
    now = time.time()
    monkeypatch.setenv(storage.CAP_ENV, "1")                    # 1 MiB
    up = tmp_path / "gradio"
    root = up / "stepedit"
    uploads = [_file(up / f"{i:064x}" / "x.wav", 300_000, 100 + i, now) for i in range(4)]   # 1.2 MB, fresh
    for i, f in enumerate(uploads):
        os.utime(f.parent, (now - 100 - i, now - 100 - i))
    take = _file(root / "session-s" / "T1.wav", 200_000, 50, now)
    report = storage.prune(root, up, "session-", now)
    assert report.total_bytes <= storage.CAP_LOW_WATER * 2**20
    assert take.exists() and report.sessions == 0             # uploads went first
    assert not uploads[3].exists() and uploads[0].exists()    # the oldest one first
    assert storage.storage_cap_bytes() == 2**20
