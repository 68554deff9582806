"""`gvc infer`: end-to-end conversion with tiny random models (HuBERT 1 layer, tiny GradSVC,
Griffin-Lim and a 64-channel NSF-BigVGAN), feature paths, shift, chunking, seeds, folder mode and
every consistency check."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import typer
from typer.testing import CliRunner

from gvc.config import load_config
from gvc.errors import AudioError, CheckpointError, ConfigError, FeatureMismatch, GvcError
from gvc.export.meta import build_meta, gradsvc_features
from gvc.fileio import save_json, save_torch
from gvc.inference import (
    ChunkSettings,
    Converter,
    NoiseField,
    checks,
    choose_shift,
    parse_shift,
    plan_chunks,
    plan_folder,
    resolve_output,
    shift_f0,
)
from gvc.inference.chunks import Crossfader, cut_scores
from gvc.inference.features import align, read_pitch
from gvc.inference.synthesis import run_acoustic
from gvc.synth import sing, singer_voice
from speaker import SingerProfile

SECONDS = 2.5
STEPS = 2


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run fastest single-threaded on a busy 2-core runner."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _export_tiny(path: Path, *, features: dict | None = None, meta: bool = True) -> Path:
    """A tiny random GradSVC written like `gvc export` writes it (score head scaled down so the
    sampled mel stays in a sane range)."""
    cfg = load_config("tiny")
    from gvc.models import GradSVC

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GradSVC.from_config(cfg)
    with torch.no_grad():
        model.decoder.estimator.final_conv.weight.mul_(0.05)
        model.decoder.estimator.final_conv.bias.zero_()
    payload = {"model": model.state_dict()}
    if meta:
        feats = features if features is not None else gradsvc_features(cfg)
        payload["gvc"] = build_meta(cfg, feats, kind="model", source={}, dtype="float32")
    save_torch(path, payload)
    return path


def _song(path: Path, seconds: float = SECONDS, seed: int = 1, index: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), sing(singer_voice(index), seconds, 44100, seed=seed), 44100)
    return path


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """Model files, a target singer (lstm metadata + profile) and a 2.5 s song."""
    import hubert
    import vocoder
    from prepare.meta import describe

    root = tmp_path_factory.mktemp("infer")
    singer = root / "singer"
    singer.mkdir()
    rng = np.random.default_rng(0)
    np.save(singer / "alto.spk.npy", (rng.standard_normal(256) * 0.05).astype(np.float32))
    save_json(singer / ".gvc-feature.json", describe("singer", "lstm", {}))
    SingerProfile(12, 60.0, 440.0, 300.0, 600.0, 0.7).save(singer / "alto.profile.json")
    return SimpleNamespace(
        root=root,
        model=_export_tiny(root / "gvc.pth"),
        hubert=hubert.save_random_checkpoint(root / "hubert.pt", num_layers=1),
        nsf=vocoder.save_random_checkpoint(root / "nsf.pth", upsample_initial_channel=64),
        spk=singer / "alto.spk.npy",
        song=_song(root / "songs" / "a.wav"),
    )


@pytest.fixture(scope="module")
def gl(kit):
    return Converter.load(kit.model, hubert_path=kit.hubert, vocoder="griffinlim")


@pytest.fixture(scope="module")
def nsf(kit):
    return Converter.load(kit.model, hubert_path=kit.hubert, vocoder="nsf-bigvgan",
                          vocoder_ckpt=kit.nsf)


def _convert(conv: Converter, kit, **kw):
    sampler = kw.pop("sampler", "euler")
    seed = kw.pop("seed", 7)
    chunk = kw.pop("chunk", None)
    return conv.convert(kw.pop("wave", kit.song), conv.speaker(kit.spk), spk_path=kit.spk,
                        decode=conv.decode_settings(sampler, STEPS, seed=seed),
                        chunking=conv.chunk_settings(chunk, 0.5 if chunk else None), **kw)


def _cli(args: list[str]):
    from gvc.cli.infer import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test app"""

    register(app)
    return CliRunner().invoke(app, ["infer", *map(str, args)])


