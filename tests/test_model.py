"""Acoustic model: parity with the original Grad-SVC V2 code, strict loading, batching, training.

Parity reference: `../shared/fixtures/gradsvc_v2_small` (random weights, small widths), produced by
PlayVoice/Grad-SVC `20230920-V2-96`. Tolerance: f0_coarse exact, other tensors
max|ours - ref| <= 1e-4 * max|ref|.
"""

from __future__ import annotations

import pytest
import torch

from gvc.config import load_config
from gvc.decoders.samplers import sample_dpm_solver, sample_euler, sample_ml
from gvc.errors import CheckpointError, ConfigError
from gvc.models import GradSVC, f0_to_coarse, load_acoustic_state, read_checkpoint

TOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small tensors: intra-op threads cost more than they save, and thrash on a busy host."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max |ours - ref| / max |ref|."""
    return ((ours - ref).abs().max() / ref.abs().max()).item()


@pytest.fixture(scope="module")
def v2(fixtures_dir):
    folder = fixtures_dir / "gradsvc_v2_small"
    cfg = load_config(folder / "config.yaml")
    model = GradSVC.from_config(cfg).eval()
    ckpt = read_checkpoint(folder / "gvc.pth")
    load_acoustic_state(model, ckpt["model"], folder / "gvc.pth")
    case = torch.load(folder / "case.pt", map_location="cpu", weights_only=False)
    with torch.no_grad():
        state = model.encode_full(case["vec"], case["pit"], case["spk"], torch.tensor([case["T"]]))
    return model, case, state, ckpt["model"]


# ---------------------------------------------------------------- parity
def test_f0_coarse_exact(v2):
    _, case, _, _ = v2
    assert torch.equal(f0_to_coarse(case["pit"]), case["f0_coarse"])


def test_f0_coarse_reference_bins():
    hz = torch.tensor([0.0, 30.0, 50.0, 55.0, 100.0, 220.0, 440.0, 880.0, 1100.0, 3000.0])
    assert f0_to_coarse(hz).tolist() == [1, 1, 1, 3, 20, 60, 122, 217, 255, 255]
    assert f0_to_coarse(hz.double()).dtype == torch.int64


def test_encoder_mu_parity(v2):
    _, case, state, _ = v2
    assert torch.equal(state.mask, case["mask"])
    assert rel_err(state.mu, case["mu"]) <= TOL


@pytest.mark.parametrize("t", ["0.9", "0.5", "0.1"])
def test_unet_score_parity(v2, t):
    model, case, state, _ = v2
    with torch.no_grad():
        score = model.decoder.field(case["mu"], case["mask"], state.spk_emb)(
            case["x_t"], torch.full((1,), float(t)))
    assert rel_err(score, case["scores"][t]) <= TOL


def test_dpm_solver_1_parity(v2):
    model, case, state, _ = v2
    with torch.no_grad():
        out = sample_dpm_solver(model.decoder.field(case["mu"], case["mask"], state.spk_emb),
                                case["z"], case["mu"], case["mask"], 10,
                                schedule=model.decoder.schedule, order=1)
    assert rel_err(out, case["dpm_solver1_10steps"]) <= TOL


def test_euler_parity(v2):
    model, case, state, _ = v2
    with torch.no_grad():
        out = sample_euler(model.decoder.field(case["mu"], case["mask"], state.spk_emb),
                           case["z"], case["mu"], case["mask"], 10, schedule=model.decoder.schedule)
    assert rel_err(out, case["pf_ode_euler_10steps"]) <= TOL


# ---------------------------------------------------------------- strict loading
def test_strict_load_reports_missing_extra_and_shape(v2, fixtures_dir):
    _, _, _, sd = v2
    fresh = GradSVC.from_config(load_config(fixtures_dir / "gradsvc_v2_small" / "config.yaml"))
    bad = dict(sd)
    del bad["encoder.speaker.classifier.3.weight_g"]
    bad["decoder.estimator.extra.weight"] = torch.zeros(1)
    bad["pit_emb.weight"] = torch.zeros(255, 64)
    with pytest.raises(CheckpointError) as err:
        load_acoustic_state(fresh, bad, "bad.pth")
    msg = str(err.value)
    assert "bad.pth" in msg and "\n" not in msg
    assert "1 missing: encoder.speaker.classifier.3.weight_g" in msg
    assert "1 unexpected: decoder.estimator.extra.weight" in msg
    assert "pit_emb.weight (255, 64) vs model (256, 64)" in msg
    # nothing was loaded: the fresh model still differs from the checkpoint
    assert not torch.equal(fresh.spk_emb.weight, sd["spk_emb.weight"])


