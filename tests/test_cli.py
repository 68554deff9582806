"""The command line: help, exit codes, Grad-SVC flags, single-file modes, plain logs for cron."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from gvc.synthetic_singing import write_corpus
from tests.helpers import run_gvc, tone, write


def test_help_is_fast_and_light():
    code = ("import sys; sys.argv=['gvc','--help']\nfrom gvc.cli import main\ntry:\n"
            "    main()\nexcept SystemExit:\n    pass\nprint('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "resample" in out.stdout and "extract-f0" in out.stdout
    assert "TORCH False" in out.stdout


def test_noop_paths_do_not_import_torch():
    # A re-run with nothing to do must stay a stat-only pass: the modules the audio steps load
    # before any work exists (mel settings included) keep torch out.
    code = ("import sys, prepare.mel, prepare.f0, prepare.resample, vocoder\n"
            "from vocoder import MEL\nprint('TORCH', 'torch' in sys.modules, MEL.hop_length)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "TORCH False 320" in out.stdout, out.stdout + out.stderr


def test_defaults_shown_in_help(tmp_path):
    out = run_gvc("extract-f0", "--help", cwd=tmp_path)
    assert out.returncode == 0
    assert "praat" in out.stdout and "data_gvc/waves-16k" in out.stdout


def test_gradsvc_flags_and_exit_codes(tmp_path):
    write_corpus(tmp_path / "data_raw", singers=1, utterances=2, seconds=1.0)
    (tmp_path / "data_raw" / "singer00" / "broken.wav").write_text("not audio")
    r = run_gvc(
        "resample", "-w", "./data_raw", "-o", "./data_gvc/waves-16k", "-s", "16000", cwd=tmp_path
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "broken.wav" in r.stdout and "cannot be decoded" in r.stdout
    assert "INFO" in r.stdout  # plain log lines, not a live bar, when stdout is not a terminal
    assert sorted(p.name for p in (tmp_path / "data_gvc/waves-16k/singer00").glob("*.wav")) == [
        "utt00.wav",
        "utt01.wav",
    ]
    assert not (tmp_path / "data_gvc" / "waves-32k").exists()
    r = run_gvc("extract-f0", "-w", "data_gvc/waves-16k", "-p", "data_gvc/pitch", cwd=tmp_path)
    assert r.returncode == 0 and len(list((tmp_path / "data_gvc/pitch").rglob("*.pit.npy"))) == 2
    r = run_gvc("extract-f0", "--method", "nope", cwd=tmp_path)
    assert r.returncode == 2 and "praat" in r.stdout
    r = run_gvc("resample", "-w", "nowhere", cwd=tmp_path)
    assert r.returncode == 2 and "no such folder" in r.stdout
    r = run_gvc("resample", "--shard", "5/2", cwd=tmp_path)
    assert r.returncode == 2


def test_single_file_modes(tmp_path):
    write(tmp_path / "test.wav", tone(1.0, 44100, 330.0), 44100)
    r = run_gvc(
        "extract-f0", "--wave", "test.wav", "--csv", "test.csv", "--npy", "test.npy", cwd=tmp_path
    )
    assert r.returncode == 0, r.stdout + r.stderr
    f0 = np.load(tmp_path / "test.npy")
    assert len((tmp_path / "test.csv").read_text().splitlines()) == len(f0)
    assert abs(np.median(f0[f0 > 0]) - 330) < 2
    r = run_gvc("extract-mel", "--wave", "test.wav", "--mel", "test.mel.pt", cwd=tmp_path)
    assert r.returncode == 0
    assert torch.load(tmp_path / "test.mel.pt").shape == (100, 100)
    r = run_gvc("extract-mel", "--wave", "test.wav", cwd=tmp_path)
    assert r.returncode == 2 and "--mel" in r.stdout
