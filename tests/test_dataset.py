"""Training index (Grad-SVC's format, seeded split) and `gvc check`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gvc.dataset.check import check_tree
from gvc.dataset.index import build_index, read_index
from gvc.errors import DataLayoutError
from gvc.layout import DataTree, Feature, Utterance
from prepare.meta import META_NAME


def fake_tree(root, singers=3, utts=5, seconds=3.0) -> DataTree:
    """Feature files with Grad-SVC's shapes and length conventions (no audio decoding needed)."""
    tree = DataTree(root)
    rng = np.random.default_rng(0)
    t = int(seconds * 100)
    for s in range(singers):
        for u in range(utts):
            utt = Utterance(f"s{s}", f"u{u}")
            for f in Feature:
                tree.path(f, utt).parent.mkdir(parents=True, exist_ok=True)
            tree.path(Feature.WAVES_32K, utt).write_bytes(b"")
            tree.path(Feature.WAVES_16K, utt).write_bytes(b"")
            torch.save(torch.randn(100, t), tree.path(Feature.MEL, utt))
            np.save(tree.path(Feature.PITCH, utt), np.abs(rng.normal(200, 20, t + 3)))
            np.save(
                tree.path(Feature.HUBERT, utt), rng.normal(size=(t // 2, 256)).astype(np.float32)
            )
            np.save(tree.path(Feature.SPEAKER, utt), rng.normal(size=256).astype(np.float32))
    return tree


def parse_like_gradsvc(path):
    """Grad-SVC's loader: read lines, split on '|', four paths."""
    with open(path, encoding="utf-8") as f:
        return [line.strip().split("|") for line in f.readlines()]


def test_index_format_and_split(tmp_path):
    tree = fake_tree(tmp_path / "data_gvc")
    res = build_index(tree, tmp_path / "files", valid_count=4, seed=1)
    assert len(res.valid) == 4 and len(res.train) == 11
    assert len({u.singer for u in res.valid}) == 3  # spread over singers
    rows = parse_like_gradsvc(res.train_path) + parse_like_gradsvc(res.valid_path)
    assert len(rows) == 15 and all(len(r) == 4 for r in rows)
    for mel, vec, pit, spk in rows:
        assert (
            mel.endswith(".mel.pt")
            and vec.endswith(".vec.npy")
            and pit.endswith(".pit.npy")
            and spk.endswith(".spk.npy")
        )
        assert all(Path(p).is_file() for p in (mel, vec, pit, spk))
    assert len(read_index(res.valid_path)) == 4
    again = build_index(tree, tmp_path / "files2", valid_count=4, seed=1)
    assert again.valid == res.valid and again.train == res.train
    other = build_index(tree, tmp_path / "files3", valid_count=4, seed=2)
    assert other.valid != res.valid or other.train != res.train


def test_index_skips_incomplete_and_fails_when_empty(tmp_path):
    tree = fake_tree(tmp_path / "d", singers=1, utts=3)
    tree.path(Feature.HUBERT, Utterance("s0", "u1")).unlink()
    res = build_index(tree, tmp_path / "files", valid_count=1)
    assert [(u.name, a) for u, a in res.missing] == [("u1", ["hubert"])]
    assert len(res.train) + len(res.valid) == 2
    with pytest.raises(DataLayoutError, match="extract-hubert"):
        build_index(DataTree(tmp_path / "empty"), tmp_path / "f")


def test_check_clean_tree(tmp_path):
    res = check_tree(fake_tree(tmp_path / "d", singers=2, utts=2))
    assert res.ok, res.problems
    assert set(res.singers) == {"s0", "s1"} and res.singers["s0"].files == 2
    assert abs(res.singers["s0"].seconds[0] - 3.0) < 1e-6


def test_check_finds_each_seeded_problem(tmp_path):
    tree = fake_tree(tmp_path / "d", singers=2, utts=4)
    u = [Utterance("s0", f"u{i}") for i in range(4)] + [Utterance("s1", "u0")]
    tree.path(Feature.SPEAKER, u[0]).unlink()  # missing feature
    mel = torch.randn(100, 300)
    mel[0, 0] = float("nan")
    torch.save(mel, tree.path(Feature.MEL, u[1]))  # NaN
    np.save(tree.path(Feature.PITCH, u[2]), np.ones(200))  # length disagreement
    torch.save(torch.randn(100, 150), tree.path(Feature.MEL, u[3]))  # too short (and lengths)
    np.save(tree.path(Feature.PITCH, u[3]), np.ones(153))
    np.save(tree.path(Feature.HUBERT, u[3]), np.zeros((75, 256), np.float32))
    for folder, extractor in (
        (tree.folder(Feature.SPEAKER), "lstm"),
        (tree.singer_folder, "resemblyzer"),
    ):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / META_NAME).write_text(
            json.dumps({"feature": "speaker", "extractor": extractor, "settings": {}})
        )
    res = check_tree(tree)
    text = [(p.where, p.what, p.blocking) for p in res.problems]
    assert not res.ok
    assert any("s0/u0" in w and "no speaker" in what for w, what, _ in text)
    assert any("u1.mel.pt" in w and "NaN" in what for w, what, _ in text)
    assert any("s0/u2" in w and "pitch has 200" in what for w, what, _ in text)
    assert any("s0/u3" in w and "training crop" in what and not b for w, what, b in text)
    assert any("singer means made by resemblyzer" in what for _, what, _ in text)
    assert all(p.fix for p in res.problems)