def test_checkpoint_of_other_width_is_rejected(v2):
    _, _, _, sd = v2
    wide = GradSVC(n_enc_channels=64, filter_channels=128, dec_dim=64)
    with pytest.raises(CheckpointError, match="shape mismatches: decoder.estimator"):
        load_acoustic_state(wide, sd, "gvc.pth")


def test_read_checkpoint_forms(v2, tmp_path):
    _, _, _, sd = v2
    flat = tmp_path / "flat.pth"
    torch.save({"spk_emb.bias": sd["spk_emb.bias"]}, flat)
    assert set(read_checkpoint(flat)["model"]) == {"spk_emb.bias"}
    odd = tmp_path / "odd.pth"
    torch.save({"weights": [1, 2]}, odd)
    with pytest.raises(CheckpointError, match="no 'model' state dict"):
        read_checkpoint(odd)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_checkpoint(junk)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, 33_886_191),  # V2-96
    ({"dec_dim": 64}, 24_698_575),  # V2-64
    ({"version": "v3-rope"}, 33_868_911),  # V3-CFM-RoPE (no emb_rel_k/v)
    ({"version": "v1", "filter_channels": 768, "dec_dim": 64}, 27_465_871),  # V1
])
def test_published_parameter_counts(overrides, expected):
    with torch.device("meta"):
        model = GradSVC(**overrides)
    assert sum(p.numel() for p in model.parameters()) == expected
    if overrides.get("version") == "v1":
        assert "encoder.prenet.norm_layers.0.gamma" in model.state_dict()


# ---------------------------------------------------------------- inference
def _tiny(**kw) -> GradSVC:
    torch.manual_seed(0)
    args = dict(n_embs=16, n_enc_channels=32, filter_channels=64, dec_dim=16, grl_channels=32)
    model = GradSVC(**(args | kw)).eval()
    with torch.no_grad():  # zero-initialised parts would hide the prenet and the attention
        torch.nn.init.normal_(model.encoder.prenet.proj.weight, std=0.2)
        for name, p in model.named_parameters():
            if name.endswith(".g"):
                p.fill_(0.02)
    return model


