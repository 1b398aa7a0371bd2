"""Time conventions shared by every stage (ego4d-formats.md, section 5).

A feature set's rows sit on a :class:`FeatureGrid`: row ``i`` starts at ``i / rows_per_second`` s. Official
video features are computed on 32-frame windows with a 16-frame stride of the 30 fps canonical video
(:data:`OFFICIAL`): 1.875 rows per second. A set's own grid comes from its sidecar
(``egonlq.data.feature_sets``); the module-level constants are the official grid's, for code that only ever
reads official-grid features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CANONICAL_FPS = 30.0
# A feature file may hold one row more or fewer than its grid gives for the video (egonlq.data.features)
ROW_COUNT_TOLERANCE = 1
ZERO_LENGTH_SEC = 1.0 / 30.0


@dataclass(frozen=True)
class FeatureGrid:
    """The time grid of a feature set: ``window`` frames every ``stride`` frames of an ``fps`` video, and
    ``rows_per_second`` (``fps / stride`` for a set that followed its stride; a set whose extractor used a
    rounded rate, such as 1.87, declares that rate here)."""

    fps: float
    window: int
    stride: int
    rows_per_second: float

    def __post_init__(self) -> None:
        if not (self.fps > 0 and self.window >= 1 and self.stride >= 1 and self.rows_per_second > 0):
            raise ValueError(f"invalid feature grid {self}")

    @classmethod
    def of_windows(cls, fps: float, window: int, stride: int) -> FeatureGrid:
        """The grid of ``window``-frame windows every ``stride`` frames: ``fps / stride`` rows per second."""
        return cls(fps, window, stride, fps / stride)

    @property
    def follows_stride(self) -> bool:
        """Whether the rate is the stride's own (``fps / stride``), so that row counts follow the windows."""
        return math.isclose(self.rows_per_second, self.fps / self.stride, rel_tol=1e-9)

    def num_rows(self, num_frames: int) -> int:
        """Rows for a video of ``num_frames`` frames. On a stride grid: one per window, the last unaligned
        window shifted back to end at the last frame (the official count); at a declared rate: one per
        started ``1 / rows_per_second`` s."""
        if num_frames < 0:
            raise ValueError(f"num_frames must be >= 0, got {num_frames}")
        if not self.follows_stride:
            return max(1, math.ceil(num_frames / self.fps * self.rows_per_second - 1e-9))
        if num_frames < self.window:
            return 1
        rest = num_frames - self.window
        return rest // self.stride + 1 + (1 if rest % self.stride else 0)

    def time_to_index(self, t: float) -> int:
        """Index of the row whose window starts at or before ``t`` seconds: ``floor(t * rows_per_second)``."""
        return math.floor(t * self.rows_per_second)


OFFICIAL = FeatureGrid.of_windows(CANONICAL_FPS, 32, 16)
FEATURE_WINDOW = OFFICIAL.window
FEATURE_STRIDE = OFFICIAL.stride
FEATURES_PER_SEC = OFFICIAL.rows_per_second  # 1.875


def num_features(num_frames: int) -> int:
    """Official feature count for a video of ``num_frames`` frames (last unaligned window shifted back)."""
    return OFFICIAL.num_rows(num_frames)


def time_to_index(t: float) -> int:
    """Index of the official feature whose window starts at or before ``t`` seconds: ``floor(t * 1.875)``."""
    return OFFICIAL.time_to_index(t)


def is_zero_length(start: float, end: float) -> bool:
    """The official notion of an empty window: ``|end - start| <= 1/30`` s."""
    return abs(end - start) <= ZERO_LENGTH_SEC
