"""DiffWave: network shapes, the paper's schedules, seeded chunked sampling, the vocoder file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gvc.errors import CheckpointError, ConfigError
from vocoder.diffwave.config import (
    PRESETS,
    DiffWaveConfig,
    VocoderConfig,
    load_vocoder_config,
    vocoder_config_from_dict,
)
from vocoder.diffwave.model import DiffWave
from vocoder.diffwave.schedule import (
    FAST_BETAS,
    diffusion_loss,
    fast_schedule,
    reverse,
    sampling_schedule,
    training_schedule,
)
from vocoder.diffwave.vocoder import DiffWaveVocoder, save_diffwave
from vocoder.registry import load_vocoder

TINY = DiffWaveConfig(residual_layers=3, residual_channels=8, dilation_cycle=3)


pytestmark = pytest.mark.usefixtures("one_thread")


def _trained_like(seed: int = 0) -> DiffWave:
    """A tiny network with a non-zero output layer (a fresh one predicts exactly 0 noise)."""
    torch.manual_seed(seed)
    model = DiffWave(TINY)
    torch.nn.init.normal_(model.output_proj.weight, std=0.1)
    return model.eval()


def _mel(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 100, frames, generator=torch.Generator().manual_seed(seed)) - 5.0


# ---------------------------------------------------------------- network


def test_output_length_is_frames_times_hop():
    model = _trained_like()
    for frames in (1, 7, 23):
        mel = _mel(frames)
        cond = model.condition(mel)
        assert cond.shape == (1, 100, frames * 320)
        out = model(torch.zeros(1, frames * 320), torch.tensor([3.0]), mel)
        assert out.shape == (1, frames * 320)
    voc = DiffWaveVocoder(model, VocoderConfig().mel)
    audio = voc(_mel(13)[0], generator=torch.Generator().manual_seed(0))
    assert audio.shape == (13 * 320,) and audio.abs().max() <= 1.0


def test_amphion_size_and_dilations():
    model = DiffWave(DiffWaveConfig())
    assert len(model.layers) == 30
    assert [layer.dilated.dilation[0] for layer in model.layers[:11]] == \
        [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1]
    assert model.layers[0].dilated.in_channels == 64
    assert model.receptive_field == 3 * 1023
    assert torch.count_nonzero(model.output_proj.weight) == 0  # zero init (the paper's)


def test_loss_falls_when_overfitting_one_clip():
    torch.manual_seed(0)
    model = DiffWave(TINY)
    t = torch.arange(320 * 8) / 32000
    audio = (0.5 * torch.sin(2 * math.pi * 220 * t))[None]
    mel = _mel(8)
    sched = training_schedule(TINY)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_at(seed: int) -> torch.Tensor:  # the same t and noise at every step
        return diffusion_loss(model, audio, mel, sched, torch.Generator().manual_seed(seed))

    first = loss_at(1).item()
    for _ in range(60):
        opt.zero_grad()
        loss_at(1).backward()
        opt.step()
    assert first == pytest.approx(1.0, abs=0.1)  # zero-initialised output: loss = E[eps^2]
    assert loss_at(1).item() < 0.5 * first


# ---------------------------------------------------------------- schedules


def test_training_schedule_is_linear_50_steps():
    s = training_schedule(DiffWaveConfig())
    assert len(s) == 50
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.05)
    assert torch.allclose(s.betas.diff(), torch.full((49,), (0.05 - 1e-4) / 49,
                                                     dtype=torch.float64))
    assert torch.allclose(s.alpha_bars, torch.cumprod(1 - s.betas, 0))


def test_fast_schedule_matches_the_paper():
    train = training_schedule(DiffWaveConfig())
    fast = fast_schedule(train)
    assert FAST_BETAS == (1e-4, 1e-3, 1e-2, 5e-2, 0.2, 0.5)
    assert fast.betas.tolist() == pytest.approx(list(FAST_BETAS), rel=1e-12)
    eta = torch.cumprod(1 - torch.tensor(FAST_BETAS, dtype=torch.float64), 0)
    assert torch.allclose(fast.alpha_bars, eta)
    # the first inference step equals training step 0 exactly
    assert fast.net_steps[0].item() == pytest.approx(0.0, abs=1e-12)
    # every aligned step interpolates sqrt(alpha_bar) of the training schedule linearly
    root = train.alpha_bars.sqrt()
    for s, step in enumerate(fast.net_steps.tolist()):
        t = int(step)
        frac = step - t
        nxt = root[min(t + 1, len(root) - 1)]
        assert (1 - frac) * root[t] + frac * nxt == pytest.approx(eta[s].sqrt().item(), abs=1e-12)
    assert fast.net_steps.diff().gt(0).all() and fast.net_steps[-1] < 49
    # sigma_s = sqrt((1 - eta_{s-1}) / (1 - eta_s) * beta_s), and none after the last step
    sig = fast.sigmas()
    assert sig[0].item() == 0.0
    assert sig[1].item() == pytest.approx(math.sqrt((1 - 0.9999) / (1 - 0.9999 * 0.999) * 1e-3))
    assert sig[5].item() == pytest.approx(
        math.sqrt((1 - eta[4].item()) / (1 - eta[5].item()) * 0.5))


@pytest.mark.parametrize("steps", [6, 50])
def test_reverse_process_recovers_the_signal_with_the_true_noise(steps):
    """With eps_theta = the true noise of x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s) eps,
    Algorithm 2's last update returns x0 exactly, whatever the noise drawn on the way."""
    sched = sampling_schedule(DiffWaveConfig(), steps)
    x0 = 0.5 * torch.sin(torch.arange(640) / 7.0)[None]

    def oracle(x, t):  # the schedule entry whose network step was passed
        abar = sched.alpha_bars[(sched.net_steps - float(t[0])).abs().argmin()].float()
        return (x - abar.sqrt() * x0) / (1 - abar).sqrt()

    gen = torch.Generator().manual_seed(0)
    out = reverse(oracle, sched, (1, 640), lambda k, like: torch.randn(like.shape, generator=gen),
                  torch.device("cpu"))
    assert (out - x0).abs().max() < 1e-4