def _inputs(b: int, t: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    vec = torch.randn(b, t, 256, generator=g)
    pit = 150 + 100 * torch.rand(b, t, generator=g)
    pit[:, :3] = 0.0
    spk = torch.randn(b, 256, generator=g)
    return vec, pit, spk


def test_ml_batch_equals_items_on_model():
    """Batch > 1 works (the original crashed) and each item equals its solo run."""
    model = _tiny()
    vec, pit, spk = _inputs(2, 24)
    lengths = torch.tensor([24, 24])
    with torch.no_grad():
        state = model.encode_full(vec, pit, spk, lengths)
    noises = [torch.randn(2, 100, 24) for _ in range(3)]
    it = iter(noises)
    with torch.no_grad():
        batch = sample_ml(model.decoder.field(state.mu, state.mask, state.spk_emb), state.mu,
                          state.mu, state.mask, 4, schedule=model.decoder.schedule,
                          noise=lambda x: next(it))
        for b in range(2):
            solo_it = iter(n[b:b + 1] for n in noises)
            sl = slice(b, b + 1)
            solo = sample_ml(model.decoder.field(state.mu[sl], state.mask[sl], state.spk_emb[sl]),
                             state.mu[sl], state.mu[sl], state.mask[sl], 4,
                             schedule=model.decoder.schedule, noise=lambda x, i=solo_it: next(i))
            assert rel_err(solo, batch[sl]) < 1e-5


def test_infer_seeded_padded_and_any_length():
    model = _tiny()
    vec, pit, spk = _inputs(2, 30)  # 30 is not a multiple of 4: padded inside, trimmed back
    lengths = torch.tensor([30, 21])

    def run(seed: int, sampler: str = "ml"):
        return model.infer(vec, pit, spk, lengths, sampler=sampler, steps=3,
                           generator=torch.Generator().manual_seed(seed))

    a, b, c = run(7), run(7), run(8)
    assert a.mel.shape == (2, 100, 30) and a.mu.shape == (2, 100, 30)
    assert torch.equal(a.mel, b.mel) and not torch.allclose(a.mel, c.mel)
    assert (a.mel[1, :, 21:] == 0).all() and (a.mask[1, :, 21:] == 0).all()
    assert torch.isfinite(run(1, "dpm-solver-3").mel).all()
    with pytest.raises(ConfigError, match="unknown sampler"):
        run(1, "heun")


# ---------------------------------------------------------------- training
def _mel(b: int, t: int) -> torch.Tensor:
    f = torch.arange(100)[:, None] * 0.1
    return (2 * torch.sin(f + torch.linspace(0, 6, t)[None])).repeat(b, 1, 1)


def test_masked_losses_ignore_padding():
    """With masked prenet statistics, an item's losses do not depend on its padding."""
    model = _tiny(prenet_stats="masked")
    vec, pit, spk = _inputs(1, 20)
    mel = _mel(1, 20)
    pad = [torch.nn.functional.pad(x, p) for x, p in
           ((vec, (0, 0, 0, 8)), (pit, (0, 8)), (mel, (0, 8)))]
    lengths = torch.tensor([20])
    with torch.no_grad():
        a = model.compute_loss(vec, pit, spk, mel, lengths, skip_diff=True)
        b = model.compute_loss(pad[0], pit=pad[1], spk=spk, mel=pad[2], lengths=lengths,
                               skip_diff=True)
        for name in ("prior", "ssim", "spk"):
            assert a[name].item() == pytest.approx(b[name].item(), rel=1e-5)
        assert a["diff"].item() == 0.0
        # Grad-SVC's statistics include the padding, so mu changes (kept for parity).
        exact = _tiny(prenet_stats="padded")
        mu_a = exact.encode(vec, pit, spk, lengths)[0]
        mu_b = exact.encode(pad[0], pad[1], spk, lengths)[0][..., :20]
        assert not torch.allclose(mu_a, mu_b, atol=1e-4)


def test_short_items_do_not_crash():
    """Grad-SVC issue #5: utterances shorter than the decoder segment."""
    model = _tiny()
    vec, pit, spk = _inputs(2, 12)
    losses = model.compute_loss(vec, pit, spk, _mel(2, 12), torch.tensor([12, 7]),
                                segment_frames=16, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(sum(losses.values()))
    assert losses["diff"].item() > 0


def test_tiny_model_overfits_one_batch():
    model = _tiny().train()
    vec, pit, spk = _inputs(2, 32)
    mel, lengths = _mel(2, 32), torch.tensor([32, 24])

    def probe():
        model.eval()
        with torch.no_grad():
            out = model.compute_loss(vec, pit, spk, mel, lengths, segment_frames=16,
                                     mu_noise_std=0.0, generator=torch.Generator().manual_seed(9))
        model.train()
        return out

    start = probe()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(60):
        loss = model.compute_loss(vec, pit, spk, mel, lengths, segment_frames=16, generator=g)
        opt.zero_grad()
        sum(loss.values()).backward()
        opt.step()
    end = probe()
    assert end["prior"].item() < 1.1 < start["prior"].item()  # floor 0.5 * ln(2 pi) = 0.919
    assert end["ssim"].item() < 0.3 * start["ssim"].item()
    assert end["diff"].item() < 0.5 * start["diff"].item()
    assert sum(end.values()).item() < 0.5 * sum(start.values()).item()


def test_freeze_for_finetune():
    model = _tiny()
    frozen = model.freeze_for_finetune()
    assert "encoder.prenet" in frozen
    assert not any(p.requires_grad for p in model.encoder.prenet.parameters())
    assert all(p.requires_grad for p in model.decoder.parameters())


def test_linear_attention_matches_einsum_definition():
    from gvc.models.unet import LinearAttention

    torch.manual_seed(0)
    attn = LinearAttention(8)
    x = torch.randn(2, 8, 6, 4)
    qkv = attn.to_qkv(x).reshape(2, 3, 4, 32, 24)  # (qkv heads c) channel order
    q, k, v = qkv[:, 0], qkv[:, 1].softmax(dim=-1), qkv[:, 2]
    context = torch.einsum("bhdn,bhen->bhde", k, v)
    out = torch.einsum("bhde,bhdn->bhen", context, q).reshape(2, 128, 6, 4)
    assert torch.allclose(attn(x), attn.to_out(out), atol=1e-6)


def test_rotary_depends_on_relative_position_only():
    from gvc.models.attention import rotary

    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    seq_q, seq_k = q.expand(1, 1, 10, 16), k.expand(1, 1, 10, 16)
    rq, rk = rotary(seq_q), rotary(seq_k)
    assert torch.equal(rq[..., 8:], seq_q[..., 8:])  # only the first half of channels turns
    dots = rq[0, 0] @ rk[0, 0].T  # [10, 10]
    assert torch.allclose(dots[2, 5], dots[4, 7], atol=1e-5)
    assert torch.allclose(rq.norm(dim=-1), seq_q.norm(dim=-1), atol=1e-5)


@pytest.mark.parametrize("version", ["v1", "v3-rope"])
def test_other_encoder_versions_run(version):
    model = _tiny(version=version)
    vec, pit, spk = _inputs(2, 16)
    mu, mask = model.encode(vec, pit, spk, torch.tensor([16, 10]))
    assert mu.shape == (2, 100, 16) and torch.isfinite(mu).all()
    assert (mu[1, :, 10:] == 0).all()
