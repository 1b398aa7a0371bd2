"""Time conventions shared by every stage (ego4d-formats.md, section 5).

Official video features are computed on 32-frame windows with a 16-frame stride of the 30 fps canonical
video: 1.875 features per second; feature ``i`` starts at ``i / 1.875`` s.
"""

from __future__ import annotations

import math

CANONICAL_FPS = 30.0
FEATURE_WINDOW = 32
FEATURE_STRIDE = 16
FEATURES_PER_SEC = CANONICAL_FPS / FEATURE_STRIDE  # 1.875
ZERO_LENGTH_SEC = 1.0 / 30.0


def num_features(num_frames: int) -> int:
    """Official feature count for a video of ``num_frames`` frames (last unaligned window shifted back)."""
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if num_frames < FEATURE_WINDOW:
        return 1
    rest = num_frames - FEATURE_WINDOW
    return rest // FEATURE_STRIDE + 1 + (1 if rest % FEATURE_STRIDE else 0)


def time_to_index(t: float) -> int:
    """Index of the feature whose window starts at or before ``t`` seconds: ``floor(t * 1.875)``."""
    return math.floor(t * FEATURES_PER_SEC)


def is_zero_length(start: float, end: float) -> bool:
    """The official notion of an empty window: ``|end - start| <= 1/30`` s."""
    return abs(end - start) <= ZERO_LENGTH_SEC
