"""`gvc eval`: the scores on known inputs, pairing, the CSV/JSON schemas and failure handling."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gvc.audio import resample
from gvc.cli import app
from gvc.errors import ConfigError
from gvc.evaluation import metrics, pair_files
from gvc.evaluation.scoring import CONVERSION_SCORES, RECONSTRUCTION_SCORES
from gvc.synthetic_singing import SingerVoice, sing, singer_voice
from pitch.base import analysis_frames, frame_count
from tests.helpers import harmonic, run_gvc, write

SR = 32000


def _invoke(*args: object):
    return CliRunner().invoke(app, ["eval", *map(str, args)])


def _16k(audio: np.ndarray) -> np.ndarray:
    return resample(audio, SR, 16000)


def _song(singer: int, seed: int, seconds: float = 2.5) -> np.ndarray:
    return sing(singer_voice(singer), seconds, sr=SR, seed=seed)


# Two synthetic singers far apart in range, formants and spectral tilt: the generator's random
# singers can be close enough for a d-vector of one phrase to confuse them.
LOW_DARK = SingerVoice(base_hz=110.0, formant_scale=0.85, vibrato_hz=5.0, vibrato_cents=30.0,
                       brightness=1.4)
HIGH_BRIGHT = SingerVoice(base_hz=330.0, formant_scale=1.2, vibrato_hz=6.0, vibrato_cents=50.0,
                          brightness=0.6)


def _phrase(voice: SingerVoice, seed: int) -> np.ndarray:
    return sing(voice, 3.0, sr=SR, seed=seed)


# --- metrics on tracks -------------------------------------------------------------------------


def test_identical_tracks_score_perfectly() -> None:
    f0 = np.r_[np.zeros(10), 220 * 2 ** (np.linspace(0, 5, 80) / 12), np.zeros(10)]
    s = metrics.f0_scores(f0, f0)
    assert (s.f0_rmse_cents, s.fpc, s.vuv_f1, s.vuv_error, s.voiced_frames) == (0, 1, 1, 0, 80)


def test_shifted_track_scores_its_shift_and_shift_f0_undoes_it() -> None:
    ref = 200 + 30 * np.sin(np.linspace(0, 6, 100))
    gen = ref * 2 ** (200 / 1200)
    assert metrics.f0_scores(ref, gen).f0_rmse_cents == pytest.approx(200)
    assert metrics.f0_scores(ref, gen).fpc == pytest.approx(1)
    assert metrics.f0_scores(metrics.shift_f0(ref, 2), gen).f0_rmse_cents == pytest.approx(0)


def test_voicing_scores_on_known_spans() -> None:
    ref = np.zeros(100)
    gen = np.zeros(100)
    ref[0:50] = 200.0  # voiced 0-49
    gen[10:60] = 200.0  # voiced 10-59: 40 agree, 10 missed, 10 extra
    s = metrics.f0_scores(ref, gen)
    assert s.voiced_frames == 40
    assert s.vuv_f1 == pytest.approx(2 * 40 / (2 * 40 + 10 + 10))
    assert s.vuv_error == pytest.approx(20 / 100)


def test_undefined_scores_are_nan_not_flattering() -> None:
    silent = np.zeros(50)
    s = metrics.f0_scores(silent, silent)
    assert math.isnan(s.f0_rmse_cents) and math.isnan(s.fpc) and math.isnan(s.vuv_f1)
    assert s.vuv_error == 0
    flat = np.full(50, 220.0)
    assert math.isnan(metrics.f0_scores(flat, flat).fpc)  # a constant has no correlation


def test_tracks_of_different_length_are_cut_to_the_shorter() -> None:
    ref = 200 + np.arange(100.0)
    assert metrics.f0_scores(ref, ref[:60]).voiced_frames == 60


def test_summary_drops_nan_and_gives_the_t_interval() -> None:
    s = metrics.summarise([1.0, 2.0, 3.0, float("nan")])
    assert (s.mean, s.n, s.dropped) == (2.0, 3, 1)
    assert s.ci95 == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)  # t(0.975, 2)
    assert math.isnan(metrics.summarise([float("nan")]).mean)


def test_mcd_is_zero_for_identical_mels_and_grows_with_distortion() -> None:
    rng = np.random.default_rng(0)
    mel = rng.normal(-5, 2, size=(100, 120))
    assert metrics.mcd_db(mel, mel) == 0
    small = metrics.mcd_db(mel, mel + rng.normal(0, 0.1, mel.shape))
    large = metrics.mcd_db(mel, mel + rng.normal(0, 0.5, mel.shape))
    assert 0 < small < large
    assert metrics.mcd_db(mel, mel + 3.0) == pytest.approx(0, abs=1e-9)  # gain lives in c0


# --- pairing -----------------------------------------------------------------------------------


def test_pairing_by_relative_path_gvc_marker_and_unique_stem(tmp_path: Path) -> None:
    tone = harmonic(0.3, SR)
    for name in ("a/x.wav", "a/y.wav", "b/z.wav", "only_ref.wav"):
        write(tmp_path / "ref" / name, tone, SR)
    for name in ("a/x.gvc.wav", "a/y.flac", "z.wav", "extra.wav"):
        write(tmp_path / "gen" / name, tone, SR)
    (tmp_path / "gen" / "notes.txt").write_text("not audio")
    p = pair_files(tmp_path / "ref", tmp_path / "gen")
    assert [(x.key, x.gen.name) for x in p.pairs] == [
        ("a/x", "x.gvc.wav"), ("a/y", "y.flac"), ("b/z", "z.wav")]
    assert sorted(path.name for path, _ in p.unpaired) == ["extra.wav", "only_ref.wav"]


def test_two_single_files_pair_whatever_their_names(tmp_path: Path) -> None:
    a = write(tmp_path / "one.wav", harmonic(0.3, SR), SR)
    b = write(tmp_path / "two.wav", harmonic(0.3, SR), SR)
    assert [(x.ref, x.gen) for x in pair_files(a, b).pairs] == [(a, b)]


def test_missing_side_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        pair_files(tmp_path / "nope", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no audio"):
        pair_files(tmp_path / "empty", tmp_path / "empty")


# --- the command -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ref/ and gen/ folders: an identical pair, a +200-cent tone pair, a voicing pair, a ref
    without partner, a gen without partner and an unreadable gen file."""
    root = tmp_path_factory.mktemp("eval")
    song = _song(0, 1)
    write(root / "ref" / "same.wav", song, SR)
    write(root / "gen" / "same.gvc.wav", song, SR)
    write(root / "ref" / "tone.wav", harmonic(1.5, SR, hz=220.0), SR)
    write(root / "gen" / "tone.wav", harmonic(1.5, SR, hz=220.0 * 2 ** (200 / 1200)), SR)
    half = harmonic(2.0, SR, hz=200.0)
    half[SR:] = 0.0  # voiced 0-1 s, silent 1-2 s
    write(root / "ref" / "voicing.wav", half, SR)
    write(root / "gen" / "voicing.wav", harmonic(2.0, SR, hz=200.0), SR)  # voiced throughout
    write(root / "ref" / "bad.wav", song, SR)
    (root / "gen" / "bad.wav").write_bytes(b"RIFF\x00\x00not a wav at all")
    write(root / "ref" / "lonely.wav", song, SR)
    write(root / "gen" / "stray.wav", song, SR)
    return root


