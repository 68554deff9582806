"""DDP: the ranks' weights stay identical, and equal a single process with the same global batch.

The losses the loop records are averaged across ranks before anyone sees them, so they cannot
show a missing gradient sync; the weights can. Everything here goes through `gvc.training.train`
and torch's own hooks (an optimizer step hook reads the weights, a forward hook switches dropout
off so that the per-rank random streams do not matter).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tests.test_training import make_tree, one_thread, options, tiny_config  # noqa: F401

# 4 training items of exactly max_frames (no random crop), 1 batch of 4 per epoch in one process
# and 1 batch of 2 per rank on 2 ranks; all 3 steps stay in the encoder warm-up, whose losses use
# no random draw once dropout is off and the unit/mu perturbations are 0.
STEPS = 3
HANG_S = 240  # a rank still running after this long is stuck: it dumps its stacks and exits
CONFIG = dict(segment_frames=32, min_frames=40, max_frames=64, fast_epochs=STEPS, full_epochs=10,
              vec_noise_std=0.0, mu_noise_std=0.0, checkpoint_every=1000)

HOOKS = '''
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

WEIGHTS = []


def _no_dropout(module, args):
    if isinstance(module, torch.nn.Dropout):
        module.p = 0.0


def _keep_weights(optimizer, args, kwargs):
    WEIGHTS[:] = [p.detach().clone() for g in optimizer.param_groups for p in g["params"]]


def install():
    """Dropout off everywhere; WEIGHTS holds the weights after the latest optimizer step."""
    return [torch.nn.modules.module.register_module_forward_pre_hook(_no_dropout),
            register_optimizer_step_post_hook(_keep_weights)]
'''


def _single(tmp: Path, run: str, batch: int, valid: int) -> list[torch.Tensor]:
    """Weights after STEPS steps of one process (hooks installed only for this run)."""
    sys.path.insert(0, str(tmp))
    try:
        import ddp_hooks

        handles = ddp_hooks.install()
        try:
            cfg = tiny_config(**{**CONFIG, "batch_size": batch})
            from gvc.training import train

            res = train(options(tmp, cfg, run=run, max_steps=STEPS, valid_count=valid,
                                train_files=tmp / f"files-{run}" / "train.txt",
                                valid_files=tmp / f"files-{run}" / "valid.txt"))
            assert res.step == STEPS
            return list(ddp_hooks.WEIGHTS)
        finally:
            for h in handles:
                h.remove()
    finally:
        sys.path.remove(str(tmp))


def test_ddp_weights_equal_across_ranks_and_equal_one_process(tmp_path):
    make_tree(tmp_path / "data_gvc", singers=2, utts=3, seconds=0.64)  # 6 items: 4 train, 2 valid
    (tmp_path / "ddp_hooks.py").write_text(HOOKS)
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent(f"""
        import faulthandler, os, sys
        from pathlib import Path
        import torch
        faulthandler.dump_traceback_later({HANG_S}, exit=True)  # a hung collective shows where
        sys.path[:0] = [{str(tmp_path)!r}, {str(Path(__file__).parent)!r}]
        import ddp_hooks
        from test_training import options, tiny_config
        from gvc.training import train
        ddp_hooks.install()
        cfg = tiny_config(**{{**{CONFIG!r}, "batch_size": 2}})
        tmp = Path({str(tmp_path)!r})
        res = train(options(tmp, cfg, run="ddp", max_steps={STEPS}, valid_count=2,
                            train_files=tmp / "files-ddp" / "train.txt",
                            valid_files=tmp / "files-ddp" / "valid.txt"))
        assert res.step == {STEPS}, res
        torch.save(ddp_hooks.WEIGHTS, tmp / f"rank{{os.environ['RANK']}}.pt")
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc_per_node", "2", str(worker)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=HANG_S + 60)
    except subprocess.TimeoutExpired:  # torchrun and both ranks, not just the launcher
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"torchrun did not finish in {HANG_S + 60} s:\n{err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    assert rank0 and len(rank0) == len(rank1)
    # the ranks trained on different halves of each batch, yet hold the same weights
    assert all(torch.equal(a, b) for a, b in zip(rank0, rank1, strict=True))

    whole = _single(tmp_path, "one", batch=4, valid=2)  # the same global batch of 4
    half = _single(tmp_path, "half", batch=2, valid=2)  # what a rank alone would do
    assert len(whole) == len(rank0)

    def distance(xs: list[torch.Tensor], ys: list[torch.Tensor]) -> float:
        return max(float((x - y).abs().max()) for x, y in zip(xs, ys, strict=True))

    matched, unsynced = distance(rank0, whole), distance(half, whole)
    print("ddp vs one process", matched, "one rank's batches alone", unsynced)
    assert unsynced > 1e-4  # the precondition: a missing sync would be visible
    assert matched <= 0.01 * unsynced, (matched, unsynced)
