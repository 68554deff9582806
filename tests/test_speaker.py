"""Speaker encoders: fixture parity with Grad-SVC's LSTM encoder, file handling, resemblyzer,
averages."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import pickle
import socket
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from gvc.errors import AudioError, CheckpointError, ConfigError, DataLayoutError, FeatureMismatch
from gvc.synthetic_singing import sing, singer_voice
from speaker import (
    FrontendConfig,
    LstmSpeakerEncoder,
    SingerProfile,
    average_folder,
    build_profile,
    load_speaker_encoder,
    profile_path,
    save_random_checkpoint,
    singer_mean,
)
from speaker.checkpoint import read_json_with_comments, strip_json_comments
from speaker.lstm_model import window_offsets

SR = 16000


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny LSTMs run fastest single-threaded (no thread contention on a busy 2-core runner)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def lstm_case(fixtures_dir):
    folder = fixtures_dir / "speaker_lstm_small"
    case = torch.load(folder / "case.pt", map_location="cpu", weights_only=True)
    wav, sr = sf.read(folder / "input.wav", dtype="float32")
    assert sr == SR
    return folder, case, wav


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory):
    return save_random_checkpoint(
        tmp_path_factory.mktemp("spk") / "speaker_pretrain", lstm_dim=32, seed=3
    )


@pytest.fixture(scope="module")
def small_encoder(small_model_dir):
    return LstmSpeakerEncoder.from_folder(small_model_dir)


@functools.cache
def _cached_voice(seconds: float, singer: int, seed: int) -> np.ndarray:
    return sing(singer_voice(singer), seconds, sr=SR, seed=seed)


def _voice(seconds: float, singer: int = 0, seed: int = 0) -> np.ndarray:
    """Synthetic 16 kHz singing (cached; a fresh copy each call)."""
    return _cached_voice(seconds, singer, seed).copy()


# --- fixture parity -------------------------------------------------------------------------


def test_fixture_mel_and_embedding_parity(lstm_case):
    """The default front end (no sound norm, as the fixture shows) matches the original code."""
    folder, case, wav = lstm_case
    plain = LstmSpeakerEncoder.from_folder(folder)
    assert not plain.frontend.do_sound_norm
    mel = plain.mel(wav)
    ref_mel = case["mel"].numpy()
    assert mel.shape == ref_mel.shape == (324, 80)
    assert np.abs(mel - ref_mel).max() <= 1e-3
    ref = case["embedding"].numpy()
    emb = plain.embed(wav)
    assert emb.shape == (256,) and emb.dtype == np.float32
    assert _cos(emb, ref) >= 0.9999
    assert _cos(plain.embed_mel(case["mel"]), ref) >= 0.9999
    # a mean of unit vectors, not renormalised: the norm matches too
    assert abs(np.linalg.norm(emb) - np.linalg.norm(ref)) < 1e-4


def test_sound_norm_is_a_pure_db_offset_of_the_fixture(lstm_case):
    """Opt-in sound norm x/max|x|*0.95 shifts every unclipped bin by a constant."""
    folder, case, wav = lstm_case
    base = LstmSpeakerEncoder.from_folder(folder)
    enc = base.with_frontend(dataclasses.replace(base.frontend, do_sound_norm=True))
    peak = np.abs(wav[160:-160]).max()
    offset = 20 * np.log10(0.95 / peak) * 8 / 100  # dB -> normalised units (x8/100)
    mel, ref = enc.mel(wav), case["mel"].numpy()
    free = (np.abs(ref) < 3.9) & (np.abs(mel) < 3.9)
    assert free.mean() > 0.9
    assert np.abs(mel[free] - (ref[free] + offset)).max() <= 1e-3
    # and therefore the embedding no longer depends on the input gain
    assert _cos(enc.embed(wav * 0.25), enc.embed(wav)) > 0.99999


def test_window_offsets_follow_linspace_truncation():
    offsets, length = window_offsets(324)
    assert length == 250 and offsets == [int(v) for v in np.linspace(0, 74, 10)]
    assert window_offsets(100) == ([0] * 10, 100)


# --- config and checkpoint files ------------------------------------------------------------


def test_strip_json_comments_leaves_strings_alone():
    text = ('{\n  // a comment\n  "url": "http://x.org/a//b", /* block\n */ '
            '"q": "say \\"//hi\\"" // tail\n}')
    data = json.loads(strip_json_comments(text))
    assert data == {"url": "http://x.org/a//b", "q": 'say "//hi"'}
    with pytest.raises(ConfigError, match="unterminated"):
        strip_json_comments('{"a": 1 /* open')


def test_config_with_comments_loads_and_errors_name_the_line(tmp_path, small_model_dir):
    text = (small_model_dir / "config.json").read_text()
    assert "//" in text  # the random-checkpoint writer uses the published commented layout
    assert read_json_with_comments(small_model_dir / "config.json")["model"]["lstm_dim"] == 32
    bad = tmp_path / "config.json"
    bad.write_text('{\n  // fine\n  "a": 1,\n  "b": ,\n}\n')
    with pytest.raises(ConfigError, match="line 4"):
        read_json_with_comments(bad)


def test_model_params_key_is_accepted_and_conflicts_are_refused(
    tmp_path, small_model_dir, small_encoder
):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "best_model.pth.tar").write_bytes(
        (small_model_dir / "best_model.pth.tar").read_bytes()
    )
    cfg = read_json_with_comments(small_model_dir / "config.json")
    cfg["model_params"] = cfg.pop("model")
    (folder / "config.json").write_text(json.dumps(cfg))
    x = _voice(2.0)
    np.testing.assert_allclose(
        LstmSpeakerEncoder.from_folder(folder).embed(x), small_encoder.embed(x), atol=1e-6
    )
    cfg["model"] = dict(cfg["model_params"], lstm_dim=64)
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="disagree"):
        LstmSpeakerEncoder.from_folder(folder)


def _copy_with_state(src, dst, mutate):
    dst.mkdir()
    (dst / "config.json").write_text((src / "config.json").read_text())
    ckpt = torch.load(src / "best_model.pth.tar", map_location="cpu", weights_only=True)
    torch.save(mutate(ckpt), dst / "best_model.pth.tar")
    return dst


@pytest.mark.parametrize(
    "name, mutate, pattern",
    [
        (
            "extra",
            lambda c: {"model": {**c["model"], "layers.3.linear.weight": torch.zeros(1)}},
            "unexpected",
        ),
        (
            "missing",
            lambda c: {"model": {k: v for k, v in c["model"].items() if "layers.2" not in k}},
            "missing",
        ),
        (
            "prefixed",
            lambda c: {"model": {f"module.{k}": v for k, v in c["model"].items()}},
            "keys do not match",
        ),
        ("nomodel", lambda c: c["model"], "'model'"),
    ],
)
def test_strict_load_failures(tmp_path, small_model_dir, name, mutate, pattern):
    folder = _copy_with_state(small_model_dir, tmp_path / name, mutate)
    with pytest.raises(CheckpointError, match=pattern) as info:
        LstmSpeakerEncoder.from_folder(folder)
    assert "best_model.pth.tar" in str(info.value) and "\n" not in str(info.value)


def test_config_sizes_that_disagree_with_the_checkpoint(tmp_path, small_model_dir):
    folder = _copy_with_state(small_model_dir, tmp_path / "m", lambda c: c)
    cfg = read_json_with_comments(folder / "config.json")
    cfg["model"]["lstm_dim"] = 48
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape"):
        LstmSpeakerEncoder.from_folder(folder)


def test_pickled_objects_of_absent_packages_load_as_inert_stubs(tmp_path, small_model_dir,
                                                                small_encoder, monkeypatch):
    """A Mozilla-era checkpoint also pickles config objects whose module is gone, and numpy
    values (a loss): both load without a flag, through the allow-list unpickler."""
    state = torch.load(
        small_model_dir / "best_model.pth.tar", map_location="cpu", weights_only=True
    )
    fake = types.ModuleType("mozilla_voice_tts_gone")
    fake.AttrDict = type("AttrDict", (dict,), {"__module__": "mozilla_voice_tts_gone"})
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text((small_model_dir / "config.json").read_text())
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "mozilla_voice_tts_gone", fake)
        torch.save(
            {"model": state["model"], "config": fake.AttrDict(lr=1e-4),
             "loss": np.float64(0.25), "curve": np.arange(3, dtype=np.float32)},
            folder / "best_model.pth.tar",
        )
    with pytest.raises(pickle.UnpicklingError):  # the precondition: not a tensors-only file
        torch.load(folder / "best_model.pth.tar", weights_only=True)
    enc = LstmSpeakerEncoder.from_folder(folder)
    x = _voice(2.0)
    np.testing.assert_array_equal(enc.embed(x), small_encoder.embed(x))


class _Touch:
    """Unpickling this calls `pathlib.Path.touch` on `target` (a stand-in for any payload)."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


