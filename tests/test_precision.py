"""bf16 autocast on the CPU (a training step and a conversion) and fp16 on the CPU refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gvc.device import Precision, Runtime
from gvc.inference.converter import Converter
from tests.test_exit_codes import gvc
from tests.test_infer import _convert, kit  # noqa: F401 - the module fixture is used below
from tests.test_training import make_tree, one_thread, options, run_losses  # noqa: F401


class AutocastSpy:
    """Records whether each submodule's `forward` ran under CPU autocast, and at which dtype."""

    def __init__(self, module: torch.nn.Module):
        self.seen: list[tuple[bool, torch.dtype]] = []
        for sub in module.modules():
            sub.register_forward_pre_hook(self._hook)

    def _hook(self, module, args) -> None:
        self.seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))


def test_bf16_training_steps_on_cpu(tmp_path):
    make_tree(tmp_path / "data_gvc", singers=2, utts=3)
    fp32, res32 = run_losses(options(tmp_path, run="fp32", max_steps=2))
    bf16, res16 = run_losses(options(tmp_path, run="bf16", max_steps=2, precision="bf16"))
    assert res16.reason == res32.reason == "max_steps" and res16.step == 2
    for a, b in zip(fp32, bf16, strict=True):
        for key, value in b.losses.items():
            assert math.isfinite(value), (key, b.losses)
            # the same run up to bf16 rounding: close, but not bit-identical (autocast was on)
            assert abs(value - a.losses[key]) <= 0.05 * abs(a.losses[key]) + 1e-3, (key, a, b)
    pairs = zip(fp32, bf16, strict=True)
    assert any(b.losses[k] != a.losses[k] for a, b in pairs for k in a.losses)


def test_bf16_conversion_on_cpu_runs_under_autocast(kit):  # noqa: F811
    fp32 = Converter.load(kit.model, hubert_path=kit.hubert, vocoder="griffinlim")
    bf16 = Converter.load(kit.model, hubert_path=kit.hubert, vocoder="griffinlim",
                          runtime=Runtime(torch.device("cpu"), Precision.BF16))
    spy = AutocastSpy(bf16.model)
    a, b = _convert(fp32, kit), _convert(bf16, kit)
    assert spy.seen and all(on and dtype == torch.bfloat16 for on, dtype in spy.seen)
    assert b.mel.dtype == torch.float32 and torch.isfinite(b.mel).all()
    assert np.isfinite(b.audio).all() and b.audio.shape == a.audio.shape
    assert not torch.equal(a.mel, b.mel)  # bf16 rounding happened
    corr = np.corrcoef(a.mel.flatten(), b.mel.flatten())[0, 1]
    assert corr > 0.99, corr


@pytest.mark.parametrize("command", [
    ["infer", "--model", "m.pth", "--spk", "s.spk.npy", "--wave", "a.wav"],
    ["train", "--data", "data_gvc", "--max-steps", "1"],
])
def test_fp16_on_cpu_is_refused_with_the_fix(command, tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    r = gvc(*command, "--device", "cpu", "--precision", "fp16", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "fp16" in r.stdout and ("fp32" in r.stdout or "bf16" in r.stdout), r.stdout
    assert "Traceback" not in r.stdout + r.stderr
