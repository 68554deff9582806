"""Every F0 method on one file: same grid, sensible values; the pitch CSV format."""

from __future__ import annotations

import numpy as np
import pytest

import pitch
from gvc.errors import GvcError
from pitch import F0Method, format_csv, frame_count, make_extractor, read_csv, write_csv
from tests.helpers import harmonic


def test_pitch_package_is_ours():
    # PyPI has an unrelated `pitch` distribution; make sure we import this project's package.
    assert pitch.__file__.endswith("pitch/__init__.py") and hasattr(pitch, "F0Method")


def test_frame_count_matches_gradsvc():
    # 2.5 / 3.0 / 10.0 s -> 253 / 303 / 1003 frames (Grad-SVC `prepare/preprocess_f0.py`:
    # 10 ms Praat frames plus 6 pad frames per side)
    assert [frame_count(int(s * 16000)) for s in (2.5, 3.0, 10.0)] == [253, 303, 1003]
    assert frame_count(100) == 12


@pytest.mark.parametrize("method", ["praat", "harvest", "dio", "crepe-tiny"])
def test_every_method_same_grid(method):
    hz = 220.0
    wav = harmonic(1.5, 16000, hz)
    f0 = make_extractor(method).extract(wav)
    assert f0.dtype == np.float64 and f0.shape == (frame_count(len(wav)),)
    voiced = f0[f0 > 0]
    assert len(voiced) > 0.7 * (len(f0) - 12)
    assert abs(np.median(voiced) - hz) < 3.0
    assert f0[0] == 0  # frame 0 is centred before the start of the audio (-10 ms)


def test_silence_is_unvoiced():
    f0 = make_extractor("praat").extract(np.zeros(16000, np.float32))
    assert (f0 == 0).all()


def test_all_methods_are_constructible():
    for m in F0Method:
        assert make_extractor(m).describe()["extractor"] == m.value


def test_csv_round_trip(tmp_path):
    f0 = np.array([0.0, 0.0, 220.7, 221.2, 0.0] + [110.0] * 200)
    write_csv(tmp_path / "a.csv", f0)
    lines = (tmp_path / "a.csv").read_text().splitlines()
    assert lines[2] == "0m 0s  20,220" and lines[104] == "0m 1s  40,110"
    assert np.array_equal(read_csv(tmp_path / "a.csv"), np.trunc(f0))
    (tmp_path / "b.csv").write_text(format_csv(f0, decimals=1))
    assert np.allclose(read_csv(tmp_path / "b.csv"), f0)
    (tmp_path / "c.csv").write_text("0m 0s   0,220.5\n0m 0s  10,abc\n")
    with pytest.raises(GvcError, match=r"c.csv:2"):
        read_csv(tmp_path / "c.csv")