# ---------------------------------------------------------------- shift and alignment
def test_shift_arithmetic_and_parsing():
    f0 = np.array([0.0, 100.0, 220.0, 0.0])
    assert np.allclose(shift_f0(f0, 12), [0, 200, 440, 0])
    assert np.allclose(shift_f0(f0, -12), [0, 50, 110, 0])
    assert np.allclose(shift_f0(f0, 7)[2], 220 * 2 ** (7 / 12))
    assert parse_shift("-3") == -3 and parse_shift("AUTO") == "auto"
    for bad in ("up", "100", "nan"):
        with pytest.raises(ConfigError):
            parse_shift(bad)


def test_align_repeats_units_and_truncates():
    units = np.arange(10 * 256, dtype=np.float32).reshape(10, 256)
    f0 = np.r_[np.zeros(3), np.full(20, 110.0)]
    vec, pit = align(units, f0, 12)
    assert vec.shape == (20, 256) and pit.shape == (20,)
    assert np.array_equal(vec[0], vec[1]) and np.array_equal(vec[2], units[1])
    assert np.array_equal(pit[:3], [0, 0, 0]) and np.allclose(pit[3:], 220.0)


def test_auto_shift_from_profile(kit, tmp_path):
    src = np.r_[np.zeros(50), np.full(100, 220.0)]
    choice = choose_shift("auto", src, kit.spk)  # profile median 440 Hz next to alto.spk.npy
    assert choice.semitones == 12 and choice.auto and "440.0 Hz" in choice.describe()
    SingerProfile(1, 1.0, 261.63, 200.0, 300.0, 1.0).save(tmp_path / "p.json")
    assert choose_shift("auto", src, kit.spk, tmp_path / "p.json").semitones == 3
    assert choose_shift(-2, src, kit.spk).semitones == -2
    lone = tmp_path / "x.spk.npy"
    np.save(lone, np.zeros(256, np.float32))
    with pytest.raises(ConfigError, match="profile"):
        choose_shift("auto", src, lone)
    with pytest.raises(ConfigError, match="no voiced"):
        choose_shift("auto", np.zeros(10), kit.spk)


# ---------------------------------------------------------------- chunking machinery
def test_plan_chunks_tiles_bounds_and_quiet_cuts():
    s = ChunkSettings(chunk_frames=100, context_frames=10, crossfade_frames=8, search_frames=40)
    scores = np.zeros(1000)
    scores[70:] = 50.0
    scores[83] = -50.0  # the only quiet frame in the search window of the first cut
    plan = plan_chunks(1000, s, scores)
    assert plan[0].stop == 83
    assert plan[0].start == 0 and plan[-1].stop == 1000
    assert all(a.stop == b.start for a, b in zip(plan[:-1], plan[1:], strict=True))
    assert len({c.hi - c.lo for c in plan}) <= 3  # one tensor shape, two more at the song end
    for c in plan:
        assert c.stop - c.start <= 100 and c.hi - c.lo <= 100 + 2 * 10 + 6
        assert c.lo % 4 == 0 and c.lo <= max(0, c.start - 10) and c.hi >= min(1000, c.stop + 10)
    single = plan_chunks(80, s)
    assert len(single) == 1 and (single[0].lo, single[0].hi) == (0, 80)
    with pytest.raises(ConfigError):
        ChunkSettings(chunk_frames=100, context_frames=2, crossfade_frames=10)
    # voiced frames count as loud
    cost = cut_scores(np.full(10, -60.0), np.r_[np.zeros(5), np.full(5, 100.0)], 1)
    assert cost[:5].max() < cost[5:].min()


def test_noise_field_depends_on_absolute_frame_only():
    field = NoiseField(5, block=16)
    whole = field.window(3, -7, 100)
    assert torch.equal(field.window(3, 20, 30), whole[..., 27:57])
    assert not torch.equal(field.window(2, 20, 30), whole[..., 27:57])
    draw = field.noise_fn(20)
    x = torch.zeros(1, 100, 30)
    assert torch.equal(draw(x), field.window(0, 20, 30)) and torch.equal(draw(x), field.window(1, 20, 30))