@pytest.mark.parametrize("where", ["top", "beside_model"])
def test_hostile_checkpoint_runs_nothing_and_names_the_file(tmp_path, small_model_dir, where):
    target = tmp_path / "pwned"
    # the precondition: a plain unpickle of this payload does create the file
    pickle.loads(pickle.dumps(_Touch(target)))
    assert target.exists()
    target.unlink()
    state = torch.load(small_model_dir / "best_model.pth.tar", map_location="cpu",
                       weights_only=True)
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text((small_model_dir / "config.json").read_text())
    payload = _Touch(target) if where == "top" else {"model": state["model"], "x": _Touch(target)}
    torch.save(payload, folder / "best_model.pth.tar")
    with pytest.raises(CheckpointError) as info:
        LstmSpeakerEncoder.from_folder(folder)
    assert not target.exists()
    message = str(info.value)
    assert str(folder / "best_model.pth.tar") in message and "pathlib" in message, message
    assert "refused without running it" in message


def test_missing_files_message(tmp_path):
    with pytest.raises(CheckpointError) as info:
        load_speaker_encoder("lstm", model_dir=tmp_path / "nowhere")
    msg = str(info.value)
    for needle in (
        "speaker_pretrain/best_model.pth.tar",
        "config.json",
        "Grad-SVC",
        "Mozilla TTS",
        "resemblyzer",
    ):
        assert needle in msg
    assert "\n" not in msg


