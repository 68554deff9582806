"""The quickstart demo end to end, shrunk: corpus, every prepare step, training, export,
conversion."""

from __future__ import annotations

import soundfile as sf

from gvc.demo import DemoSettings, run_demo


def test_demo_runs_the_whole_pipeline_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no published weights here: the stand-ins must be used and named
    settings = DemoSettings(singers=2, utterances=3, seconds=3.0, train_steps=2, jobs=1)
    result = run_demo(tmp_path / "demo", settings)
    assert result.ok and not result.interrupted
    audio, sr = sf.read(result.converted)
    assert sr == 32000 and 5.5 * sr < len(audio) <= 6.0 * sr  # the 6 s held-out clip, converted
    assert abs(audio).max() > 0.01
    assert result.picture.stat().st_size > 10_000
    assert any("Griffin-Lim" in p for p in result.placeholders)
    assert any("HuBERT" in p for p in result.placeholders)
    # a second run reuses the prepared tree and the finished training
    again = run_demo(tmp_path / "demo", settings)
    assert again.ok and again.converted == result.converted