def test_sampling_schedule_choices():
    cfg = DiffWaveConfig()
    assert len(sampling_schedule(cfg, 6)) == 6 and len(sampling_schedule(cfg, 50)) == 50
    with pytest.raises(ConfigError, match="6 .* or 50"):
        sampling_schedule(cfg, 20)


# ---------------------------------------------------------------- sampling


def test_seeded_and_chunked_close_to_whole():
    voc = DiffWaveVocoder(_trained_like(), VocoderConfig().mel)
    mel = _mel(90, seed=2)
    a = voc(mel, generator=torch.Generator().manual_seed(5), chunk_frames=None)
    b = voc(mel, generator=torch.Generator().manual_seed(5), chunk_frames=None)
    c = voc(mel, generator=torch.Generator().manual_seed(6), chunk_frames=None)
    assert torch.equal(a, b) and not torch.equal(a, c)
    chunked = voc(mel, generator=torch.Generator().manual_seed(5), chunk_frames=30)
    blind = voc(mel, generator=torch.Generator().manual_seed(5), chunk_frames=30,
                overlap_frames=0)
    assert chunked.shape == a.shape
    # noise is indexed by absolute sample, so the windows draw what the whole pass drew, and
    # 40 frames of context cover this tiny network's 6-step receptive field (6 x 7 samples):
    # chunking is exact to float error; without context the cuts show
    assert (chunked - a).abs().max() < 1e-5
    assert (blind - a).abs().max() > 1e-3  # measured 2e-3 at the cuts
    assert torch.corrcoef(torch.stack([c[0], a[0]]))[0, 1] < 0.5


def test_windows_bound_memory(monkeypatch):
    voc = DiffWaveVocoder(_trained_like(), VocoderConfig().mel)
    seen = []
    render = voc.render

    def spy(mel, *args):
        seen.append(mel.shape[-1])
        return render(mel, *args)

    monkeypatch.setattr(voc, "render", spy)
    voc(_mel(250), generator=torch.Generator().manual_seed(0), chunk_frames=60, overlap_frames=10)
    assert len(seen) == 5 and max(seen) <= 60 + 2 * 10


