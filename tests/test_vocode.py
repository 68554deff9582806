"""The vocoder registry (capabilities, chunking in one place), `gvc vocode` copy-synthesis in its
three input modes, and `--vocoder diffwave` in `gvc infer` with its mel check."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from gvc.errors import ConfigError
from gvc.inference import Converter
from gvc.inference.synthesis import run_vocoder
from gvc.synthetic_singing import sing, singer_voice
from prepare.engine import run_task
from tests.helpers import run_gvc
from tests.test_infer import _export_tiny
from vocoder import mel_spectrogram
from vocoder.base import Capabilities, Chunking, Vocoder
from vocoder.copysynth import VocoderChoice, VocodeTask, plan_mels
from vocoder.diffwave.config import vocoder_config_from_dict
from vocoder.diffwave.model import DiffWave
from vocoder.diffwave.vocoder import save_diffwave
from vocoder.registry import VocoderSpec, get_spec, load_vocoder, names, register

TINY = {"residual_layers": 2, "residual_channels": 8, "dilation_cycle": 2}


pytestmark = pytest.mark.usefixtures("one_thread")


class RampVocoder(Vocoder):
    """A test vocoder: each window is a ramp of its absolute sample index (so seams would show)."""

    name = "ramp-test"
    capabilities = Capabilities(chunking=Chunking(frames=10, gpu_frames=10, context=2,
                                                  crossfade=0))
    windows: list[int] = []

    def render(self, mel, f0, lo, song, generator):
        self.windows.append(mel.shape[-1])
        start = lo * self.hop
        idx = torch.arange(start, start + mel.shape[-1] * self.hop, dtype=torch.float32)
        return (idx / 1e5).expand(mel.shape[0], -1).clone()


def _load_ramp(ckpt, config, runtime):
    return RampVocoder()


def test_a_vocoder_registered_in_a_test_is_usable_by_name(tmp_path: Path):
    register(VocoderSpec("ramp-test", RampVocoder, _load_ramp, "test"), replace=True)
    assert "ramp-test" in names() and get_spec("RAMP-test").capabilities.chunking.frames == 10
    voc = load_vocoder("ramp-test")
    audio = run_vocoder(voc, torch.zeros(100, 35), np.zeros(35), seed=0)
    assert audio.shape == (35 * 320,)
    np.testing.assert_allclose(audio, np.arange(35 * 320) / 1e5, atol=1e-6)  # seamless
    assert max(voc.windows) <= 10 + 2 * 2  # chunked by its declared plan
    # and through copy-synthesis, by name only
    mel = tmp_path / "x.mel.pt"
    torch.save(torch.zeros(100, 12), mel)
    sources, jobs = plan_mels(mel, None, None)
    report = run_task(VocodeTask(VocoderChoice("ramp-test"), jobs, False, True), sources)
    assert report.done == 1 and sf.info(str(tmp_path / "x.wav")).frames == 12 * 320
    with pytest.raises(ConfigError, match="already registered"):
        register(VocoderSpec("griffinlim", RampVocoder, _load_ramp, "clash"))
    with pytest.raises(ConfigError, match="unknown vocoder 'hifigan'.*diffwave"):
        load_vocoder("hifigan")


def test_capabilities_replace_name_checks():
    assert get_spec("nsf-bigvgan").capabilities.excitation
    assert get_spec("nsf-bigvgan").capabilities.needs_f0
    assert not get_spec("diffwave").capabilities.excitation
    assert get_spec("diffwave").capabilities.weights
    assert get_spec("griffinlim").capabilities.precisions == ("fp32",)
    # the precision a vocoder runs in follows its declared capabilities for the device
    from gvc.device import Precision, Runtime
    from vocoder.registry import runtime_for
    bf16 = Runtime(torch.device("cpu"), Precision.BF16)
    assert runtime_for(get_spec("nsf-bigvgan"), bf16).precision is Precision.FP32  # slow on CPU
    assert runtime_for(get_spec("diffwave"), bf16).precision is Precision.BF16
    meta = torch.device("meta")  # a non-CPU device: the general list applies
    assert runtime_for(get_spec("nsf-bigvgan"), Runtime(meta, Precision.BF16)).precision \
        is Precision.BF16
    with pytest.raises(ConfigError, match="no NSF excitation"):
        load_vocoder("griffinlim").excitation(torch.zeros(5))
    with pytest.raises(ConfigError, match="not iterative"):
        load_vocoder("griffinlim").set_steps(6)


def _diffwave_file(path: Path, mel: dict | None = None) -> Path:
    cfg = vocoder_config_from_dict({"model": TINY, "mel": mel or {}})
    torch.manual_seed(0)
    model = DiffWave(cfg.model, cfg.mel.n_mels)
    torch.nn.init.normal_(model.output_proj.weight, std=0.05)
    return save_diffwave(path, model, cfg, {"kind": "test"})


def test_infer_with_diffwave_and_mel_mismatch_refused(tmp_path: Path):
    import hubert

    model = _export_tiny(tmp_path / "gvc.pth")
    hub = hubert.save_random_checkpoint(tmp_path / "hubert.pt", num_layers=1)
    good = _diffwave_file(tmp_path / "dw.pth")
    conv = Converter.load(model, hubert_path=hub, vocoder="diffwave", vocoder_ckpt=good,
                          vocoder_steps=6)
    assert conv.vocoder.steps == 6
    song = tmp_path / "a.wav"
    sf.write(str(song), sing(singer_voice(0), 1.0, 32000, seed=1), 32000)
    out = conv.convert(song, np.zeros(256, np.float32), decode=conv.decode_settings("euler", 2))
    assert out.audio.shape == (out.mel.shape[-1] * 320,) and np.isfinite(out.audio).all()
    other = _diffwave_file(tmp_path / "dw8k.pth", mel={"fmax": 8000.0})
    with pytest.raises(ConfigError, match="fmax 8000.0 but the model's mel uses 16000.0"):
        Converter.load(model, hubert_path=hub, vocoder="diffwave", vocoder_ckpt=other)
    with pytest.raises(ConfigError, match="--vocoder-steps 7"):
        Converter.load(model, hubert_path=hub, vocoder="diffwave", vocoder_ckpt=good,
                       vocoder_steps=7)


def _tree(root: Path) -> Path:
    """data_gvc/ with 3 mels of 2 singers (one with NaN) and their pitch."""
    for i, (singer, utt) in enumerate([("alto", "a1"), ("alto", "a2"), ("bass", "b1")]):
        audio = sing(singer_voice(i), 0.5, 32000, seed=i)
        mel = mel_spectrogram(torch.from_numpy(audio[: len(audio) // 320 * 320]))
        if utt == "a2":
            mel[3, 4] = float("nan")
        (root / "mel" / singer).mkdir(parents=True, exist_ok=True)
        torch.save(mel, root / "mel" / singer / f"{utt}.mel.pt")
        (root / "pitch" / singer).mkdir(parents=True, exist_ok=True)
        np.save(root / "pitch" / singer / f"{utt}.pit.npy", np.full(mel.shape[-1] + 3, 220.0))
    (root / "files").mkdir()
    (root / "files" / "valid.txt").write_text(
        f"{root}/mel/bass/b1.mel.pt|x|{root}/pitch/bass/b1.pit.npy|y\n")
    return root


def test_vocode_cli_three_modes(tmp_path: Path):
    data = _tree(tmp_path / "data_gvc")
    dw = _diffwave_file(tmp_path / "dw.pth")
    # a data tree: the NaN mel fails alone (exit 1, one line naming it, no output); pitch is
    # read for the NSF-free vocoder too without harm
    r = run_gvc("vocode", "--vocoder", "diffwave", "--vocoder-ckpt", str(dw), "--data",
                str(data), "--out", "out", "-j", "2", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "a2.mel.pt: the mel contains NaN or Inf values; recompute it with gvc extract-mel" \
        in r.stdout.replace("\n", "")
    assert sorted(p.relative_to(tmp_path / "out").as_posix()
                  for p in (tmp_path / "out").rglob("*")) == ["alto", "alto/a1.wav", "bass",
                                                             "bass/b1.wav"]
    frames = torch.load(data / "mel" / "alto" / "a1.mel.pt").shape[-1]
    assert sf.info(str(tmp_path / "out" / "alto" / "a1.wav")).frames == frames * 320
    # an index selects items; finished outputs are skipped
    r = run_gvc("vocode", "--vocoder", "griffinlim", "--data", str(data), "--files",
                str(data / "files" / "valid.txt"), "--out", "out", cwd=tmp_path)
    assert r.returncode == 0 and re.search(r"│\s+0 │\s+1 │\s+0 │", r.stdout), r.stdout
    # stored mel with the wrong band count, and an audio file resynthesised
    torch.save(torch.zeros(80, 10), tmp_path / "m80.mel.pt")
    r = run_gvc("vocode", "--vocoder", "griffinlim", "--mel", "m80.mel.pt", cwd=tmp_path)
    assert r.returncode == 1 and "m80.mel.pt: the mel has 80 bands, the vocoder needs 100" \
        in r.stdout.replace("\n", ""), r.stdout
    assert not (tmp_path / "m80.wav").exists()
    sf.write(str(tmp_path / "song.wav"), sing(singer_voice(1), 0.6, 44100, seed=3), 44100)
    r = run_gvc("vocode", "--vocoder", "griffinlim", "--wave", "song.wav", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "song.vocoded.wav"
    assert sf.info(str(out)).samplerate == 32000 and sf.info(str(out)).frames == 60 * 320
    # usage errors exit 2 before any work
    r = run_gvc("vocode", "--vocoder", "griffinlim", "--mel", "m80.mel.pt", "--wave",
                "song.wav", cwd=tmp_path)
    assert r.returncode == 2 and "exactly one input" in r.stdout
    r = run_gvc("vocode", "--vocoder", "diffwave", "--wave", "song.wav", cwd=tmp_path)
    assert r.returncode == 2 and "--vocoder-ckpt" in r.stdout