class _LocalModel:
    """Frame-local stand-in for GradSVC: output frame t depends on inputs and noise at t only."""

    n_mels = 100

    def infer(self, vec, pit, spk, *, noise, **_):
        t = vec.shape[1]
        z0, z1 = noise(torch.zeros(1, 100, t)), noise(torch.zeros(1, 100, t))
        return SimpleNamespace(mel=vec[..., :100].transpose(1, 2) + torch.log1p(pit)[:, None]
                               + 0.3 * z0 + 0.1 * z1 + spk[:, :100, None])


def test_chunked_acoustic_equals_whole_for_a_local_model():
    from gvc.device import Runtime

    rng = np.random.default_rng(0)
    vec = rng.standard_normal((537, 256)).astype(np.float32)
    f0 = rng.uniform(0, 300, 537)
    spk = rng.standard_normal(256).astype(np.float32)
    kw = dict(sampler="x", steps=1, temperature=1.0, noise=NoiseField(3),
              runtime=Runtime(torch.device("cpu")))
    whole = run_acoustic(_LocalModel(), vec, f0, spk, plan_chunks(537, ChunkSettings()), 0, **kw)
    s = ChunkSettings(chunk_frames=60, context_frames=10, crossfade_frames=8, search_frames=30)
    plan = plan_chunks(537, s, rng.standard_normal(537))
    assert len(plan) >= 9
    chunked = run_acoustic(_LocalModel(), vec, f0, spk, plan, 8, **kw)
    assert torch.allclose(whole, chunked, atol=1e-5)
    fader = Crossfader(20, 1, 4)
    fader.add(0, 10, 0, torch.ones(1, 12))
    fader.add(10, 20, 8, torch.ones(1, 12))
    assert torch.allclose(fader.result(), torch.ones(1, 20))


