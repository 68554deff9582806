"""The batch engine through the resample / mel / f0 steps: idempotence, force, shards,
metadata, atomicity under SIGKILL, and every kind of bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from gvc.errors import DataLayoutError, FeatureMismatch
from gvc.synthetic_singing import sing, singer_voice, write_corpus
from prepare import steps
from prepare.discover import Shard, discover
from tests.helpers import run_gvc, tone, write


@pytest.fixture()
def corpus(tmp_path):
    write_corpus(tmp_path / "raw", singers=2, utterances=2, seconds=1.5)
    return tmp_path


def outputs(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def test_synth_is_deterministic():
    a = sing(singer_voice(1), 1.0, sr=16000, seed=3)
    b = sing(singer_voice(1), 1.0, sr=16000, seed=3)
    c = sing(singer_voice(2), 1.0, sr=16000, seed=3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0.5 < np.abs(a).max() <= 0.9


def test_full_chain_and_idempotence(corpus):
    raw, data = corpus / "raw", corpus / "data"
    rep = steps.resample(raw, {16000: data / "waves-16k", 32000: data / "waves-32k"})
    assert rep.ok and rep.done == 4
    info = sf.info(str(data / "waves-32k" / "singer00" / "utt00.wav"))
    assert info.samplerate == 32000 and info.subtype == "PCM_16"
    x, _ = sf.read(data / "waves-16k" / "singer00" / "utt00.wav", dtype="int16")
    assert abs(int(np.abs(x).max()) - 19660) <= 1

    mel = steps.extract_mel(data / "waves-32k", data / "mel")
    f0 = steps.extract_f0(data / "waves-16k", data / "pitch")
    assert mel.ok and f0.ok and mel.done == f0.done == 4
    m = torch.load(data / "mel" / "singer01" / "utt01.mel.pt")
    p = np.load(data / "pitch" / "singer01" / "utt01.pit.npy")
    assert m.shape == (100, 150) and p.dtype == np.float64 and len(p) == 153
    assert (p > 0).mean() > 0.5

    before = {f: os.stat(f).st_mtime_ns for f in data.rglob("*") if f.is_file()}
    again = [steps.resample(raw, {16000: data / "waves-16k", 32000: data / "waves-32k"}),
             steps.extract_mel(data / "waves-32k", data / "mel"),
             steps.extract_f0(data / "waves-16k", data / "pitch")]
    assert all(r.done == 0 and r.skipped == 4 and r.ok for r in again)
    assert before == {f: os.stat(f).st_mtime_ns for f in data.rglob("*") if f.is_file()}

    forced = steps.extract_mel(data / "waves-32k", data / "mel", force=True)
    assert forced.done == 4 and forced.skipped == 0


def test_stale_output_is_redone(corpus):
    raw, data = corpus / "raw", corpus / "data"
    steps.resample(raw, {16000: data / "w16"})
    steps.extract_f0(data / "w16", data / "pitch")
    src = data / "w16" / "singer00" / "utt00.wav"
    later = time.time() + 10
    os.utime(src, (later, later))
    rep = steps.extract_f0(data / "w16", data / "pitch")
    assert rep.done == 1 and rep.skipped == 3


def test_parallel_equals_serial(corpus):
    raw, data = corpus / "raw", corpus / "data"
    steps.resample(raw, {32000: data / "w32"})
    steps.extract_mel(data / "w32", data / "mel1", jobs=1)
    rep = steps.extract_mel(data / "w32", data / "mel2", jobs=2)
    assert rep.ok and outputs(data / "mel1").keys() == outputs(data / "mel2").keys()
    for key in outputs(data / "mel1"):
        assert torch.equal(torch.load(data / "mel1" / key), torch.load(data / "mel2" / key))


def test_shards_partition_the_corpus(tmp_path):
    write_corpus(tmp_path / "raw", singers=3, utterances=4, seconds=0.5)
    sources, _ = discover(tmp_path / "raw", (".wav",))
    seen = []
    for k in (1, 2, 3):
        rep = steps.resample(tmp_path / "raw", {16000: tmp_path / f"s{k}"}, shard=Shard(k, 3))
        names = set(outputs(tmp_path / f"s{k}"))
        assert rep.done == len(names)
        seen.append(names)
    union = set().union(*seen)
    assert len(union) == sum(len(s) for s in seen) == len(sources) == 12
    with pytest.raises(Exception, match="K/N"):
        Shard.parse("3")
    with pytest.raises(Exception, match="1 <= K <= N"):
        Shard.parse("4/3")


def test_settings_mismatch_is_refused(corpus):
    raw, data = corpus / "raw", corpus / "data"
    steps.resample(raw, {16000: data / "w16"})
    steps.extract_f0(data / "w16", data / "pitch", method="praat")
    with pytest.raises(FeatureMismatch, match="--force"):
        steps.extract_f0(data / "w16", data / "pitch", method="dio")
    rep = steps.extract_f0(data / "w16", data / "pitch", method="dio", force=True)
    assert rep.done == 4
    assert '"dio"' in (data / "pitch" / ".gvc-feature.json").read_text()


def test_layout_errors(tmp_path):
    (tmp_path / "flat").mkdir()
    write(tmp_path / "flat" / "a.wav", tone(0.5, 16000), 16000)
    with pytest.raises(DataLayoutError, match="<singer>"):
        steps.resample(tmp_path / "flat", {16000: tmp_path / "o"})
    (tmp_path / "empty" / "alice").mkdir(parents=True)
    with pytest.raises(DataLayoutError, match="no input files"):
        steps.resample(tmp_path / "empty", {16000: tmp_path / "o"})
    with pytest.raises(DataLayoutError, match="no such folder"):
        steps.resample(tmp_path / "missing", {16000: tmp_path / "o"})


def make_bad_tree(root: Path) -> dict[str, bool]:
    """Write one file per bad-input kind; value: whether it must succeed."""
    s = root / "alice"
    s.mkdir(parents=True)
    (s / "empty.wav").write_bytes(b"")
    (s / "text.wav").write_text("this is not audio\n" * 20)
    header = root / "tmp_header.wav"
    sf.write(header, np.zeros(0, np.float32), 16000, subtype="PCM_16")
    (s / "header only.wav").write_bytes(header.read_bytes())
    header.unlink()
    full = write(root / "tmp_full.wav", tone(1.0, 44100), 44100)
    (s / "truncated.wav").write_bytes(full.read_bytes()[:20000])
    full.unlink()
    write(s / "silent.wav", np.zeros(16000, np.float32), 16000)
    nan = tone(0.5, 16000)
    nan[100] = np.nan
    write(s / "nan.wav", nan, 16000, subtype="FLOAT")
    write(s / "tiny.wav", tone(0.001, 44100), 44100)
    write(s / "u8.wav", tone(0.5, 8000), 8000, subtype="PCM_U8")
    write(s / "pcm24.wav", tone(0.5, 96000), 96000, subtype="PCM_24")
    write(s / "float.wav", tone(0.5, 22050), 22050, subtype="FLOAT")
    write(s / "stereo.flac", np.stack([tone(0.5, 48000), tone(0.5, 48000, 330)], axis=1), 48000)
    write(s / "with space é.ogg", tone(0.5, 44100), 44100, subtype="VORBIS")
    write(root / "bob" / "ünïcode name.wav", tone(0.5, 16000), 16000)
    return {
        "empty.wav": False, "text.wav": False, "header only.wav": False, "silent.wav": False,
        "nan.wav": False, "tiny.wav": False, "u8.wav": True, "pcm24.wav": True, "float.wav": True,
        "stereo.flac": True, "with space é.ogg": True, "ünïcode name.wav": True,
    }


def test_bad_inputs_fail_alone(tmp_path):
    expect = make_bad_tree(tmp_path / "raw")
    out = tmp_path / "w16"
    rep = steps.resample(tmp_path / "raw", {16000: out})
    failed = {p.name: reason for p, reason in rep.failures}
    for name, ok in expect.items():
        assert (name not in failed) == ok, (name, failed.get(name))
    for name, reason in failed.items():
        assert str(tmp_path) not in reason or name in reason
        assert "\n" not in reason and len(reason) < 300
    assert "empty file" in failed["empty.wav"]
    assert "silent" in failed["silent.wav"]
    assert "NaN" in failed["nan.wav"]
    # the truncated file either decodes what is there or fails clearly; never a crash
    assert "truncated.wav" in failed or (out / "alice" / "truncated.wav").is_file()
    written = {p.name for p in out.rglob("*.wav")}
    assert not any(
        n.startswith(Path(k).stem + ".") for k, ok in expect.items() if not ok for n in written
    )
    stereo, _ = sf.read(out / "alice" / "stereo.wav")
    assert stereo.ndim == 1
    # downstream steps see only good files; a too-short wave fails mel/f0 with a clear reason
    write(out / "alice" / "short.wav", tone(0.005, 16000), 16000)
    f0 = steps.extract_f0(out, tmp_path / "pitch")
    assert [p.name for p, _ in f0.failures] == ["short.wav"]
    assert "shorter than" in f0.failures[0][1]


def test_unreadable_folder_is_reported(tmp_path, monkeypatch):
    write_corpus(tmp_path / "raw", singers=2, utterances=1, seconds=0.5)
    real = os.scandir

    def scandir(path="."):
        if str(path).endswith("singer01"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    rep = steps.resample(tmp_path / "raw", {16000: tmp_path / "o"})
    assert rep.done == 1 and rep.failed == 1
    assert "cannot be read" in rep.failures[0][1]


def test_split_and_loudness(tmp_path):
    voice = singer_voice(0)
    audio = np.concatenate(
        [
            sing(voice, 4.0, 16000, seed=1),
            np.zeros(8000, np.float32),
            sing(voice, 4.0, 16000, seed=2),
        ]
    )
    write(tmp_path / "raw" / "a" / "long.wav", audio, 16000)
    rep = steps.resample(tmp_path / "raw", {16000: tmp_path / "o"}, max_seconds=5.0, loudness=-18.0)
    assert rep.ok
    pieces = sorted((tmp_path / "o" / "a").glob("long_*.wav"))
    assert len(pieces) >= 2
    import pyloudnorm

    for p in pieces:
        x, sr = sf.read(p)
        assert len(x) <= 5 * sr
    total = sum(len(sf.read(p)[0]) for p in pieces)
    assert total >= len(audio) - 16000  # only silent gaps may be dropped
    joined = np.concatenate([sf.read(p)[0] for p in pieces])
    assert abs(pyloudnorm.Meter(16000).integrated_loudness(joined) + 18) < 1.0
    again = steps.resample(
        tmp_path / "raw", {16000: tmp_path / "o"}, max_seconds=5.0, loudness=-18.0
    )
    assert again.skipped == 1


def test_sigkill_leaves_no_partial_files(tmp_path):
    write_corpus(tmp_path / "raw", singers=2, utterances=10, seconds=2.0)
    clean = run_gvc("resample", "-w", "raw", "--data", "clean", "-j", "2", cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "gvc", "resample", "-w", "raw", "--data", "killed", "-j", "2"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and len(list((tmp_path / "killed").rglob("*.wav"))) < 6:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = outputs(tmp_path / "killed")
    # the precondition: the kill interrupted the run (some outputs were still missing)
    assert 0 < len(partial) < len(outputs(tmp_path / "clean")), sorted(partial)
    for name, blob in partial.items():  # whatever exists is complete
        assert blob == (tmp_path / "clean" / name).read_bytes(), name
    # a temp file the kill left behind (one made here too, so the sweep is always exercised)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    planted = next((tmp_path / "killed").rglob("*.wav")).parent / f".x.wav.tmp-{int(dead.stdout)}"
    planted.write_bytes(b"partial")
    rerun = run_gvc("resample", "-w", "raw", "--data", "killed", "-j", "2", cwd=tmp_path)
    assert rerun.returncode == 0
    assert "left by an interrupted run" in rerun.stdout
    assert outputs(tmp_path / "killed") == outputs(tmp_path / "clean")
    assert not [p for p in (tmp_path / "killed").rglob(".*") if ".tmp-" in p.name]
