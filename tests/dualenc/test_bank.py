"""The feature bank serves windows on its feature set's own time grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from egonlq.data.feature_sets import write_sidecar
from egonlq.data.features import save_video_features
from egonlq.dualenc.bank import FeatureBank
from egonlq.timegrid import OFFICIAL, FeatureGrid


def test_window_rows_follow_the_folders_grid(tmp_path: Path) -> None:
    rows = np.arange(120 * 4, dtype=np.float32).reshape(120, 4)
    official, six = tmp_path / "official", tmp_path / "six"
    for folder in (official, six):
        folder.mkdir()
        save_video_features(rows, folder / "v.pt")
    write_sidecar(six, "six", "test", FeatureGrid(30.0, 1, 5, 6.0), 4)
    bank = FeatureBank.load(official, ["v"], dim=4, progress=False)
    assert bank.grid == OFFICIAL
    first, count = bank.window_rows(["v"], np.array([4.0]), np.array([6.0]))
    assert (first[0], count[0]) == (7, 5)  # rows 7..11 of 1.875/s: floor(4 * 1.875), ceil(6 * 1.875) - 1
    bank = FeatureBank.load(six, ["v"], dim=4, progress=False)
    first, count = bank.window_rows(["v"], np.array([4.0]), np.array([6.0]))
    assert (first[0], count[0]) == (24, 12)  # rows 24..35 at 6 rows/s
