"""Exit codes through the real `gvc` console script: 2 usage, 1 some inputs failed, 130 signals.

These run the installed entry point (not `python -m gvc`, not CliRunner): the code path a cron job
or a scheduler sees, including how typer's own click copy reports usage errors.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gvc.config import dump_config
from tests.test_infer import _song, kit  # noqa: F401 - the module fixture is used below
from tests.test_training import make_tree, tiny_config

GVC = Path(sys.executable).with_name("gvc")


def gvc(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the console script with output captured."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([str(GVC), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _signal_state(pid: int) -> str:
    """The child's signal masks when it was signalled (shown if it did not stop as expected)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            return " ".join(line.strip() for line in fh if line.startswith(("SigBlk", "SigIgn",
                                                                             "SigCgt")))
    except OSError as exc:  # not Linux, or already gone
        return f"no /proc status ({exc.strerror})"


def interrupt_when(args: list[str], cwd: Path, pattern: str, sig: int,
                   timeout: float = 240) -> tuple[int, str]:
    """Start `gvc ARGS`, send `sig` once a stdout line matches `pattern`; (exit code, output)."""
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([str(GVC), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines, sent, deadline = [], False, time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if not sent and re.search(pattern, line):
            proc.send_signal(sig)
            sent = True
            lines.append(f"[test] sent {signal.Signals(sig).name}; {_signal_state(proc.pid)}\n")
        if time.monotonic() > deadline:
            proc.kill()
            break
    rc = proc.wait(timeout=60)
    out = "".join(lines)
    assert sent, f"never saw {pattern!r}; the signal was not sent:\n{out}"
    return rc, out


@pytest.fixture(scope="module", autouse=True)
def entry_point() -> None:
    """The console script of this interpreter's environment must exist (an installed project)."""
    if not GVC.is_file():
        pytest.fail(f"{GVC} not found: install the project (make install) before the tests")


@pytest.mark.parametrize("args, message", [
    (["infer"], "Missing option '--model'"),
    (["infer", "--model", "m.pth", "--nonsense"], "No such option"),
    (["export", "--bogus"], "No such option"),
    (["train", "--max-steps", "many"], "Invalid value"),
    (["check", "--min-seconds", "x"], "Invalid value"),
    (["index", "--valid", "-3"], "Invalid value"),
    (["demo", "--steps", "0"], "Invalid value"),
    (["resample", "--bogus"], "No such option"),
    (["frobnicate"], "No such command"),
])
def test_usage_errors_print_the_usage_box_and_exit_2(args, message, tmp_path):
    r = gvc(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and "Usage: gvc" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_check_with_a_blocking_problem_exits_1(tmp_path):
    data = make_tree(tmp_path / "data_gvc", singers=1, utts=2, seconds=3.0)
    r = gvc("check", "--data", str(data), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr  # the precondition: a clean tree passes
    (data / "pitch" / "singer0" / "utt1.pit.npy").write_bytes(b"not numpy")
    r = gvc("check", "--data", str(data), cwd=tmp_path)
    assert r.returncode == 1 and "utt1" in r.stdout, r.stdout + r.stderr


def test_index_without_complete_utterances_exits_2(tmp_path):
    (tmp_path / "data_gvc" / "waves-32k").mkdir(parents=True)
    r = gvc("index", "--data", str(tmp_path / "data_gvc"), cwd=tmp_path)
    assert r.returncode == 2 and "error:" in r.stdout and "Traceback" not in r.stderr


def test_train_sigterm_exits_130_and_resume_path_crosses_the_phase_switch(tmp_path):
    """SIGTERM saves a checkpoint and exits 130; `--resume PATH` continues from it into the joint
    phase (tiny preset here: 3 steps per epoch, the decoder joins after 1 epoch)."""
    data = make_tree(tmp_path / "data_gvc")
    cfg = dump_config(tiny_config(checkpoint_every=100), tmp_path / "tiny.yaml")
    common = ["train", "-c", str(cfg), "--data", str(data), "--files", str(tmp_path / "files"),
              "--device", "cpu", "--log-every", "1", "--valid-every", "1000", "--valid", "2"]
    rc, out = interrupt_when([*common, "--run-dir", str(tmp_path / "a"), "--max-steps", "50"],
                             tmp_path, r"\bstep 1 epoch 1\b", signal.SIGTERM)
    assert rc == 130, out
    ckpts = sorted((tmp_path / "a").glob("ckpt-*.pt"))
    assert len(ckpts) == 1, out
    stopped = int(ckpts[0].stem.split("-")[1])
    assert 1 <= stopped <= 2, out  # the run was cut short: it stopped in the warm-up epoch
    # resume from that file into a fresh run folder, through the warm-up -> joint switch
    r = gvc(*common, "--run-dir", str(tmp_path / "b"), "--resume", str(ckpts[0]),
            "--max-steps", "5", cwd=tmp_path, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    steps = [int(s) for s in re.findall(r"\bstep (\d+) epoch", r.stdout)]
    assert steps == list(range(stopped + 1, 6)), r.stdout
    # the joint phase adds the diffusion loss: zero in the warm-up epoch, positive after it
    diff = {int(m[0]): float(m[1]) for m in re.findall(r"\bstep (\d+) epoch.*?diff ([-\d.e]+)",
                                                        r.stdout)}
    assert diff and diff[5] > 0 and all(diff[s] == 0 for s in diff if s <= 3), r.stdout
    assert "max_steps at step 5" in r.stdout


def test_infer_folder_with_a_bad_file_exits_1_and_sigint_exits_130(kit, tmp_path):  # noqa: F811
    src = tmp_path / "in"
    for i in range(3):
        _song(src / f"song{i}.wav", 1.0, seed=i + 1, index=i % 2)
    (src / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    common = ["infer", "--model", str(kit.model), "--spk", str(kit.spk), "--wave", str(src),
              "--hubert-model", str(kit.hubert), "--vocoder", "griffinlim", "--steps", "1",
              "--device", "cpu"]
    r = gvc(*common, "--out", str(tmp_path / "all"), cwd=tmp_path, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "bad.wav" in r.stdout and len(list((tmp_path / "all").glob("*.wav"))) == 3
    rc, out = interrupt_when([*common, "--out", str(tmp_path / "cut")], tmp_path,
                             r"song0\.wav -> ", signal.SIGINT)
    assert rc == 130 and "interrupted" in out, out
    assert len(list((tmp_path / "cut").glob("*.wav"))) < 3  # the precondition: cut short


def test_demo_sigterm_exits_130(tmp_path):
    rc, out = interrupt_when(["demo", "--out", str(tmp_path / "demo"), "--steps", "1", "-j", "1"],
                             tmp_path, r"writing a synthetic corpus", signal.SIGTERM)
    assert rc == 130, out
    assert not (tmp_path / "demo" / "heldout.gvc.wav").exists()