def test_unknown_encoder_kind():
    with pytest.raises(ConfigError, match="lstm, resemblyzer"):
        load_speaker_encoder("ecapa")


def test_random_checkpoint_is_seeded_and_described(tmp_path, small_encoder):
    a = LstmSpeakerEncoder.from_folder(save_random_checkpoint(tmp_path / "a", lstm_dim=32, seed=3))
    b = LstmSpeakerEncoder.from_folder(save_random_checkpoint(tmp_path / "b", lstm_dim=32, seed=4))
    x = _voice(2.0)
    np.testing.assert_array_equal(a.embed(x), small_encoder.embed(x))
    assert a.describe()["weights_sha256"] != b.describe()["weights_sha256"]
    assert a.describe()["lstm_dim"] == 32 and a.describe()["encoder"] == "lstm"
    json.dumps(a.describe())


# --- audio handling -------------------------------------------------------------------------


def test_silent_and_malformed_input(small_encoder):
    with pytest.raises(AudioError, match="silent"):
        small_encoder.embed(np.zeros(SR, dtype=np.float32))
    with pytest.raises(AudioError, match="mono"):
        small_encoder.embed(np.zeros((2, SR), dtype=np.float32))
    with pytest.raises(AudioError, match="NaN"):
        small_encoder.embed(np.full(SR, np.nan, dtype=np.float32))
    with pytest.raises(AudioError, match="too short"):
        small_encoder.embed(_voice(1.0)[6000:6800])  # 480 samples left after the margins


def test_short_and_long_utterances(small_encoder):
    short = _voice(1.5)  # ~94 frames < 250: every window is the whole utterance
    assert small_encoder.mel(short).shape[0] < 250
    e = small_encoder.embed(short)
    assert e.shape == (256,) and e.dtype == np.float32
    assert abs(np.linalg.norm(e) - 1.0) < 1e-5  # ten identical unit vectors
    long = small_encoder.embed(_voice(6.0, seed=2))
    assert np.linalg.norm(long) < 1.0 - 1e-6  # distinct windows: mean of unit vectors shrinks