def test_steps_choice():
    voc = DiffWaveVocoder(_trained_like(), VocoderConfig().mel)
    assert voc.steps == 6
    voc.set_steps(50)
    assert len(voc.schedule) == 50
    with pytest.raises(ConfigError):
        voc.set_steps(7)


# ---------------------------------------------------------------- file and config


def test_file_round_trip(tmp_path: Path):
    model = _trained_like()
    cfg = VocoderConfig(model=TINY)
    path = save_diffwave(tmp_path / "voc.pth", model, cfg, {"kind": "test"})
    voc = load_vocoder("diffwave", ckpt=path)
    assert isinstance(voc, DiffWaveVocoder) and voc.model.cfg == TINY
    mel = _mel(20)
    want = DiffWaveVocoder(model, cfg.mel)(mel, generator=torch.Generator().manual_seed(1))
    assert torch.equal(voc(mel, generator=torch.Generator().manual_seed(1)), want)


def test_file_refusals(tmp_path: Path):
    with pytest.raises(CheckpointError, match="--vocoder-ckpt"):
        load_vocoder("diffwave")
    with pytest.raises(CheckpointError, match="not found"):
        load_vocoder("diffwave", ckpt=tmp_path / "absent.pth")
    torch.save({"model": {}}, tmp_path / "acoustic.pth")
    with pytest.raises(CheckpointError, match="not a DiffWave vocoder file"):
        load_vocoder("diffwave", ckpt=tmp_path / "acoustic.pth")
    path = save_diffwave(tmp_path / "v.pth", _trained_like(), VocoderConfig(model=TINY), {})
    data = torch.load(path, weights_only=True)
    data["gvc"]["architecture"]["residual_channels"] = 16
    torch.save(data, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="do not match"):
        load_vocoder("diffwave", ckpt=tmp_path / "bad.pth")


def test_config_presets_and_strictness(tmp_path: Path):
    amphion = load_vocoder_config("diffwave").model
    assert (amphion.residual_layers, amphion.residual_channels, amphion.dilation_cycle) == \
        (30, 64, 10)
    assert (amphion.train_steps, amphion.beta_start, amphion.beta_end) == (50, 1e-4, 0.05)
    assert set(PRESETS) == {"diffwave", "tiny-diffwave"}
    with pytest.raises(ConfigError, match="unknown key 'model.layers'"):
        vocoder_config_from_dict({"model": {"layers": 3}})
    with pytest.raises(ConfigError, match="upsample_factors"):
        vocoder_config_from_dict({"model": {"upsample_factors": [16, 16]}})
    with pytest.raises(ConfigError, match="neither"):
        load_vocoder_config(tmp_path / "absent.yaml")


# ---------------------------------------------------------------- training parts


def _corpus(root: Path, seconds=(0.8, 0.3, 1.0)) -> Path:
    """data_gvc/ with waves-32k and mel written as gvc resample / extract-mel write them."""
    from gvc.audio import to_int16_peak, write_wav_int16
    from gvc.synthetic_singing import sing, singer_voice
    from prepare.mel import write_mel

    for i, sec in enumerate(seconds):
        wave = root / "waves-32k" / f"s{i % 2}" / f"u{i}.wav"
        wave.parent.mkdir(parents=True, exist_ok=True)
        write_wav_int16(wave, to_int16_peak(sing(singer_voice(i), sec, 32000, seed=i)), 32000)
        write_mel(wave, root / "mel" / f"s{i % 2}" / f"u{i}.mel.pt")
    return root


def test_segments_align_audio_with_mel(tmp_path: Path):
    from vocoder import mel_spectrogram
    from vocoder.diffwave.training import (
        SegmentDataset,
        collate_segments,
        diffwave_losses,
        scan_items,
    )

    scan = scan_items(_corpus(tmp_path / "data_gvc"), segment_frames=40)
    assert [it.name for it in scan.items] == ["s0/u0", "s0/u2"] and scan.too_short == 1
    data = SegmentDataset(scan.items, 40, seed=3)
    audio, mel, name = data[(1, 5)]
    assert audio.shape == (40 * 320,) and mel.shape == (100, 40) and name == "s0/u2"
    again, _, _ = data[(1, 5)]
    other, _, _ = data[(1, 6)]
    assert torch.equal(audio, again) and not torch.equal(audio, other)  # crop per (epoch, item)
    # the audio segment is the signal of the mel segment (edges differ by the reflect padding)
    assert (mel_spectrogram(audio)[:, 3:-3] - mel[:, 3:-3]).abs().max() < 1e-3
    batch = collate_segments([data[(0, 0)], data[(1, 0)]])
    losses = diffwave_losses(DiffWave(TINY), batch, torch.Generator().manual_seed(0))
    assert set(losses) == {"diff"} and losses["diff"].requires_grad


