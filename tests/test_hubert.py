"""HuBERT-Soft: fixture parity, frame counts, key mapping, strict loading, windows and batches."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from gvc.errors import AudioError, CheckpointError, ConfigError
from gvc.synthetic_singing import sing, singer_voice
from hubert import (
    ContentEncoder,
    HubertSoft,
    WindowConfig,
    load_content_encoder,
    save_random_checkpoint,
)
from hubert.checkpoint import (
    expected_bshall_shapes,
    load_net,
    read_bshall_state,
    save_checkpoint,
)
from hubert.keymap import bshall_to_ours, ours_to_bshall
from hubert.model import HubertSoftNet
from hubert.windows import plan_batches, plan_spans

FIXTURE = "hubert_soft_small"


def _rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    return ((got - ref).abs().max() / ref.abs().max()).item()


@pytest.fixture(scope="module")
def case(fixtures_dir: Path) -> dict:
    return torch.load(fixtures_dir / FIXTURE / "case.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def ckpt(fixtures_dir: Path) -> Path:
    return fixtures_dir / FIXTURE / "hubert-soft-small.pt"


@pytest.fixture(scope="module")
def encoder(ckpt: Path) -> HubertSoft:
    return load_content_encoder(ckpt)


@pytest.fixture(scope="module")
def song30() -> torch.Tensor:
    """30 s of synthetic singing at 16 kHz (with pauses, so the signal is not stationary)."""
    return torch.from_numpy(sing(singer_voice(1), 30.0, sr=16000, seed=3))


# --- parity with the original code -------------------------------------------------------------


def test_fixture_parity_windowed_and_single_pass(case: dict, encoder: HubertSoft) -> None:
    ref = case["units"]
    units = encoder.units(case["wav"])
    assert units.shape == ref.shape == (case["wav"].shape[0] // 320, 256)
    assert units.dtype == torch.float32
    assert _rel_err(units, ref) <= 1e-3
    with torch.no_grad():  # transformers' HubertModel.forward, unchanged
        single = encoder.net(case["wav"][None])[0]
    assert _rel_err(single, ref) <= 1e-3


def test_published_layout_size() -> None:
    """12 layers give the 166 tensors, 94,594,176 values of `hubert-soft-0d54a1f4.pt`."""
    shapes = expected_bshall_shapes(HubertSoftNet(12))
    shapes["masked_spec_embed"] = torch.Size([768])
    shapes["label_embedding.weight"] = torch.Size([100, 256])
    assert len(shapes) == 166
    assert sum(s.numel() for s in shapes.values()) == 94_594_176
    assert shapes["encoder.layers.11.self_attn.in_proj_weight"] == (2304, 768)
    assert shapes["positional_embedding.conv.weight_g"] == (1, 1, 128)
    assert shapes["positional_embedding.conv.weight_v"] == (768, 48, 128)


@pytest.mark.parametrize(
    ("samples", "frames"), [(16000, 50), (16320, 51), (16319, 50), (400, 1), (319, 0)]
)
def test_frame_count(encoder: HubertSoft, samples: int, frames: int) -> None:
    wav = torch.from_numpy(sing(singer_voice(0), samples / 16000, sr=16000, seed=1))[:samples]
    units = encoder.units(wav)
    assert units.shape == (frames, 256)
    assert encoder.num_frames(samples) == frames


# --- key mapping and checkpoint files ----------------------------------------------------------


def test_keymap_round_trip(ckpt: Path) -> None:
    bshall = read_bshall_state(ckpt)
    ours = bshall_to_ours(bshall)
    assert ours["hubert.encoder.layers.0.attention.k_proj.weight"].equal(
        bshall["encoder.layers.0.self_attn.in_proj_weight"][768:1536]
    )
    back = ours_to_bshall(ours)
    assert back.keys() == bshall.keys()
    assert all(back[k].equal(bshall[k]) for k in bshall)
    net = load_net(ckpt)
    state = net.state_dict()
    again = bshall_to_ours(ours_to_bshall(state))
    assert again.keys() == state.keys()
    assert all(again[k].equal(state[k]) for k in state)
    with pytest.raises(KeyError):
        bshall_to_ours({**bshall, "encoder.layers.0.extra.weight": torch.zeros(1)})


def test_file_round_trip_keeps_training_only_tensors(ckpt: Path, tmp_path: Path) -> None:
    original = torch.load(ckpt, map_location="cpu", weights_only=True)
    written = save_checkpoint(load_net(ckpt), tmp_path / "copy.pt")
    copy_ = torch.load(written, map_location="cpu", weights_only=True)
    assert copy_.keys() == original.keys()
    assert "module.masked_spec_embed" in copy_ and "module.label_embedding.weight" in copy_
    for key, value in original.items():
        assert copy_[key].dtype == torch.float32
        assert copy_[key].equal(value.float()), key


def test_random_checkpoint_is_seeded_and_loads(tmp_path: Path) -> None:
    state = torch.get_rng_state()
    a = save_random_checkpoint(tmp_path / "a.pt", num_layers=1, seed=5)
    b = save_random_checkpoint(tmp_path / "b.pt", num_layers=1, seed=5)
    assert torch.get_rng_state().equal(state)
    sa, sb = (torch.load(p, weights_only=True) for p in (a, b))
    assert len(sa) == 34 and all(k.startswith("module.") for k in sa)
    assert all(sa[k].equal(sb[k]) for k in sa)
    assert load_net(a).num_layers == 1
    assert not sa["module.proj.weight"].equal(
        torch.load(
            save_random_checkpoint(tmp_path / "c.pt", num_layers=1, seed=6), weights_only=True
        )["module.proj.weight"]
    )


def _edited(ckpt: Path, tmp_path: Path, edit) -> Path:
    state = dict(torch.load(ckpt, map_location="cpu", weights_only=True))
    edit(state)
    path = tmp_path / "edited.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda s: s.pop("module.norm.bias"), ["missing", "norm.bias"]),
        (
            lambda s: s.update({"module.encoder.layers.0.gate.weight": torch.zeros(3)}),
            ["unexpected", "layers.0.gate.weight"],
        ),
        (
            lambda s: s.update({"module.proj.weight": torch.zeros(256, 700)}),
            ["shape", "proj.weight", "(256, 700)", "(256, 768)"],
        ),
        (
            lambda s: s.update({"module.encoder.layers.2.norm1.bias": torch.zeros(768)}),
            ["layer(s) [1] missing"],
        ),
        (lambda s: s.update({"proj.bias": s.pop("module.proj.bias")}), ["mix", "proj.bias"]),
    ],
    ids=["missing-key", "extra-key", "wrong-shape", "layer-gap", "mixed-prefix"],
)
def test_strict_load_failures(ckpt: Path, tmp_path: Path, edit, words: list[str]) -> None:
    path = _edited(ckpt, tmp_path, edit)
    with pytest.raises(CheckpointError) as info:
        load_content_encoder(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message
    assert "\n" not in message


def test_training_only_tensors_are_optional_and_ignored(
    ckpt: Path, tmp_path: Path, case: dict
) -> None:
    def drop(s: dict) -> None:
        s.pop("module.masked_spec_embed")
        s["module.label_embedding.weight"] = torch.randn(50, 256)  # another label count

    units = load_content_encoder(_edited(ckpt, tmp_path, drop)).units(case["wav"][:16000])
    ref = load_content_encoder(ckpt).units(case["wav"][:16000])
    assert units.equal(ref)


def test_missing_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        load_content_encoder(tmp_path / "hubert_pretrain" / "hubert-soft-0d54a1f4.pt")
    message = str(info.value)
    assert "not found" in message and "hubert-soft-0d54a1f4.pt" in message
    assert "bshall/hubert v0.1" in message and "releases" in message
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_content_encoder(junk)
    torch.save({"model": {"a": torch.zeros(1)}}, tmp_path / "nested.pt")
    with pytest.raises(CheckpointError, match="flat state dict"):
        load_content_encoder(tmp_path / "nested.pt")


# --- windows and batches -----------------------------------------------------------------------


def test_window_plan_tiles_every_frame() -> None:
    cfg = WindowConfig(chunk_seconds=2.0, context_seconds=1.3)
    for total in (1, 229, 230, 231, 999, 1500):
        spans = plan_spans(total, cfg)
        kept = [f for s in spans for f in range(s.keep_start, s.keep_end)]
        assert kept == list(range(total))
        for s in spans:
            assert 0 <= s.start <= s.keep_start < s.keep_end <= s.end <= total
            assert s.frames == min(total, cfg.span_frames)
            assert s.keep_start - s.start >= min(s.keep_start, cfg.context_frames)
            assert s.end - s.keep_end >= min(total - s.keep_end, cfg.context_frames)
    with pytest.raises(ConfigError):
        WindowConfig(chunk_seconds=0.001)


def test_windowed_equals_full_pass(ckpt: Path, song30: torch.Tensor) -> None:
    """Windows of 4 s (+1.5 s context) equal one pass when nothing reaches beyond the context.

    Everything in HuBERT-Soft is local except the conv GroupNorm (handled exactly by whole-file
    statistics) and self-attention. Random weights attend almost uniformly over all frames, so
    here the attention's residual branch is switched off (out_proj = 0); the test then checks
    the frame grid, the statistics, the positional-conv context and the stitching.
    """
    net = load_net(ckpt)
    with torch.no_grad():
        for layer in net.hubert.encoder.layers:
            layer.attention.out_proj.weight.zero_()
            layer.attention.out_proj.bias.zero_()
        full = net(song30[None])[0]
    windows = WindowConfig(chunk_seconds=4.0, context_seconds=1.5)
    assert len(plan_spans(full.shape[0], windows)) == 8
    units = HubertSoft(net, windows=windows).units(song30)
    assert units.shape == full.shape == (1500, 256)
    assert _rel_err(units, full) <= 1e-3


def test_windowed_attention_truncation_is_small(encoder: HubertSoft, song30: torch.Tensor) -> None:
    """With real (global) attention, 10 s + 2 s windows stay close to one pass (here ~1%).

    The difference is not zero (attention beyond the context is lost) and stays bounded.
    """
    wav = song30[: 16 * 16000]
    with torch.no_grad():
        full = encoder.net(wav[None])[0]
    enc = HubertSoft(encoder.net, windows=WindowConfig(chunk_seconds=10.0, context_seconds=2.0))
    units = enc.units(wav)
    assert units.shape == full.shape == (800, 256)
    assert 0 < _rel_err(units, full) <= 5e-2


def test_batch_equals_one_by_one(ckpt: Path) -> None:
    """Windows of several files share batches (equal lengths, and mixed lengths with padding
    plus a frame mask) and still give each file's own units."""
    windows = WindowConfig(
        chunk_seconds=1.0, context_seconds=0.3, max_batch=4, max_batch_seconds=8.0, max_padding=0.5
    )
    enc = HubertSoft(load_net(ckpt), windows=windows)
    # 2.3 s and 2.6 s: 3 windows of 1.6 s each; 1.5 s, 1.2 s: one window each; 100 samples: 0 frames
    lengths = [36_800, 24_000, 41_600, 100, 19_200]
    waves = [
        torch.from_numpy(sing(singer_voice(i), n / 16000, sr=16000, seed=i))[:n]
        for i, n in enumerate(lengths)
    ]
    seen: list[tuple[set[int], set[int]]] = []
    run_batch = enc._run_batch

    def spy(batch, *args):
        seen.append(({i for i, _ in batch}, {span.frames for _, span in batch}))
        return run_batch(batch, *args)

    enc._run_batch = spy
    batched = enc.units_batch(waves)
    enc._run_batch = run_batch
    assert any(len(files) > 1 and len(sizes) == 1 for files, sizes in seen)
    assert any(len(sizes) > 1 for _, sizes in seen)  # a padded, masked batch ran
    assert [u.shape[0] for u in batched] == [n // 320 for n in lengths]
    for wave, got in zip(waves, batched, strict=True):
        single = enc.units(wave)
        assert got.shape == single.shape
        if single.numel():
            assert _rel_err(got, single) <= 1e-5


def test_batch_plan_respects_limits() -> None:
    cfg = WindowConfig(max_batch=3, max_batch_seconds=14.0, max_padding=0.25)  # 700 frames
    frames = [100, 300, 120, 100, 800, 90, 100, 280, 230, 80]
    batches = plan_batches(frames, cfg)
    assert sorted(i for b in batches for i in b) == list(range(len(frames)))
    assert batches[0] == [4]  # longer than the budget: alone
    assert [1, 7] in batches  # 2 · 300 frames fit the budget; 3 · 300 do not
    assert [2, 0, 3] in batches  # 100 >= 0.75 · 120, and 230 must not join them
    for batch in batches:
        longest = frames[batch[0]]
        assert len(batch) <= 3
        assert longest == max(frames[i] for i in batch)
        assert len(batch) == 1 or len(batch) * longest <= 700
        assert all(frames[i] >= 0.75 * longest for i in batch)
    assert all(len(b) == 1 for b in plan_batches([5, 4, 3], WindowConfig(max_padding=0.0)))


def test_interface_and_input_checks(encoder: HubertSoft) -> None:
    assert isinstance(encoder, ContentEncoder)
    assert (encoder.sample_rate, encoder.hop, encoder.dim) == (16000, 320, 256)
    info = encoder.describe()
    json.dumps(info)
    assert info["name"] == "hubert-soft"
    assert (
        info["settings"]["num_layers"] == 1
        and info["settings"]["checkpoint"] == "hubert-soft-small.pt"
    )
    assert len(info["settings"]["sha256_8"]) == 8
    with pytest.raises(AudioError, match="shape"):
        encoder.units(torch.zeros(2, 16000))
    bad = torch.zeros(16000)
    bad[5] = float("nan")
    with pytest.raises(AudioError, match="NaN"):
        encoder.units(bad)


def test_eval_mode_is_deterministic(case: dict, encoder: HubertSoft) -> None:
    """No dropout or masking at inference, even if someone put the net in training mode."""
    enc = HubertSoft(copy.deepcopy(encoder.net))
    enc.net.train()
    wav = case["wav"][:32000]
    first = enc.units(wav)
    assert first.equal(enc.units(wav))
    assert first.equal(encoder.units(wav))
