"""Data safety: truncated audio is refused with the reason, temp files of killed runs are swept."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from gvc.fileio import remove_stale_temps, save_text
from gvc.synthetic_singing import write_corpus
from tests.helpers import run_gvc, tone, write


def cut_short(path: Path, keep_seconds: float) -> None:
    """Keep the header and the first `keep_seconds` of a 16-bit mono WAV (a broken copy)."""
    sr = sf.info(str(path)).samplerate
    blob = path.read_bytes()
    path.write_bytes(blob[: 44 + int(keep_seconds * sr) * 2])


def test_truncated_wav_fails_with_the_reason_and_the_batch_completes(tmp_path):
    write_corpus(tmp_path / "raw", singers=1, utterances=2, seconds=1.0)
    broken = write(tmp_path / "raw" / "singer00" / "broken.wav", tone(54.0, 16000), 16000)
    cut_short(broken, 0.03)
    # the precondition: the decoder alone takes the broken copy for a short, valid file
    assert abs(sf.info(str(broken)).duration - 0.03) < 1e-3
    r = run_gvc("resample", "-w", "raw", "--data", "out", "-s", "16000", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "broken.wav: truncated: header says 54.0 s, file holds 0.03 s" in r.stdout
    written = sorted(p.name for p in (tmp_path / "out").rglob("*.wav"))
    assert written == ["utt00.wav", "utt01.wav"]  # no output for the broken file


def test_stale_temps_of_dead_writers_are_removed_and_live_ones_kept(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f".a.wav.tmp-{dead_pid}"
        busy = tmp_path / f".b.wav.tmp-{live.pid}"
        keep = tmp_path / "c.wav.tmp-1"  # not hidden: not ours
        for p in (stale, busy, keep):
            p.write_bytes(b"x")
        with caplog.at_level(logging.WARNING):
            removed = remove_stale_temps([tmp_path, tmp_path / "absent"], "resample")
        assert removed == [stale] and not stale.exists() and busy.exists() and keep.exists()
        assert "resample: removed 1 temp file(s) left by an interrupted run" in caplog.text
    finally:
        live.kill()
        live.wait()


def test_atomic_write_flushes_before_the_rename(tmp_path, monkeypatch):
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append("replace") or real_replace(a, b))
    save_text(tmp_path / "f.txt", "hello")
    assert (tmp_path / "f.txt").read_text() == "hello"
    assert calls[:2] == ["fsync", "replace"]
    assert not list(tmp_path.glob(".*"))


def test_missing_fixtures_fail_under_ci_and_skip_elsewhere(tmp_path):
    """A copy of the project with no ../shared beside it: the parity tests skip, or fail with CI."""
    project = tmp_path / "clone"
    (project / "tests").mkdir(parents=True)
    root = Path(__file__).resolve().parents[1]
    (project / "tests" / "conftest.py").write_text((root / "tests" / "conftest.py").read_text())
    (project / "tests" / "test_uses_fixtures.py").write_text(
        "def test_parity(fixtures_dir):\n    assert fixtures_dir.is_dir()\n")
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    local = subprocess.run(args, cwd=project, capture_output=True, text=True, env=env)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    ci = subprocess.run(
        args, cwd=project, capture_output=True, text=True, env={**env, "CI": "true"}
    )
    assert ci.returncode == 1 and "CI=true" in ci.stdout and "1 error" in ci.stdout, ci.stdout
