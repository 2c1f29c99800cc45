"""Disk use stays bounded: API outputs and uploads expire, and a hard cap removes the oldest first; only the
app's own files (its session folders and the files Gradio registered for it) are ever removed."""
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
    owned = [files["old_upload"], files["new_upload"], files["served_api"]]
    report = storage.prune(root, up, "session-", now, owned=owned)
    assert not files["old_upload"].exists() and not files["old_api"].exists()
    assert not files["old_upload"].parent.exists()           # its <hash>/ folder went with it
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
    report = storage.prune(root, up, "session-", now, owned=[str(f) for f in uploads])
    assert report.total_bytes <= storage.CAP_LOW_WATER * 2**20
    assert take.exists() and report.sessions == 0             # uploads went first
    assert not uploads[3].exists() and uploads[0].exists()    # the oldest one first
    assert storage.storage_cap_bytes() == 2**20


def test_unrelated_files_in_the_temp_dir_are_never_touched(tmp_path, monkeypatch):
    """GRADIO_TEMP_DIR shared with a user's or another app's files: old and big, they stay and do not count
    against the cap; the app's own expired files go and the app's own bytes end under the cap."""
    now = time.time()
    monkeypatch.setenv(storage.CAP_ENV, "1")                    # 1 MiB
    up = tmp_path / "gradio"
    root = up / "stepedit"
    old = storage.UPLOAD_TTL_S + 10
    mine_old = _file(up / ("a" * 64) / "voice.wav", 1000, old, now)
    mine_new = [_file(up / f"{i:064x}" / "take.wav", 300_000, 100 + i, now) for i in range(4)]   # 1.2 MB
    take = _file(root / "session-s" / "T1.wav", 100_000, 50, now)
    theirs = [_file(up / "notes.txt", 5_000_000, 10 * old, now),                  # loose, huge and ancient
              _file(up / ("d" * 64) / "other-app.wav", 2_000_000, 10 * old, now),  # another app's upload
              _file(up / ("a" * 64) / "neighbour.wav", 1000, 10 * old, now),       # beside an own file
              _file(up / "their-dir" / "session-x" / "api-edit-1.wav", 1000, 10 * old, now)]
    owned = [mine_old, *mine_new, up / "elsewhere.wav", tmp_path / "outside.wav"]   # missing and outside: ignored
    report = storage.prune(root, up, "session-", now, owned=[str(p) for p in owned])
    assert all(f.exists() for f in theirs)
    assert not mine_old.exists() and mine_old.parent.exists()  # the shared <hash>/ folder stays (not empty)
    assert report.total_bytes <= storage.CAP_LOW_WATER * 2**20
    assert sum(f.stat().st_size for f in mine_new if f.exists()) + take.stat().st_size == report.total_bytes
    assert not mine_new[3].exists() and take.exists()         # the cap took the app's oldest upload first
    # with nothing registered, only the app's own subfolder is pruned
    stale = _file(up / ("e" * 64) / "x.wav", 1000, old, now)
    storage.prune(root, up, "session-", now)
    assert stale.exists() and all(f.exists() for f in theirs)


def test_registered_files_reads_gradio_sets():
    class Blocks:
        temp_file_sets = [{"/a/1.wav"}, set(), {"/b/2.wav", "/b/3.wav"}]
    assert sorted(storage.registered_files(Blocks())) == ["/a/1.wav", "/b/2.wav", "/b/3.wav"]
    assert storage.registered_files(object()) == []


def test_outputs_trigger_a_pass_before_the_cap_is_crossed(tmp_path, monkeypatch):
    """Between the once-a-minute passes the app counts what it writes: takes written back to back never take
    its folder past the cap, and old takes of idle sessions make room."""
    import numpy as np

    from app_ui.history import TakeTree
    from app_ui.runner import EngineRunner
    from app_ui.studio import Studio
    from stepedit_core.interface import AudioClip, EngineResult
    from tests.fake_engine import FakeEngine

    monkeypatch.setenv(storage.CAP_ENV, "1")                    # 1 MiB: five 0.2 MiB takes cross it
    studio = Studio(EngineRunner(FakeEngine()), tmp_path / "gradio" / "stepedit", tmp_path / "gradio")
    take = EngineResult(audio=AudioClip(np.zeros(100_000, np.float32), 24000), text="x", seed=1,
                        edit_type="clone")                      # 16-bit wav: ~0.2 MiB
    studio.prune()                                              # the minute's pass has just run
    for i in range(8):
        tree = studio.ensure_workdir(TakeTree(), f"s{i}")
        studio._write_take(tree, 1, take)
        os.utime(tree.workdir, (time.time() - 100 + i, time.time() - 100 + i))   # earlier sessions are older
        total = sum(f.stat().st_size for f in (tmp_path / "gradio").rglob("*") if f.is_file())
        assert total <= storage.storage_cap_bytes(), f"{total} bytes after take {i + 1}"
    assert studio.last_prune.sessions > 0 and any(Path(tree.workdir).glob("T1-*.wav"))
    assert not Path(tmp_path, "gradio", "stepedit", "session-s0").exists()       # the oldest session went first


def test_copies_of_the_examples_survive_any_pass(tmp_path, monkeypatch):
    """Gradio copies each example once at start-up with the source's modification time (often days old) and
    hands that copy out for the app's life: neither the upload TTL nor the cap may remove it. A file of the same
    size but other bytes is an ordinary upload."""
    now = time.time()
    monkeypatch.setenv(storage.CAP_ENV, "1")                    # 1 MiB
    up = tmp_path / "gradio"
    root = up / "stepedit"
    source = tmp_path / "examples" / "prompt_en.wav"
    source.parent.mkdir()
    source.write_bytes(bytes(range(256)) * 400)                # 102 400 bytes
    old = 10 * storage.UPLOAD_TTL_S
    copy = _file(up / ("e" * 64) / "prompt_en.wav", 0, old, now)
    copy.write_bytes(source.read_bytes())
    os.utime(copy, (now - old, now - old))
    lookalike = _file(up / ("f" * 64) / "prompt_en.wav", 102_400, old, now)        # same size, other bytes
    fresh = [_file(up / f"{i:064x}" / "x.wav", 400_000, 100 + i, now) for i in range(3)]    # 1.2 MB: over the cap
    keep = storage.KeepFiles.of([source, tmp_path / "missing.wav"])
    report = storage.prune(root, up, "session-", now, owned=[copy, lookalike, *fresh], keep=keep)
    assert copy.exists() and copy.read_bytes() == source.read_bytes()
    assert not lookalike.exists()
    assert report.total_bytes <= storage.CAP_LOW_WATER * 2**20 and not fresh[2].exists()
    left = sum(f.exists() for f in fresh)
    again = storage.prune(root, up, "session-", now + old, owned=[copy, *fresh], keep=keep)   # all expired now
    assert copy.exists() and again.uploads == left == 2 and not any(f.exists() for f in fresh)