def test_tensor_input_and_batch_match_single(small_encoder):
    wavs = [_voice(1.5, seed=1), _voice(6.0, seed=2), _voice(5.0, singer=1, seed=3)]
    single = [small_encoder.embed(w) for w in wavs]
    np.testing.assert_array_equal(small_encoder.embed(torch.from_numpy(wavs[1])), single[1])
    for got, want in zip(small_encoder.embed_batch(wavs), single, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_resemblyzer_offline(monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    enc = load_speaker_encoder("resemblyzer")
    a = enc.embed(_voice(3.0, seed=1))
    b = enc.embed(torch.from_numpy(_voice(3.0, seed=1)))
    assert capsys.readouterr().out == ""  # resemblyzer's load message is suppressed
    assert a.shape == (256,) and a.dtype == np.float32
    assert abs(np.linalg.norm(a) - 1.0) < 1e-5 and a.min() >= 0
    np.testing.assert_array_equal(a, b)
    assert enc.describe()["encoder"] == "resemblyzer"
    with pytest.raises(AudioError, match="silent"):
        enc.embed(np.zeros(SR, dtype=np.float32))


# --- averages and profiles ------------------------------------------------------------------


def test_singer_mean_and_average_folder_leave_inputs_untouched(tmp_path):
    rng = np.random.default_rng(0)
    vecs = [rng.normal(size=256).astype(np.float32) for _ in range(4)]
    vecs = [v / np.linalg.norm(v) for v in vecs]
    for i, v in enumerate(vecs):
        np.save(tmp_path / f"utt{i}.spk.npy", v)
    (tmp_path / "notes.npy").write_bytes(b"ignored: not a .spk.npy")
    before = {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in tmp_path.iterdir()
    }
    copies = [v.copy() for v in vecs]
    mean = singer_mean(vecs)
    assert mean.dtype == np.float32 and mean.shape == (256,)
    np.testing.assert_allclose(mean, np.mean(np.stack(copies), axis=0), atol=1e-7)
    assert np.linalg.norm(mean) < 1.0  # not renormalised
    for v, c in zip(vecs, copies, strict=True):
        np.testing.assert_array_equal(v, c)
    np.testing.assert_array_equal(average_folder(tmp_path), mean)
    after = {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in tmp_path.iterdir()
    }
    assert after == before


def test_average_failures(tmp_path):
    with pytest.raises(DataLayoutError, match="no \\*.spk.npy"):
        average_folder(tmp_path)
    np.save(tmp_path / "bad.spk.npy", np.zeros(128, dtype=np.float32))
    with pytest.raises(FeatureMismatch, match="bad.spk.npy"):
        average_folder(tmp_path)
    with pytest.raises(FeatureMismatch):
        singer_mean([])


def test_profile_round_trip(tmp_path):
    f0_a = np.concatenate([np.zeros(10), np.full(80, 220.0), np.zeros(10)])
    f0_b = np.concatenate([np.full(20, 440.0), [np.nan, -1.0], np.zeros(18)])
    prof = build_profile(2, 1.4, [f0_a, f0_b])
    voiced = np.concatenate([np.full(80, 220.0), np.full(20, 440.0)])
    assert prof.median_f0_hz == pytest.approx(np.median(voiced))
    assert prof.f0_low_hz == pytest.approx(np.percentile(voiced, 5))
    assert prof.f0_high_hz == pytest.approx(np.percentile(voiced, 95))
    assert prof.voiced_fraction == pytest.approx(100 / 140)
    path = profile_path(tmp_path / "singer", "alto")
    assert path.name == "alto.profile.json"
    prof.save(path)
    assert SingerProfile.load(path) == prof
    assert [p.name for p in path.parent.iterdir()] == ["alto.profile.json"]  # no temp file left
    empty = build_profile(1, 0.5, [np.zeros(50)])
    assert empty.median_f0_hz is None and empty.voiced_fraction == 0.0
    empty.save(path)
    assert SingerProfile.load(path) == empty
    path.write_text('{"utterance_count": 1}')
    with pytest.raises(DataLayoutError, match="fields"):
        SingerProfile.load(path)


def test_frontend_config_from_audio_section():
    cfg = FrontendConfig.from_audio_section(
        {
            "num_mels": 80,
            "preemphasis": 0.97,
            "do_sound_norm": True,
            "do_trim_silence": False,
            "power": 1.5,
            "mel_fmax": None,
        }
    )
    assert cfg.preemphasis == 0.97 and cfg.mel_fmax == 8000.0
    assert cfg.do_sound_norm and cfg.do_trim_silence  # read from the file; trimming forced on
    with pytest.raises(ConfigError, match="16 kHz"):
        FrontendConfig.from_audio_section({"sample_rate": 22050})
    with pytest.raises(ConfigError, match="hop_length"):
        FrontendConfig.from_audio_section({"hop_length": "256"})


def test_corrupt_checkpoint_is_not_mistaken_for_a_pickle_of_objects(tmp_path, small_model_dir):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "config.json").write_text((small_model_dir / "config.json").read_text())
    (folder / "best_model.pth.tar").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        LstmSpeakerEncoder.from_folder(folder)
