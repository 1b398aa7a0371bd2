"""The video tower as a feature extractor: a new set on the input's grid, row i = the embedding of the window
centred on row i; the set reads back through the clip-features path; bad inputs are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from egonlq.cli import main
from egonlq.data.feature_sets import resolve_feature_set, write_sidecar
from egonlq.data.features import load_video_features, save_video_features
from egonlq.dualenc.features import centred_windows, embed_feature_set
from egonlq.dualenc.model import DualEncoder, DualEncoderConfig
from egonlq.errors import InputError
from egonlq.io import read_json
from egonlq.timegrid import FeatureGrid

DIM = 6
GRID = FeatureGrid.of_windows(30.0, 32, 16)


@given(st.integers(1, 60), st.sampled_from([1, 3, 5, 9]))
def test_centred_windows_hold_their_row_and_stay_in_the_video(n: int, window_rows: int) -> None:
    first, count = centred_windows(n, window_rows)
    last = first + count - 1
    rows = np.arange(n)
    assert (first >= 0).all() and (last <= n - 1).all()
    assert (first <= rows).all() and (rows <= last).all()
    assert (count <= window_rows).all()
    half = window_rows // 2
    inner = (rows >= half) & (rows < n - half)  # away from the ends: exactly centred, full length
    assert (first[inner] == rows[inner] - half).all() and (count[inner] == window_rows).all()


def test_centred_windows_refuse_an_even_window() -> None:
    with pytest.raises(ValueError, match="odd"):
        centred_windows(5, 4)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    config = DualEncoderConfig(video_dim=DIM, text_dim=8, embed_dim=4, width=8, heads=2, max_rows=4)
    DualEncoder(config).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


@pytest.fixture
def feature_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    for uid, n in (("va", 7), ("vb", 1)):
        save_video_features(rng.normal(size=(n, DIM)).astype(np.float32), folder / f"{uid}.pt")
    write_sidecar(folder, "toy", "random rows", GRID, DIM)
    return folder


def test_cli_writes_a_set_on_the_input_grid_row_for_row(
    model_dir: Path, feature_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    save_video_features(np.zeros((2, 4), np.float32), out / "gone.pt")  # an earlier run's video
    stats_path = tmp_path / "stats.json"
    main(
        [
            "dualenc-features",
            *("--model-dir", str(model_dir), "--feature-dir", str(feature_dir), "--feature-set", "toy"),
            *("--name", "dualenc_toy", "--backbone", "dual encoder toy seed 0", "--threads", "1"),
            *("--out-dir", str(out), "--stats", str(stats_path)),
        ]
    )
    model = DualEncoder.from_pretrained(model_dir).eval()
    for uid in ("va", "vb"):
        rows = load_video_features(feature_dir / f"{uid}.pt", expected_dim=DIM)
        got = load_video_features(out / f"{uid}.pt", expected_dim=4)
        assert got.shape == (len(rows), 4)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        for i in range(len(rows)):  # row i: the tower on rows i-1..i+1 (clipped), computed here directly
            window = torch.from_numpy(rows[max(0, i - 1) : i + 2])[None]
            with torch.no_grad():
                want = model.encode_video(window, torch.ones(1, window.shape[1], dtype=torch.bool))[0]
            np.testing.assert_allclose(got[i], want.numpy(), atol=1e-5)
    assert not (out / "gone.pt").exists()
    fset = resolve_feature_set(out, "dualenc_toy")  # what clip-features reads
    assert (fset.grid, fset.dim, fset.backbone) == (GRID, 4, "dual encoder toy seed 0")
    assert sorted(read_json(out / "manifest.json")["files"]) == ["va.pt", "vb.pt"]
    stats = read_json(stats_path)
    assert (stats["videos"], stats["rows"], stats["stale_files_removed"], stats["window_rows"]) == (
        2,
        8,
        1,
        3,
    )


def test_the_tower_refuses_features_of_another_dim(model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "wide"
    save_video_features(np.zeros((3, DIM + 1), np.float32), folder / "va.pt")
    write_sidecar(folder, "wide", "x", GRID, DIM + 1)
    with pytest.raises(InputError, match="7-d rows.*takes 6-d"):
        embed_feature_set(
            DualEncoder.from_pretrained(model_dir), folder, "wide", tmp_path / "o", name="n", backbone="b"
        )


def test_a_file_that_disagrees_with_its_sidecar_is_named(
    model_dir: Path, feature_dir: Path, tmp_path: Path
) -> None:
    save_video_features(np.zeros((3, DIM + 2), np.float32), feature_dir / "vc.pt")
    with pytest.raises(InputError, match="vc.pt"):
        embed_feature_set(
            DualEncoder.from_pretrained(model_dir), feature_dir, "toy", tmp_path / "o", name="n", backbone="b"
        )
    assert not (tmp_path / "o" / "feature_set.json").exists(), "no sidecar for a set that was not written"


def test_an_empty_folder_is_refused(model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    write_sidecar(folder, "toy", "x", GRID, DIM)
    with pytest.raises(InputError, match="no per-video feature file"):
        embed_feature_set(
            DualEncoder.from_pretrained(model_dir), folder, "toy", tmp_path / "o", name="n", backbone="b"
        )
