"""extract-hubert and extract-speaker over a data tree, then the index and the check on it."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import soundfile as sf

from gvc.dataset.check import check_tree
from gvc.dataset.index import build_index
from gvc.errors import CheckpointError, FeatureMismatch
from gvc.layout import DataTree, Feature
from gvc.synthetic_singing import write_corpus
from prepare import steps
from tests.helpers import run_gvc


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("feat")
    write_corpus(root / "data_raw", singers=2, utterances=2, seconds=3.0)
    tree = DataTree(root / "data_gvc")
    steps.resample(
        root / "data_raw",
        {16000: tree.folder(Feature.WAVES_16K), 32000: tree.folder(Feature.WAVES_32K)},
    )
    steps.extract_mel(tree.folder(Feature.WAVES_32K), tree.folder(Feature.MEL))
    steps.extract_f0(tree.folder(Feature.WAVES_16K), tree.folder(Feature.PITCH))
    from hubert import save_random_checkpoint

    model = save_random_checkpoint(
        root / "hubert_pretrain" / "hubert-soft-0d54a1f4.pt", num_layers=1
    )
    return root, tree, model


def test_hubert_units_over_the_tree(prepared):
    root, tree, model = prepared
    rep = steps.extract_hubert(
        tree.folder(Feature.WAVES_16K), tree.folder(Feature.HUBERT), model=model
    )
    assert rep.ok and rep.done == 4
    for utt in tree.utterances(Feature.WAVES_16K):
        units = np.load(tree.path(Feature.HUBERT, utt))
        n16 = sf.info(str(tree.path(Feature.WAVES_16K, utt))).frames
        assert units.dtype == np.float32 and units.shape == (n16 // 320, 256)
    again = steps.extract_hubert(
        tree.folder(Feature.WAVES_16K), tree.folder(Feature.HUBERT), model=model
    )
    assert again.done == 0 and again.skipped == 4


def test_missing_hubert_model_is_one_clear_error(prepared, tmp_path):
    _, tree, _ = prepared
    with pytest.raises(CheckpointError, match="hubert-soft-0d54a1f4.pt") as err:
        steps.extract_hubert(
            tree.folder(Feature.WAVES_16K),
            tmp_path / "h",
            model=tmp_path / "hubert-soft-0d54a1f4.pt",
        )
    assert "bshall" in str(err.value)
    assert not (tmp_path / "h").exists() or not any((tmp_path / "h").rglob("*.npy"))


def test_speaker_embeddings_means_and_profiles(prepared):
    _, tree, _ = prepared
    rep = steps.extract_speaker(
        tree.folder(Feature.WAVES_16K),
        tree.folder(Feature.SPEAKER),
        tree.singer_folder,
        pitch=tree.folder(Feature.PITCH),
    )
    assert rep.ok and rep.done == 4
    utt_files = sorted(tree.folder(Feature.SPEAKER).rglob("*.spk.npy"))
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in utt_files}
    for singer in ("singer00", "singer01"):
        vecs = [np.load(p) for p in (tree.folder(Feature.SPEAKER) / singer).glob("*.spk.npy")]
        mean = np.load(tree.singer_path(singer))
        assert mean.dtype == np.float32 and mean.shape == (256,)
        assert np.allclose(mean, np.mean(vecs, axis=0), atol=1e-6)
        prof = (tree.singer_folder / f"{singer}.profile.json").read_text()
        assert '"utterance_count": 2' in prof and '"median_f0_hz"' in prof
    # a second run changes nothing: per-utterance embeddings are never overwritten by the mean
    steps.extract_speaker(
        tree.folder(Feature.WAVES_16K),
        tree.folder(Feature.SPEAKER),
        tree.singer_folder,
        pitch=tree.folder(Feature.PITCH),
    )
    assert digests == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in utt_files}
    with pytest.raises(CheckpointError, match="speaker_pretrain/best_model.pth.tar"):
        steps.extract_speaker(
            tree.folder(Feature.WAVES_16K),
            tree.folder(Feature.SPEAKER),
            tree.singer_folder,
            encoder="lstm",
            model_dir=tree.root / "nowhere",
        )
    from speaker import save_random_checkpoint

    lstm_dir = save_random_checkpoint(tree.root / "lstm", lstm_dim=32)
    with pytest.raises(FeatureMismatch, match="--force"):  # never mix two embedding spaces
        steps.extract_speaker(
            tree.folder(Feature.WAVES_16K),
            tree.folder(Feature.SPEAKER),
            tree.singer_folder,
            encoder="lstm",
            model_dir=lstm_dir,
        )


def test_index_and_check_on_a_real_tree(prepared):
    root, tree, model = prepared
    steps.extract_hubert(tree.folder(Feature.WAVES_16K), tree.folder(Feature.HUBERT), model=model)
    steps.extract_speaker(
        tree.folder(Feature.WAVES_16K),
        tree.folder(Feature.SPEAKER),
        tree.singer_folder,
        pitch=tree.folder(Feature.PITCH),
    )
    res = check_tree(tree)
    assert res.ok, res.problems
    index = build_index(tree, root / "files", valid_count=2)
    assert len(index.train) == 2 and len(index.valid) == 2


def test_cli_single_file_and_average(prepared, tmp_path):
    root, tree, model = prepared
    wav = tree.path(Feature.WAVES_16K, tree.utterances(Feature.WAVES_16K)[0])
    r = run_gvc(
        "extract-hubert",
        "--wave",
        str(wav),
        "--vec",
        "x.vec.npy",
        "--model",
        str(model),
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert np.load(tmp_path / "x.vec.npy").shape == (150, 256)
    r = run_gvc("extract-speaker", "--wave", str(wav), "--spk", "x.spk.npy", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert np.load(tmp_path / "x.spk.npy").shape == (256,)
    r = run_gvc(
        "extract-speaker",
        "--average",
        str(tree.folder(Feature.SPEAKER) / "singer00"),
        "--spk",
        "mean.spk.npy",
        cwd=tmp_path,
    )
    assert r.returncode == 0 and np.load(tmp_path / "mean.spk.npy").shape == (256,)
    r = run_gvc("extract-hubert", "--wave", str(wav), "--vec", "y.vec.npy", cwd=tmp_path)
    assert r.returncode == 2 and "hubert_pretrain/hubert-soft-0d54a1f4.pt" in r.stdout
