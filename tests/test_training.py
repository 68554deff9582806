"""`gvc train`: data validation, schedule, exact resume, DDP, NaN stop, checkpoints, fine-tuning.

Every run uses the tiny preset with short crops on a generated feature tree (no audio).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from rich.console import Console
from typer.testing import CliRunner

from gvc.config import dump_config, load_config
from gvc.errors import CheckpointError, ConfigError, DataLayoutError, FeatureMismatch
from gvc.fileio import save_json
from gvc.training import TrainingDiverged, TrainOptions, train
from gvc.training.checkpoint import list_checkpoints, load_checkpoint, rotate
from prepare.meta import describe

FAST = {"train.segment_frames": 32, "train.min_frames": 40, "train.max_frames": 64,
        "train.batch_size": 2, "train.fast_epochs": 1, "train.num_workers": 0}
LOSSES = ("prior", "ssim", "spk", "diff")


def tiny_config(**extra):
    """The tiny preset with 0.64 s crops (fast on CPU)."""
    return load_config("tiny", overrides={**FAST, **{f"train.{k}": v for k, v in extra.items()}})


def write_meta(root: Path, pitch: str = "praat", hop: int = 320) -> None:
    """Feature-folder metadata as the prepare steps record it."""
    from pitch.praat import PraatSettings
    from prepare.mel import mel_settings

    save_json(root / "mel" / ".gvc-feature.json",
              describe("mel", "log-mel", {**mel_settings(), "hop_length": hop}))
    save_json(root / "pitch" / ".gvc-feature.json",
              describe("pitch", pitch, asdict(PraatSettings())))
    save_json(root / "hubert" / ".gvc-feature.json", describe("hubert", "hubert-soft", {"fp16": True}))
    save_json(root / "speaker" / ".gvc-feature.json", describe("speaker", "lstm", {"num_eval": 10}))


def make_tree(root: Path, singers: int = 3, utts: int = 3, seconds: float = 3.0,
              seed: int = 0, n_vecs: int = 256) -> Path:
    """A data_gvc/ tree of feature files with Grad-SVC's shapes (pitch ~3 frames longer than mel,
    units at 50 fps) and empty waves-32k placeholders (the index walks them)."""
    rng = np.random.default_rng(seed)
    t = int(round(seconds * 100))
    for s in range(singers):
        spk = rng.standard_normal(256).astype(np.float32)
        spk /= np.linalg.norm(spk)
        for u in range(utts):
            sing, name = f"singer{s}", f"utt{u}"
            for folder in ("waves-32k", "mel", "hubert", "pitch", "speaker"):
                (root / folder / sing).mkdir(parents=True, exist_ok=True)
            (root / "waves-32k" / sing / f"{name}.wav").write_bytes(b"")
            frames = np.arange(t + 3)
            f0 = np.where(rng.random(t + 3) > 0.2, 150 + 40 * s + 20 * np.sin(frames / 20), 0.0)
            np.save(root / "pitch" / sing / f"{name}.pit.npy", f0)
            np.save(root / "hubert" / sing / f"{name}.vec.npy",
                    rng.standard_normal((t // 2, n_vecs)).astype(np.float32))
            mel = -6 + 2 * np.sin(np.arange(100)[:, None] / 10 + s) \
                + 0.5 * rng.standard_normal((100, t))
            torch.save(torch.from_numpy(mel.astype(np.float32)), root / "mel" / sing / f"{name}.mel.pt")
            np.save(root / "speaker" / sing / f"{name}.spk.npy",
                    spk + 0.01 * rng.standard_normal(256).astype(np.float32))
    write_meta(root)
    return root


def options(tmp: Path, cfg=None, run: str = "run", **kw) -> TrainOptions:
    base = dict(config=cfg or tiny_config(), config_name="tiny", data=tmp / "data_gvc",
                run_dir=tmp / run, train_files=tmp / "files" / "train.txt",
                valid_files=tmp / "files" / "valid.txt", valid_count=2, device="cpu",
                valid_every=1000)
    base.update(kw)
    return TrainOptions(**base)


def run_losses(opts: TrainOptions) -> tuple[list, object]:
    out = []
    opts.callbacks.append(out.append)
    return out, train(opts)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a busy 2-core machine two threads make these small steps 5x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """3 singers x 3 utterances of 3 s; index: 7 train (3 batches of 2 per epoch), 2 valid."""
    tmp = tmp_path_factory.mktemp("tree")
    make_tree(tmp / "data_gvc")
    return tmp


def test_resume_equals_uninterrupted_and_phase_switches_after_fast_epochs(tree):
    straight, res = run_losses(options(tree, run="a", max_steps=6))
    assert res.reason == "max_steps" and res.step == 6
    assert [r.joint for r in straight] == [False] * 3 + [True] * 3  # fast_epochs = 1, 3 steps/epoch
    assert all(r.losses["diff"] == 0 for r in straight[:3]) and all(r.losses["diff"] > 0 for r in straight[3:])
    first, _ = run_losses(options(tree, run="b", max_steps=4, valid_every=2, log_every=1))
    ckpt = load_checkpoint(tree / "b" / "ckpt-00000004.pt")
    assert ckpt["train_state"] == {"step": 4, "epoch": 1, "batch_in_epoch": 1}
    assert (ckpt["steps"], ckpt["epoch"]) == (4, 1)
    second, res = run_losses(options(tree, run="b", max_steps=6))  # --resume auto
    assert res.step == 6 and [r.step for r in second] == [5, 6]
    resumed = first + second
    worst = max(abs(a.losses[k] - b.losses[k]) for a, b in zip(straight, resumed, strict=True)
                for k in LOSSES)
    assert worst <= 1e-6
    a = load_checkpoint(tree / "a" / "ckpt-00000006.pt")["model"]
    b = load_checkpoint(tree / "b" / "ckpt-00000006.pt")["model"]
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
    # keep_last 2 (tiny preset): only the two newest remain
    assert [s for s, _ in list_checkpoints(tree / "b")] == [4, 6]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tree / "b")).Reload()
    tags = events.Tags()
    assert {"training/prior_loss", "training/mel_loss", "training/diffusion_loss",
            "training/spk_loss", "training/encoder_grad_norm", "training/decoder_grad_norm",
            "training/lr", "validation/total_loss"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("validation/total_loss")] == [2, 4]
    # decoder image only once the decoder trains (step 4), mu at both validations
    assert {"image_0/ground_truth", "image_0/generated_enc", "image_0/generated_dec"} <= set(tags["images"])
    assert [e.step for e in events.Images("image_0/generated_dec")] == [4]
    assert [e.step for e in events.Images("image_0/generated_enc")] == [2, 4]


def test_overfits_one_batch(tmp_path):
    make_tree(tmp_path / "data_gvc", singers=1, utts=2, seconds=0.6)  # 58 usable frames: no crop
    files = tmp_path / "files"
    files.mkdir()
    d = tmp_path / "data_gvc"
    lines = [f"{d}/mel/singer0/utt{u}.mel.pt|{d}/hubert/singer0/utt{u}.vec.npy|"
             f"{d}/pitch/singer0/utt{u}.pit.npy|{d}/speaker/singer0/utt{u}.spk.npy" for u in (0, 1)]
    (files / "train.txt").write_text("\n".join(lines) + "\n")
    (files / "valid.txt").write_text("")
    cfg = tiny_config(vec_noise_std=0.0, fast_epochs=0, learning_rate=3e-3)
    losses, res = run_losses(options(tmp_path, cfg, max_steps=25))
    start, end = losses[0].losses, losses[-1].losses
    print("overfit", start, end)
    assert end["total"] < 0.4 * start["total"], (start, end)
    assert end["prior"] < 0.3 * start["prior"]


def test_ddp_two_cpu_processes(tree, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, sys
        from pathlib import Path
        import torch
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import gvc.training.loop as loop
        from test_training import options, tiny_config
        from gvc.training import train
        saves = []
        real = loop.save_checkpoint
        loop.save_checkpoint = lambda *a, **k: saves.append(1) or real(*a, **k)
        cfg = tiny_config(checkpoint_every=2)
        out = []
        opts = options(Path({str(tree)!r}), cfg, run={str(tmp_path / 'ddp')!r}, max_steps=4,
                       valid_every=2, callbacks=[out.append])
        res = train(opts)
        model = torch.load(res.checkpoint, weights_only=True)["model"] if res.checkpoint else None
        rank = os.environ["RANK"]
        json.dump({{"saves": len(saves), "losses": [r.losses["total"] for r in out],
                   "step": res.step, "phases": [r.joint for r in out]}},
                  open(Path({str(tmp_path)!r}) / f"rank{{rank}}.json", "w"))
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(script)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    # 7 items / 2 ranks -> 3 per rank -> 1 batch of 2 per epoch; fast_epochs 1
    assert r0["step"] == r1["step"] == 4 and r0["phases"] == [False, True, True, True]
    assert r0["losses"] == r1["losses"]  # all-reduced means
    assert r0["saves"] == 2 and r1["saves"] == 0  # steps 2 and 4, rank 0 only
    assert [s for s, _ in list_checkpoints(tmp_path / "ddp")] == [2, 4]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tree, monkeypatch):
    from gvc.models import GradSVC

    real, calls = GradSVC.compute_loss, []

    def poisoned(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 5:
            out["prior"] = out["prior"] * float("nan")
        return out

    monkeypatch.setattr(GradSVC, "compute_loss", poisoned)
    cfg = tiny_config(checkpoint_every=2, keep_last=0)
    with pytest.raises(TrainingDiverged, match=r"step 5 .*ckpt-00000004\.pt"):
        train(options(tree, cfg, run="nan", max_steps=10))
    assert [s for s, _ in list_checkpoints(tree / "nan")] == [2, 4]
    state = load_checkpoint(tree / "nan" / "ckpt-00000004.pt")["model"]
    assert all(torch.isfinite(v).all() for v in state.values())


def test_sigterm_saves_and_stops(tree):
    def kill_at_2(rec):
        if rec.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    # the signal arrives during step 2; step 3 (already under way for DDP ranks) completes
    res = train(options(tree, run="sig", max_steps=10, callbacks=[kill_at_2]))
    assert res.reason == "interrupted" and res.step == 3
    assert res.checkpoint == tree / "sig" / "ckpt-00000003.pt" and res.checkpoint.is_file()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_rotation_keeps_last_k_and_every_m(tmp_path):
    for step in range(1, 11):
        (tmp_path / f"ckpt-{step:08d}.pt").write_bytes(b"x")
    (tmp_path / "other.pt").write_bytes(b"x")
    deleted = rotate(tmp_path, keep_last=2, keep_every=4)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [4, 8, 9, 10]
    assert len(deleted) == 6 and (tmp_path / "other.pt").exists()
    assert rotate(tmp_path, keep_last=0, keep_every=0) == []  # 0 = keep everything


def _index(tmp: Path, lines: list[str], valid: list[str] = ()) -> None:
    (tmp / "files").mkdir(exist_ok=True)
    (tmp / "files" / "train.txt").write_text("".join(x + "\n" for x in lines))
    (tmp / "files" / "valid.txt").write_text("".join(x + "\n" for x in valid))


def _lines(root: Path, singer: int = 0, utts: int = 3) -> list[str]:
    return [f"{root}/mel/singer{singer}/utt{u}.mel.pt|{root}/hubert/singer{singer}/utt{u}.vec.npy|"
            f"{root}/pitch/singer{singer}/utt{u}.pit.npy|{root}/speaker/singer{singer}/utt{u}.spk.npy"
            for u in range(utts)]


def test_data_errors_before_any_compute(tmp_path):
    d = make_tree(tmp_path / "data_gvc", singers=1, utts=3, seconds=0.3)  # 28 usable frames
    _index(tmp_path, [])
    with pytest.raises(DataLayoutError, match="lists no utterance"):
        train(options(tmp_path))
    _index(tmp_path, _lines(d))
    with pytest.raises(DataLayoutError, match=r"all 3 utterances are shorter than train.min_frames"):
        train(options(tmp_path))
    _index(tmp_path, [_lines(d)[0].replace("utt0.vec", "gone.vec")])
    with pytest.raises(DataLayoutError, match=r"missing: .*gone\.vec\.npy"):
        train(options(tmp_path))
    assert not (tmp_path / "run").exists()  # nothing written, nothing trained


def test_feature_metadata_and_shape_mismatches(tmp_path):
    d = make_tree(tmp_path / "a" / "data_gvc", singers=1, utts=3)
    _index(tmp_path, _lines(d))
    write_meta(d, hop=256)
    with pytest.raises(FeatureMismatch, match=r"data\.hop_length: config 320 vs folder 256"):
        train(options(tmp_path))
    write_meta(d)
    e = make_tree(tmp_path / "b" / "data_gvc", singers=2, utts=3, seed=1)
    write_meta(e, pitch="crepe")
    _index(tmp_path, _lines(d) + _lines(e, singer=1))
    with pytest.raises(FeatureMismatch, match="mixes pitch folders"):
        train(options(tmp_path))
    f = make_tree(tmp_path / "c" / "data_gvc", singers=1, utts=2, n_vecs=128)
    _index(tmp_path, _lines(f, utts=2))
    with pytest.raises(FeatureMismatch, match=r"expected \[T, 256\]"):
        train(options(tmp_path))
    assert not (tmp_path / "run").exists()


def test_builds_index_when_absent_and_resume_none_refuses_existing_run(tmp_path):
    make_tree(tmp_path / "data_gvc", singers=2, utts=3)
    res = train(options(tmp_path, max_steps=1))
    assert res.step == 1
    assert len((tmp_path / "files" / "train.txt").read_text().splitlines()) == 4
    assert (tmp_path / "run" / "config.yaml").is_file()
    with pytest.raises(ConfigError, match="--resume auto"):
        train(options(tmp_path, resume="none", max_steps=2))
    other = load_config("tiny", overrides={**FAST, "grad.dec_dim": 24})
    with pytest.raises(ConfigError, match=r"another config \(grad\.dec_dim: checkpoint 16 vs config 24"):
        train(options(tmp_path, other, max_steps=2))


def test_init_from_freeze_lr_recorded_and_strict(tree, tmp_path):
    from gvc.export import export_checkpoint

    base, _ = run_losses(options(tree, run="src", max_steps=1))
    exported = export_checkpoint(tree / "src" / "ckpt-00000001.pt", tmp_path / "gvc.pth").path
    shown = io.StringIO()
    res = train(options(tree, tiny_config(fast_epochs=0), run="ft", max_steps=2,
                        init_from=exported, lr=5e-4, freeze=("finetune",),
                        console=Console(file=shown, width=120)))
    table = shown.getvalue()
    assert "initialised from" in table and "(grad-svc-v2), lr 0.0005" in table
    assert re.search(r"encoder\.speaker .*frozen", table) and re.search(r"decoder .* yes", table)
    src = torch.load(exported, weights_only=True)["model"]
    got = load_checkpoint(res.checkpoint)
    for key in src:
        same = torch.equal(src[key], got["model"][key])
        frozen = key.split(".")[0] in ("pit_emb", "spk_emb") or key.startswith(
            ("encoder.prenet.", "encoder.speaker."))
        assert same == frozen, key
    resolved = load_config(tree / "ft" / "config.yaml")
    assert resolved.train.learning_rate == 5e-4 and resolved.train.pretrain == str(exported)
    run = got["gvc"]["run"]
    assert run["freeze"] == ["pit_emb", "spk_emb", "encoder.prenet", "encoder.speaker"]
    assert run["overrides"]["train.learning_rate"] == [1e-3, 5e-4]
    # a model of another size is refused before any step
    with pytest.raises(CheckpointError, match="another model"):
        train(options(tree, load_config("tiny", overrides={**FAST, "grad.dec_dim": 24}),
                      run="ft2", max_steps=1, init_from=exported))
    with pytest.raises(ConfigError, match="--freeze 'nonsense'"):
        train(options(tree, run="ft3", max_steps=1, init_from=exported, freeze=("nonsense",)))


def test_cli_train_with_yaml_config(tree, tmp_path):
    from gvc.cli.train import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # keep `train` a sub-command
    cfg_path = dump_config(tiny_config(), tmp_path / "small.yaml")
    args = ["train", "-c", str(cfg_path), "--data", str(tree / "data_gvc"),
            "--files", str(tree / "files"), "--run-dir", str(tmp_path / "cli"),
            "--max-steps", "2", "--device", "cpu", "--lr", "2e-4"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "max_steps at step 2" in out.output and "gvc export --checkpoint" in out.output
    info = json.loads((tmp_path / "cli" / "run.json").read_text())
    assert info["config_source"] == "small" and info["lr"] == 2e-4
    bad = CliRunner().invoke(app, [*args[:-2], "--precision", "fp16"])
    assert isinstance(bad.exception, ConfigError)


def test_finishes_after_full_epochs_with_epoch_checkpoints(tree):
    cfg = tiny_config(full_epochs=2, save_step=1, keep_last=0)
    losses, res = run_losses(options(tree, cfg, run="full"))
    assert (res.reason, res.step, res.epoch) == ("finished", 6, 2) and len(losses) == 6
    assert [s for s, _ in list_checkpoints(tree / "full")] == [3, 6]  # one per epoch, no duplicate
    again, res = run_losses(options(tree, cfg, run="full"))  # nothing left to do
    assert again == [] and res.reason == "finished" and res.checkpoint.name == "ckpt-00000006.pt"


def test_learning_rate_schedules():
    from gvc.training.optim import lr_at

    t = tiny_config(lr_schedule="cosine", lr_warmup_steps=10, lr_min=1e-5).train
    assert lr_at(t, 1e-3, 0, 0, 110) == pytest.approx(1e-4)  # warm-up
    assert lr_at(t, 1e-3, 10, 0, 110) == pytest.approx(1e-3)
    assert lr_at(t, 1e-3, 60, 0, 110) == pytest.approx((1e-3 + 1e-5) / 2)
    assert lr_at(t, 1e-3, 500, 0, 110) == pytest.approx(1e-5)
    t = tiny_config(lr_schedule="exponential", lr_gamma=0.5).train
    assert lr_at(t, 1e-3, 99, 3, 110) == pytest.approx(1.25e-4)
    assert lr_at(tiny_config().train, 1e-3, 99, 3, 110) == 1e-3  # Grad-SVC: constant