def _index(data: Path) -> Path:
    files = data.parent / "files"
    files.mkdir(exist_ok=True)
    line = "{d}/mel/{s}/{u}.mel.pt|x.vec.npy|x.pit.npy|x.spk.npy\n"
    (files / "train.txt").write_text(line.format(d=data, s="s0", u="u0")
                                     + line.format(d=data, s="s0", u="u2"))
    (files / "valid.txt").write_text(line.format(d=data, s="s1", u="u1"))
    return files


def _train(data: Path, files: Path, run_dir: Path, steps: int):
    from gvc.training import TrainOptions
    from vocoder.diffwave.config import vocoder_config_from_dict
    from vocoder.diffwave.train import train_vocoder

    cfg = vocoder_config_from_dict({
        "model": {"residual_layers": 3, "residual_channels": 8, "dilation_cycle": 3},
        "train": {"batch_size": 2, "segment_frames": 20, "checkpoint_every": 2, "keep_last": 2,
                  "valid_every": 3, "valid_items": 1, "num_workers": 0, "max_steps": 50}})
    opts = TrainOptions(config=cfg, config_name="t", data=data, run_dir=run_dir,
                        train_files=files / "train.txt", valid_files=files / "valid.txt",
                        max_steps=steps, device="cpu", log_every=1)
    return train_vocoder(opts)


def test_train_resume_is_exact_and_export_loads(tmp_path: Path):
    import json

    from gvc.training.checkpoint import list_checkpoints
    from tests.helpers import run_gvc

    data = _corpus(tmp_path / "data_gvc", seconds=(0.8, 0.5, 1.0))
    files = _index(data)
    straight = _train(data, files, tmp_path / "a", 5)
    _train(data, files, tmp_path / "b", 3)
    resumed = _train(data, files, tmp_path / "b", 5)
    assert straight.step == resumed.step == 5 and straight.reason == "max_steps"
    a = torch.load(straight.checkpoint, weights_only=True)
    b = torch.load(resumed.checkpoint, weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [s for s, _ in list_checkpoints(tmp_path / "b")] == [4, 5]  # keep_last 2
    records = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").open()]
    valid = [r["validation"] for r in records if "validation" in r]
    assert valid and {"diff", "mel_l1"} <= set(valid[0])
    assert any(p.name.startswith("events.") for p in (tmp_path / "a").iterdir())
    r = run_gvc("export", "--checkpoint", str(tmp_path / "b"), "--out", "voc.pth", cwd=tmp_path)
    assert r.returncode == 0 and "diffwave vocoder, 3 layers x 8 channels" in r.stdout, r.stdout
    voc = load_vocoder("diffwave", ckpt=tmp_path / "voc.pth")
    assert all(torch.equal(voc.model.state_dict()[k], b["model"][k]) for k in b["model"])
    # the command line: a YAML config, then refusing to resume it with another architecture
    (tmp_path / "dw.yaml").write_text(
        "model: {residual_layers: 2, residual_channels: 8, dilation_cycle: 2}\n"
        "train: {batch_size: 2, segment_frames: 20, num_workers: 0, valid_every: 100}\n")
    args = ("train-vocoder", "-c", "dw.yaml", "--data", str(data), "--files", str(files),
            "--run-dir", "c", "--max-steps", "1", "--device", "cpu")
    r = run_gvc(*args, cwd=tmp_path)
    assert r.returncode == 0 and "max_steps at step 1" in r.stdout, r.stdout + r.stderr
    (tmp_path / "dw.yaml").write_text("model: {residual_layers: 3}\n")
    r = run_gvc(*args, cwd=tmp_path)
    assert r.returncode == 2 and "trained with another architecture" in r.stdout, r.stdout
