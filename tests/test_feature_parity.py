"""Parity of the audio steps with files made by Grad-SVC's own preprocessing."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

from gvc.audio import load_audio, to_int16_peak
from pitch import format_csv, make_extractor, read_csv
from prepare.mel import compute_mel


def test_resampled_waves_match(fixtures_dir):
    src = fixtures_dir / "features_small" / "input.wav"
    for sr in (16000, 32000):
        ours = to_int16_peak(load_audio(src, sr))
        ref, ref_sr = sf.read(
            fixtures_dir / "features_small" / f"waves-{sr // 1000}k.wav", dtype="int16"
        )
        assert ref_sr == sr and ours.shape == ref.shape
        assert np.abs(ours.astype(np.int32) - ref).max() <= 2


def test_praat_pitch_matches(fixtures_dir):
    wav = load_audio(fixtures_dir / "features_small" / "waves-16k.wav", 16000)
    ours = make_extractor("praat").extract(wav)
    ref = np.load(fixtures_dir / "features_small" / "utt.pit.npy")
    assert ours.dtype == np.float64 and ours.shape == ref.shape
    assert np.mean(np.abs(ours - ref) <= 0.2) >= 0.99
    assert (ours[:6] == 0).all() and (ours[-6:] == 0).all()


def test_mel_matches(fixtures_dir):
    mel, _ = compute_mel(fixtures_dir / "features_small" / "waves-32k.wav")
    ref = torch.load(fixtures_dir / "features_small" / "utt.mel.pt")
    assert mel.dtype == torch.float32 and mel.shape == ref.shape
    assert (mel - ref).abs().max().item() <= 1e-3


def test_inference_csv_matches(fixtures_dir, tmp_path):
    wav = load_audio(fixtures_dir / "features_small" / "input.wav", 16000)
    f0 = make_extractor("praat", decimals=None).extract(wav)
    ref_text = (fixtures_dir / "features_small" / "inference_pitch.csv").read_text()
    assert format_csv(f0) == ref_text
    ref_path = tmp_path / "ref.csv"
    ref_path.write_text(ref_text)
    assert np.array_equal(read_csv(ref_path), np.trunc(f0))