@pytest.fixture(scope="module")
def scored(corpus: Path) -> tuple[int, dict, list[dict], str]:
    """One CLI run over the corpus: exit code, JSON, CSV rows and console output."""
    out = _invoke("--ref", corpus / "ref", "--gen", corpus / "gen", "-v",
                  "--csv", corpus / "scores.csv", "--json", corpus / "scores.json",
                  "--plot", corpus / "plots")
    with open(corpus / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return out.exit_code, json.loads((corpus / "scores.json").read_text()), rows, out.output


def test_eval_scores_the_good_pairs_and_exits_1_for_the_rest(scored) -> None:
    code, data, _, output = scored
    assert code == 1
    assert [r["file"] for r in data["files"]] == ["same", "tone", "voicing"]
    failed = {Path(f["file"]).name: f["reason"] for f in data["failures"]}
    assert set(failed) == {"bad.wav", "lonely.wav", "stray.wav"}
    assert "cannot be decoded" in failed["bad.wav"]
    assert "no generated file" in failed["lonely.wav"]
    assert "3 file(s) scored, 3 failed" in output.replace("\n", " ")


def test_identical_files_score_zero_error(scored) -> None:
    same = {r["file"]: r for r in scored[1]["files"]}["same"]
    assert same["f0_rmse_cents"] == 0 and same["fpc"] == pytest.approx(1)
    assert same["mcd_db"] == 0 and same["mel_l1"] == 0 and same["vuv_f1"] == 1
    assert same["duration_diff_s"] == 0


def test_tone_200_cents_sharp_scores_about_200_cents(scored) -> None:
    tone = {r["file"]: r for r in scored[1]["files"]}["tone"]
    assert tone["f0_rmse_cents"] == pytest.approx(200, abs=5)
    assert tone["mcd_db"] > 0 and tone["mel_l1"] > 0


def test_voicing_of_a_half_silent_reference(scored) -> None:
    row = {r["file"]: r for r in scored[1]["files"]}["voicing"]
    # half the analysis frames are voiced in both and half in gen only: F1 = 2/3; those in gen
    # only are the disagreements, out of every frame of the track (its zero padding included)
    frames = analysis_frames(2 * 16000)
    assert row["vuv_f1"] == pytest.approx(2 / 3, abs=0.03)
    assert row["vuv_error"] == pytest.approx(frames / 2 / frame_count(2 * 16000), abs=0.03)


def test_csv_and_json_schemas(scored, corpus: Path) -> None:
    _, data, rows, _ = scored
    columns = ["file", "ref", "gen", *RECONSTRUCTION_SCORES]
    assert list(rows[0].keys()) == columns
    assert data["columns"] == columns
    assert set(data) == {"mode", "columns", "settings", "files", "summary", "failures"}
    assert data["mode"] == "reconstruction" and data["settings"]["f0_method"] == "praat"
    assert set(data["summary"]) == set(RECONSTRUCTION_SCORES)
    assert set(data["summary"]["fpc"]) == {"mean", "ci95", "n", "undefined"}
    # the steady tones have a flat F0, so FPC is undefined there: null in JSON, empty in CSV
    assert data["summary"]["fpc"]["n"] + data["summary"]["fpc"]["undefined"] == 3
    assert {r["file"]: r["fpc"] for r in rows}["same"] != ""
    assert sorted(p.name for p in (corpus / "plots").iterdir()) == [
        "same.f0.png", "tone.f0.png", "voicing.f0.png"]


@pytest.mark.parametrize("args, message", [
    (["--gen", "gen"], "exactly one of --ref"),
    (["--ref", "ref", "--source", "ref", "--gen", "gen"], "exactly one of --ref"),
    (["--source", "ref", "--gen", "gen"], "needs --target-spk"),
    (["--ref", "ref", "--gen", "gen", "--target-spk", "t.spk.npy"], "conversion mode"),
    (["--ref", "ref", "--gen", "gen", "--shift", "2"], "conversion mode"),
    (["--ref", "ref", "--gen", "gen", "--f0-method", "yin"], "not one of praat"),
    (["--ref", "missing", "--gen", "gen"], "no such file"),
])
def test_usage_errors(corpus: Path, args: list[str], message: str) -> None:
    paths = {"ref": corpus / "ref", "gen": corpus / "gen", "missing": corpus / "missing"}
    result = _invoke(*(paths.get(a, a) for a in args))
    assert isinstance(result.exception, ConfigError)
    assert message in str(result.exception)


def test_usage_errors_exit_2_from_the_console_script(corpus: Path) -> None:
    bad = run_gvc("eval", "--ref", "ref", "--gen", "gen", "--f0-method", "yin", cwd=corpus)
    assert bad.returncode == 2 and "--f0-method" in bad.stdout + bad.stderr
    unknown = run_gvc("eval", "--ref", "ref", "--gen", "gen", "--no-such-flag", cwd=corpus)
    assert unknown.returncode == 2 and "No such option" in unknown.stdout + unknown.stderr


# --- conversion mode ---------------------------------------------------------------------------


def test_conversion_mode_speaker_similarity_and_shifted_pitch(tmp_path: Path) -> None:
    from speaker import load_speaker_encoder

    encoder = load_speaker_encoder("resemblyzer")
    # The target d-vector comes from other phrases of the target singer than the "conversion".
    target = np.mean([encoder.embed(_16k(_phrase(LOW_DARK, s))) for s in (11, 12)], axis=0)
    np.save(tmp_path / "low.spk.npy", target.astype(np.float32))
    source = _phrase(HIGH_BRIGHT, 5)
    write(tmp_path / "src" / "clip.wav", source, SR)
    write(tmp_path / "out" / "clip.gvc.wav", _phrase(LOW_DARK, 5), SR)
    write(tmp_path / "src" / "same.wav", source, SR)  # not converted at all: timbre unmoved
    write(tmp_path / "out" / "same.gvc.wav", source, SR)
    out = _invoke("--source", tmp_path / "src", "--gen", tmp_path / "out",
                  "--target-spk", tmp_path / "low.spk.npy", "--shift", -12,
                  "--json", tmp_path / "conv.json")
    assert out.exit_code == 0, out.output
    data = json.loads((tmp_path / "conv.json").read_text())
    assert data["columns"] == ["file", "source", "gen", *CONVERSION_SCORES]
    assert data["settings"]["shift"] == -12
    assert data["settings"]["speaker_encoder"] == "resemblyzer"
    rows = {r["file"]: r for r in data["files"]}
    conv, same = rows["clip"], rows["same"]
    assert conv["spk_sim"] > conv["src_spk_sim"] + 0.05  # moved towards the target singer
    assert conv["spk_sim_gain"] == pytest.approx(conv["spk_sim"] - conv["src_spk_sim"])
    assert same["spk_sim_gain"] == pytest.approx(0, abs=1e-6)
    # the unconverted copy is an octave above the shifted source: 1200 cents off
    assert same["f0_rmse_cents"] == pytest.approx(1200, abs=10)


def test_same_singer_similarity_above_cross_singer() -> None:
    from speaker import load_speaker_encoder

    encoder = load_speaker_encoder("resemblyzer")
    low = [encoder.embed(_16k(_phrase(LOW_DARK, s))) for s in (1, 2)]
    high = [encoder.embed(_16k(_phrase(HIGH_BRIGHT, s))) for s in (1, 2)]
    cross = max(metrics.cosine(a, b) for a in low for b in high)
    assert metrics.cosine(*low) > cross
    assert metrics.cosine(*high) > cross


def test_unreadable_target_speaker_file_is_a_usage_error(corpus: Path) -> None:
    from gvc.errors import FeatureMismatch

    bad = corpus / "bad.spk.npy"
    bad.write_bytes(b"not numpy")
    result = _invoke("--source", corpus / "ref", "--gen", corpus / "gen", "--target-spk", bad)
    assert isinstance(result.exception, FeatureMismatch)
    assert str(bad) in str(result.exception)


def test_conversion_mode_with_the_lstm_encoder_given_its_files(tmp_path: Path) -> None:
    from speaker import LstmSpeakerEncoder, save_random_checkpoint

    weights = save_random_checkpoint(tmp_path / "speaker_pretrain", lstm_dim=32, seed=1)
    encoder = LstmSpeakerEncoder.from_folder(weights)
    source, gen = _phrase(HIGH_BRIGHT, 1), _phrase(LOW_DARK, 1)
    np.save(tmp_path / "t.spk.npy", encoder.embed(_16k(gen)))
    write(tmp_path / "src.wav", source, SR)
    write(tmp_path / "gen.wav", gen, SR)
    out = _invoke("--source", tmp_path / "src.wav", "--gen", tmp_path / "gen.wav",
                  "--target-spk", tmp_path / "t.spk.npy", "--speaker-encoder", "lstm",
                  "--speaker-model-dir", weights, "--json", tmp_path / "s.json")
    assert out.exit_code == 0, out.output
    (row,) = json.loads((tmp_path / "s.json").read_text())["files"]
    assert row["spk_sim"] == pytest.approx(1, abs=1e-5)  # the target is the output's own vector
    assert row["src_spk_sim"] < row["spk_sim"]
    unknown = _invoke("--source", tmp_path / "src.wav", "--gen", tmp_path / "gen.wav",
                      "--target-spk", tmp_path / "t.spk.npy", "--speaker-encoder", "ecapa")
    assert isinstance(unknown.exception, ConfigError)
