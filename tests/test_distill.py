"""Consistency distillation (`gvc distill`) and the consistency decoder.

Families' denoiser views on exact fields, the student at initialisation, the exact boundary
condition, EMA updates, the loss falling, frozen parts, exact resume, multistep sampling, export
and the refusals (exit 2, nothing trained)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from gvc.config import load_config
from gvc.decoders.consistency import intermediate_times
from gvc.decoders.registry import get_sampler
from gvc.export import export_checkpoint, load_exported
from gvc.fileio import save_json
from gvc.models import GradSVC
from gvc.training import train
from gvc.training.checkpoint import list_checkpoints, load_checkpoint
from gvc.training.distill import (
    DistillLossModule,
    DistillObjective,
    DistillOptions,
    _ema_,
    distill,
    student_config,
)
from tests.helpers import run_gvc
from tests.test_training import FAST, make_tree, one_thread, options

__all__ = ["one_thread"]  # the autouse one-thread fixture applies here too

PRESETS = {"score": "tiny", "flow": "tiny-flow", "edm": "tiny-edm"}


def _student(family: str, **kw) -> tuple[GradSVC, GradSVC]:
    """(teacher with random weights, student built from it as `gvc distill` builds it)."""
    torch.manual_seed(0)
    teacher = GradSVC.from_config(load_config(PRESETS[family])).eval()
    opts = DistillOptions(teacher=Path("t.pth"), **kw)
    cfg = student_config(load_config(PRESETS[family]), opts, "t.pth")
    student = GradSVC.from_config(cfg).eval()
    student.load_state_dict(teacher.state_dict())
    return teacher, student


def _inputs(seed: int = 0, frames: int = 16):
    g = torch.Generator().manual_seed(seed)
    mu = -6 + torch.randn(2, 100, frames, generator=g)
    mask = torch.ones(2, 1, frames)
    mask[1, :, frames - 4:] = 0
    return mu * mask, mask, torch.randn(2, 16, generator=g), g


# ---------------------------------------------------------------- the families' denoiser views
def _point_mass_field(family, c: torch.Tensor, mu: torch.Tensor):
    """The exact field of data that is the single point c (state space), per family."""
    from gvc.decoders import schedule as sch

    if family.name == "score":
        def score(x, t):
            a = sch.alpha(family.schedule, t.double()).float()[:, None, None]
            var = (-torch.expm1(-sch.cum_beta(family.schedule, t.double()))).float()
            return -(x - mu - a * (c - mu)) / var[:, None, None]
        return score
    if family.name == "flow":
        k = 1.0 - family.options.sigma_min

        def velocity(x, t):
            tt = t[:, None, None]
            return c - k * (x - tt * c) / (1.0 - k * tt)
        return velocity
    return lambda x, sigma: c.expand_as(x)  # EDM: the denoiser itself


@pytest.mark.parametrize("family", ["score", "flow", "edm"])
def test_denoised_and_ode_step_are_exact_on_a_point_mass(family):
    _, student = _student(family)
    base = student.decoder.base
    c = torch.randn(2, 100, 8, generator=torch.Generator().manual_seed(3))
    mu = torch.randn(2, 100, 8, generator=torch.Generator().manual_seed(4))
    mask, noise = torch.ones(2, 1, 8), torch.randn(2, 100, 8)
    field = _point_mass_field(base, c, mu)
    grid = base.distill_grid(40).float()
    for i in (2, 20, 39):  # (flow's exact velocity is singular at t = 1 with sigma_min 0)
        t_hi, t_lo = grid[i].repeat(2), grid[i - 1].repeat(2)
        x_hi = base.perturb(c, mu, mask, t_hi, noise)
        torch.testing.assert_close(base.denoised(field(x_hi, t_hi), x_hi, t_hi, mu), c,
                                   atol=2e-3, rtol=1e-3)
        # the ODE of a point mass keeps the noise: x_t = perturb(c, t, same noise)
        x_lo = base.ode_step(field, x_hi, t_hi, t_lo, mu)
        torch.testing.assert_close(x_lo, base.perturb(c, mu, mask, t_lo, noise),
                                   atol=2e-3 * float(x_hi.abs().max()), rtol=1e-3)


# ---------------------------------------------------------------- the student
@pytest.mark.parametrize("family", ["score", "flow", "edm"])
def test_student_at_init_is_the_teachers_denoised_estimate_with_exact_boundary(family):
    teacher, student = _student(family, grid_points=12)
    mu, mask, spk, g = _inputs()
    dec = student.decoder
    mun = dec.normalise(mu, mask)
    f = dec.field(mun, mask, spk)
    tfield = teacher.decoder.field(mun, mask, spk)
    x = torch.randn(2, 100, 16, generator=g) * mask
    with torch.no_grad():
        for t in dec.grid[1:].tolist():
            tt = torch.full((2,), t)
            want = teacher.decoder.denoised(tfield(x, tt), x, tt, mun) * mask
            assert torch.equal(f(x, tt), want), t
        assert torch.equal(f(x, torch.full((2,), dec.t_min)), x)  # f(x, t_min) = x exactly
        # one step from the teacher's own z: the teacher's Tweedie estimate at t_max
        z = teacher.decoder.initial_state(mun, mask, 1.0, lambda a: torch.randn_like(a))
        one = student.sample(mu, mask, spk, z=z)
        tmax = torch.full((2,), dec.t_max)
        tweedie = teacher.decoder.denoised(tfield(z, tmax), z, tmax, mun)
        torch.testing.assert_close(one, teacher.decoder.denormalise(tweedie, mask))


def test_multistep_sampling_k1_is_one_step_and_times_are_checked():
    _, student = _student("flow", grid_points=11)
    mu, mask, spk, _ = _inputs()
    dec = student.decoder
    z = torch.randn(2, 100, 16) * mask
    with torch.no_grad():
        one = dec.field(mu, mask, spk)(z, torch.full((2,), dec.t_max))
        k1 = student.sample(mu, mask, spk, z=z, steps=1)
        assert torch.equal(k1, one)
        k2 = student.sample(mu, mask, spk, z=z, steps=2, generator=torch.Generator())
        k2b = student.sample(mu, mask, spk, z=z, steps=2, times=0.5,
                             generator=torch.Generator())
    assert not torch.equal(k2, k1) and torch.equal(k2, k2b)  # default tau: grid[5] = t 0.5
    assert intermediate_times(dec.grid, 3) == pytest.approx([float(dec.grid[7]),
                                                             float(dec.grid[3])])
    assert intermediate_times(dec.grid, 3, "0.2:0.6") == [0.2, 0.6]  # flow: noise at t = 0
    for bad in ("0.6:0.2", "0.5", "1.0:0.5"):
        with pytest.raises(ValueError, match="times"):
            intermediate_times(dec.grid, 3, bad)
    spec = get_sampler("consistency", "consistency")
    assert spec.nfe_for(4) == 4
    with pytest.raises(Exception, match="times"):
        dec.check_sampler_options("consistency", {"times": "2.0"})
    dec.check_sampler_options("consistency", {"times": "0.4:0.8"}, 3)  # the run's step count


def test_ema_update_rule():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    _ema_(a, b, 0.95)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, 0.95 * before[k] + 0.05 * b.state_dict()[k])
    _ema_(a, b, 0.0)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_distillation_loss_falls_on_a_tiny_teacher():
    teacher, student = _student("flow", grid_points=10)
    from gvc.training.data import Batch

    g = torch.Generator().manual_seed(0)
    b, t = 2, 48
    batch = Batch(mel=-6 + torch.randn(b, 100, t, generator=g),
                  vec=torch.randn(b, t, 256, generator=g),
                  pit=torch.full((b, t), 200.0), spk=torch.randn(b, 256, generator=g),
                  lengths=torch.tensor([t, t]), names=["a", "b"])
    objective = DistillObjective(student_config(load_config("tiny-flow"),
                                                DistillOptions(teacher=Path("t")), "t"),
                                 {}, teacher.decoder, Path("t"))
    student.requires_grad_(False)
    student.decoder.estimator.requires_grad_(True)
    objective.attach(student)
    module = DistillLossModule(student, teacher.decoder, objective.target, 32)
    opt = torch.optim.Adam(student.decoder.estimator.parameters(), lr=1e-4)

    def loss() -> torch.Tensor:  # the same segments, times and noise at every step
        return module(batch, True, torch.Generator().manual_seed(5))["consistency"]

    with torch.no_grad():
        start = float(loss())
    for _ in range(10):
        opt.zero_grad()
        loss().backward()
        opt.step()
        _ema_(objective.target, student.decoder.estimator, 0.95)
    with torch.no_grad():
        end = float(loss())
    assert end < 0.5 * start, (start, end)


# ---------------------------------------------------------------- runs on a feature tree
@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory) -> Path:
    """A tiny score teacher trained 2 steps on a generated tree, exported."""
    tmp = tmp_path_factory.mktemp("teacher")
    make_tree(tmp / "data_gvc")
    cfg = load_config("tiny", {**FAST, "train.fast_epochs": 0})
    res = train(options(tmp, cfg, max_steps=2))
    export_checkpoint(res.checkpoint, tmp / "teacher.pth")
    return tmp / "teacher.pth"


def _dopts(teacher: Path, run: str, **kw) -> DistillOptions:
    tmp = teacher.parent
    return DistillOptions(teacher=teacher, data=tmp / "data_gvc", run_dir=tmp / run,
                          train_files=tmp / "files" / "train.txt",
                          valid_files=tmp / "files" / "valid.txt", device="cpu",
                          grid_points=10, **kw)


def test_frozen_parts_unchanged_ema_saved_and_resume_is_exact(teacher_file):
    straight = distill(_dopts(teacher_file, "straight", max_steps=3))
    distill(_dopts(teacher_file, "resumed", max_steps=2))
    resumed = distill(_dopts(teacher_file, "resumed", max_steps=3))
    assert (straight.step, resumed.step) == (3, 3)
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for part in ("target", "export_weights"):
        for key, value in a["objective"][part].items():
            assert torch.equal(value, b["objective"][part][key]), (part, key)
    teacher = torch.load(teacher_file, weights_only=True)["model"]
    changed = [k for k, v in a["model"].items() if not torch.equal(v, teacher[k])]
    assert changed and all(k.startswith("decoder.estimator.") for k in changed)
    assert a["gvc"]["decoder"] == "consistency"


def test_cli_distill_max_steps_0_export_and_infer_settings(teacher_file):
    tmp = teacher_file.parent
    run = tmp / "cli-run"
    res = run_gvc("distill", "--teacher", str(teacher_file), "--data", str(tmp / "data_gvc"),
                  "--files", str(tmp / "files"), "--run-dir", str(run), "--max-steps", "0",
                  "--device", "cpu", "--grid-points", "10", cwd=tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    assert [s for s, _ in list_checkpoints(run)] == [0]
    res = run_gvc("export", "--checkpoint", str(run), "--out", str(tmp / "student.pth"), cwd=tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    student, cfg, meta = load_exported(tmp / "student.pth")
    assert (meta["decoder"], cfg.infer.sampler, cfg.infer.steps) == ("consistency",
                                                                     "consistency", 1)
    assert meta["source"]["weights"].startswith("slow EMA")
    assert cfg.decoder.teacher == "score" and cfg.infer.temperature == 1.015
    teacher, _, _ = load_exported(teacher_file)
    for key, value in teacher.state_dict().items():  # untrained student = teacher weights
        assert torch.equal(value, student.state_dict()[key]), key


def test_refusals_exit_2_before_any_compute(teacher_file, tmp_path):
    tmp = teacher_file.parent
    common = ["--data", str(tmp / "data_gvc"), "--files", str(tmp / "files"), "--device", "cpu"]
    garbage = tmp_path / "bad.pth"
    garbage.write_bytes(b"not a torch file")
    consistency = tmp_path / "student.pth"
    distill(_dopts(teacher_file, "for-refusal", max_steps=0))
    export_checkpoint(list_checkpoints(tmp / "for-refusal")[-1][1], consistency)
    other = tmp_path / "other"
    make_tree(other / "data_gvc")
    meta_file = other / "data_gvc" / "pitch" / ".gvc-feature.json"
    meta = json.loads(meta_file.read_text())
    save_json(meta_file, {**meta, "extractor": "crepe"})
    cases = [
        (["--teacher", str(garbage), *common], "cannot read checkpoint"),
        (["--teacher", str(consistency), *common], "already a consistency model"),
        (["--teacher", str(teacher_file), "--data", str(other / "data_gvc"), "--files",
          str(other / "files"), "--device", "cpu"], "pitch: praat vs crepe"),
    ]
    for i, (args, why) in enumerate(cases):
        run = tmp_path / f"run{i}"
        res = run_gvc("distill", *args, "--run-dir", str(run), "--max-steps", "1", cwd=tmp_path)
        assert res.returncode == 2, res.stdout + res.stderr
        assert why in " ".join(res.stdout.split()), res.stdout
        assert not run.exists()


def test_student_config_keeps_the_teachers_process():
    cfg = load_config("tiny-flow")
    student = student_config(cfg, DistillOptions(teacher=Path("t"), grid_points=25), "t")
    assert student.grad.decoder == "consistency"
    assert student.decoder.teacher == "flow"
    assert student.decoder.teacher_options == dataclasses.asdict(cfg.decoder)
    assert (student.decoder.grid_points, student.train.fast_epochs) == (25, 0)
    model = GradSVC.from_config(student)
    assert model.decoder.base.options == cfg.decoder
    assert set(model.state_dict()) == set(GradSVC.from_config(cfg).state_dict())


def test_gvc_train_refuses_a_consistency_config(tmp_path):
    from gvc.errors import ConfigError

    cfg = student_config(load_config("tiny", FAST), DistillOptions(teacher=Path("t")), "t")
    with pytest.raises(ConfigError, match="gvc distill"):
        train(options(tmp_path, cfg))
    assert not (tmp_path / "run").exists()