# ---------------------------------------------------------------- end to end
def test_cli_end_to_end_writes_next_to_input(kit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    song = _song(kit.root / "cli" / "song one.wav", seconds=2.0)
    r = _cli(["--model", kit.model, "--spk", kit.spk, "--wave", song, "--hubert-model",
              kit.hubert, "--vocoder", "griffinlim", "--steps", STEPS, "--temperature", 1.015,
              "--device", "cpu", "--shift", "auto", "--sampler", "dpm-solver-2",
              "--sampler-opt", "grid=time-uniform"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert "dpm-solver-2 grid=time-uniform x" in r.output
    out = song.with_name("song one.gvc.wav")
    info = sf.info(str(out))
    assert info.samplerate == 32000 and abs(info.frames - 2.0 * 32000) <= 3 * 320
    audio, _ = sf.read(str(out))
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    assert "shift: +" in r.output and "auto" in r.output and list(tmp_path.iterdir()) == []


def test_nsf_with_intermediates(kit, nsf, tmp_path):
    from gvc.inference import OutputOptions, write_conversion

    conv = _convert(nsf, kit, shift=12)
    assert conv.sample_rate == 32000 and conv.audio.shape == (conv.mel.shape[-1] * 320,)
    assert abs(len(conv.audio) / 32000 - SECONDS) <= 0.03 and np.isfinite(conv.audio).all()
    written = write_conversion(conv, tmp_path / "x.gvc.wav", nsf,
                               nsf.decode_settings("euler", STEPS, seed=7),
                               OutputOptions(save_pitch_wav=True, save_mel=True))
    assert [p.name for p in written] == ["x.gvc.wav", "x.gvc.pitch.wav", "x.gvc.mel.pt",
                                         "x.gvc.mel.png"]
    assert sf.info(str(written[1])).frames == len(conv.audio)
    assert torch.equal(torch.load(written[2]), conv.mel)
    assert written[3].read_bytes()[:4] == b"\x89PNG"


def test_given_features_equal_computed_and_shift_doubles_f0(kit, gl, tmp_path):
    from prepare.content import write_units
    from prepare.f0 import write_f0

    vec, pit = tmp_path / "a.vec.npy", tmp_path / "a.pit.npy"
    write_units(kit.song, vec, model=kit.hubert)
    f0 = write_f0(kit.song, method="praat", npy=pit)
    computed = _convert(gl, kit, sampler="ml", shift=12)
    given = _convert(gl, kit, sampler="ml", shift=12, vec=vec, pit=pit)
    assert np.array_equal(computed.audio, given.audio)
    t = computed.f0.shape[0]
    assert np.allclose(computed.f0, np.where(f0[:t] > 0, 2 * f0[:t], 0.0))
    assert (computed.f0 == 0).any() and (computed.f0 > 0).any()


def test_seed_reproducibility(kit, nsf):
    a = _convert(nsf, kit, sampler="ml", seed=3)
    b = _convert(nsf, kit, sampler="ml", seed=3)
    c = _convert(nsf, kit, sampler="ml", seed=4)
    assert np.array_equal(a.audio, b.audio) and torch.equal(a.mel, b.mel)
    assert not torch.equal(a.mel, c.mel)


def test_chunked_nearly_equals_whole(kit, nsf):
    whole = _convert(nsf, kit)
    parts = _convert(nsf, kit, chunk=0.8)
    assert parts.chunks >= 3 and whole.chunks == 1
    rel_l1 = ((whole.mel - parts.mel).abs().mean() / whole.mel.abs().mean()).item()
    corr = np.corrcoef(whole.mel.flatten(), parts.mel.flatten())[0, 1]
    assert rel_l1 < 0.02 and corr > 0.9998, (rel_l1, corr)  # unaligned spans: 0.023, 0.99970
    assert np.corrcoef(whole.audio, parts.audio)[0, 1] > 0.99


def test_folder_mode_with_bad_file(kit, tmp_path):
    src = tmp_path / "in"
    _song(src / "a.wav", 1.0)
    _song(src / "sub" / "b.wav", 1.0, seed=2, index=1)
    (src / "sub" / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    (src / "notes.txt").write_text("not audio, ignored")
    out = tmp_path / "out"
    args = ["--model", kit.model, "--spk", kit.spk, "--wave", src, "--out", out, "--recursive",
            "--hubert-model", kit.hubert, "--vocoder", "griffinlim", "--steps", 1,
            "--device", "cpu"]
    r = _cli(args)
    assert r.exit_code == 1, r.output + repr(r.exception)
    assert (out / "a.wav").is_file() and (out / "sub" / "b.wav").is_file()
    assert "bad.wav" in r.output and not (out / "sub" / "bad.wav").exists()
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a.wav", "b.wav"]
    with pytest.raises(ConfigError, match="input folder"):
        plan_folder(src, src, False)
    with pytest.raises(ConfigError, match="inside the input"):
        plan_folder(src, src / "sub" / "o", True)
    with pytest.raises(ConfigError, match="--out"):
        plan_folder(src, None, True)


def test_folder_skips_existing_outputs(kit, gl, tmp_path):
    from gvc.inference import convert_folder

    src = tmp_path / "in"
    _song(src / "a.wav", 0.5)
    pairs = plan_folder(src, tmp_path / "out", False)
    pairs[0][1].parent.mkdir(parents=True)
    pairs[0][1].write_bytes(b"old")
    kw = dict(spk_path=kit.spk, decode=gl.decode_settings("euler", 1), chunking=gl.chunk_settings())
    report = convert_folder(gl, pairs, gl.speaker(kit.spk), **kw)
    assert report.skipped == 1 and report.done == 0 and pairs[0][1].read_bytes() == b"old"
    report = convert_folder(gl, pairs, gl.speaker(kit.spk), force=True, **kw)
    assert report.done == 1 and sf.info(str(pairs[0][1])).samplerate == 32000


# ---------------------------------------------------------------- consistency checks
def test_output_naming_never_overwrites_input(kit, tmp_path):
    song = kit.song
    assert resolve_output(song, None) == song.with_name("a.gvc.wav")
    assert resolve_output(song, tmp_path) == tmp_path / "a.gvc.wav"
    assert resolve_output(song, tmp_path / "o") == tmp_path / "o.wav"
    with pytest.raises(ConfigError, match="input"):
        resolve_output(song, song)
    r = _cli(["--model", kit.model, "--spk", kit.spk, "--wave", song, "--out", song])
    assert isinstance(r.exception, ConfigError)
    r = _cli(["--model", kit.model, "--spk", kit.spk, "--wave", song, "--vocoder", "griffinlim",
              "--save-pitch-wav"])
    assert isinstance(r.exception, ConfigError) and "nsf-bigvgan" in str(r.exception)


def test_speaker_checks(kit, tmp_path, caplog):
    bad = tmp_path / "bad.spk.npy"
    np.save(bad, np.zeros(128, np.float32))
    with pytest.raises(FeatureMismatch, match=r"\(256,\)"):
        checks.check_speaker(bad, 256, "lstm", False)
    other = tmp_path / "resem"
    other.mkdir()
    np.save(other / "x.spk.npy", np.zeros(256, np.float32))
    from prepare.meta import describe

    save_json(other / ".gvc-feature.json", describe("singer", "resemblyzer", {}))
    with pytest.raises(FeatureMismatch, match="resemblyzer.*lstm.*--allow-mismatch"):
        checks.check_speaker(other / "x.spk.npy", 256, "lstm", False)
    with caplog.at_level(logging.WARNING):
        assert checks.check_speaker(other / "x.spk.npy", 256, "lstm", True).shape == (256,)
    assert "resemblyzer" in caplog.text
    assert checks.check_speaker(kit.spk, 256, "lstm", False).dtype == np.float32
    with pytest.raises(FeatureMismatch, match="does not exist"):
        checks.check_speaker(tmp_path / "none.spk.npy", 256, "lstm", False)


def test_content_and_pitch_checks(tmp_path, caplog):
    with pytest.raises(FeatureMismatch, match="whisper"):
        checks.check_content("whisper-ppg", None, False)
    checks.check_content("hubert-soft", None, False)
    folder = tmp_path / "hubert"
    (folder / "s").mkdir(parents=True)
    from prepare.meta import describe

    save_json(folder / ".gvc-feature.json", describe("hubert", "contentvec", {}))
    with pytest.raises(FeatureMismatch, match="contentvec"):
        checks.check_content("hubert-soft", folder / "s" / "u.vec.npy", False)
    with caplog.at_level(logging.WARNING):
        assert checks.resolve_pitch_method("praat", "harvest", False) == "harvest"
    assert "differs" in caplog.text
    assert checks.resolve_pitch_method(None, None, False) == "praat"
    assert checks.resolve_pitch_method("crepe", None, False) == "crepe"
    with pytest.raises(ConfigError, match="rmvpe"):
        checks.resolve_pitch_method("rmvpe", None, False)
    with pytest.raises(ConfigError):
        checks.resolve_pitch_method("praat", "yin", False)


def test_model_and_weight_file_errors(kit, tmp_path):
    plain = _export_tiny(tmp_path / "orig.pth", meta=False)
    with pytest.raises(CheckpointError, match="gvc export --from-grad-svc"):
        Converter.load(plain, hubert_path=kit.hubert, vocoder="griffinlim")
    missing = tmp_path / "nope" / "model.pth"  # the weight errors surface before the model is read
    with pytest.raises(CheckpointError, match="hub.pt"):
        Converter.load(missing, hubert_path=tmp_path / "hub.pt", vocoder="griffinlim")
    with pytest.raises(CheckpointError, match="voc.pth"):
        Converter.load(missing, hubert_path=kit.hubert, vocoder_ckpt=tmp_path / "voc.pth")
    with pytest.raises(ConfigError, match="unknown vocoder"):
        Converter.load(kit.model, load_content=False, vocoder="wavenet")


def test_feature_file_errors(kit, gl, tmp_path):
    short = tmp_path / "short.vec.npy"
    np.save(short, np.zeros((50, 256), np.float32))  # the 2.5 s song has 125 unit frames
    with pytest.raises(FeatureMismatch, match="50 content-unit frames.*125"):
        _convert(gl, kit, vec=short)
    wide = tmp_path / "wide.vec.npy"
    np.save(wide, np.zeros((125, 768), np.float32))
    with pytest.raises(FeatureMismatch, match="768"):
        _convert(gl, kit, vec=wide)
    csv = tmp_path / "p.csv"
    csv.write_text("0m 0s   0,0\n0m 0s  10,220.5\n")
    assert np.array_equal(read_pitch(csv), [0.0, 220.5])
    with pytest.raises(FeatureMismatch, match="3 pitch frames"):
        np.save(tmp_path / "p.npy", np.zeros(3))
        _convert(gl, kit, pit=tmp_path / "p.npy")
    with pytest.raises(ConfigError, match="unknown sampler"):
        gl.decode_settings("heun")
    with pytest.raises(ConfigError, match="profile"):
        gl.convert(kit.song, gl.speaker(kit.spk), spk_path=tmp_path / "z.spk.npy", shift="auto")
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioError, match="silent"):
        _convert(gl, kit, wave=silent)


def test_diverging_sampler_is_a_clear_error(kit, gl, monkeypatch):
    """A sampler that blows up (e.g. `sde` with few steps) stops with a message, not NaN audio."""
    monkeypatch.setattr(gl.model.decoder, "field",
                        lambda mu, mask, spk: (lambda x, t: torch.full_like(x, float("inf"))))
    with pytest.raises(GvcError, match=r"a\.wav: the euler sampler diverged in \d+ steps"):
        _convert(gl, kit)


def test_sampler_options_reach_the_sampler(kit, gl):
    def mel(**options):
        decode = gl.decode_settings("dpm-solver-2", STEPS, seed=7, options=options)
        return gl.convert(kit.song, gl.speaker(kit.spk), spk_path=kit.spk, decode=decode).mel

    base, uniform = mel(), mel(grid="time-uniform")
    assert torch.equal(base, mel(grid="logsnr"))  # the default, named
    assert not torch.allclose(base, uniform)


@pytest.mark.parametrize(("sampler", "options", "match"), [
    ("dpm-solver-2", {"grid": "karras"}, "not valid for dpm-solver-2.*choose one of: logsnr"),
    ("dpm-solver-2", {"order": 2, "bogus": 1}, "bogus"),
    ("euler", {"grid": "logsnr"}, "not valid for euler"),
    ("dpm-solver-2", {"noise": 1, "steps": 4}, "noise, steps: set by gvc itself"),
])
def test_bad_sampler_options_fail_before_compute(gl, sampler, options, match):
    with pytest.raises(ConfigError, match=match):
        gl.decode_settings(sampler, STEPS, options=options)


def test_sampler_option_parsing(kit):
    from gvc.decoders.registry import parse_sampler_options

    assert parse_sampler_options(["grid=time-uniform,t_end=0.01", "order=3", "x=true"]) == {
        "grid": "time-uniform", "t_end": 0.01, "order": 3, "x": True}
    with pytest.raises(ConfigError, match="write key=value"):
        parse_sampler_options(["time-uniform"])
    r = _cli(["--model", kit.model, "--spk", kit.spk, "--wave", kit.song, "--vocoder",
              "griffinlim", "--hubert-model", kit.hubert, "--sampler", "dpm-solver-2",
              "--sampler-opt", "grid=karras"])
    # the bare test app leaves the ConfigError to gvc's handler (exit 2); none of it ran
    assert isinstance(r.exception, ConfigError) and "grid=karras" in str(r.exception)
    assert not kit.song.with_name("a.gvc.wav").exists()
