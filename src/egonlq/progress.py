"""Progress that a user can follow in a log file as well as on a terminal.

``tqdm`` hides its bar when stderr is not a terminal (``disable=None``), so a user tailing
``results/logs/<rule>/*.log`` saw nothing for minutes. :class:`tqdm` here is a drop-in replacement: on a
terminal it is the usual bar; otherwise (unless the caller disabled it) it writes one plain line at a steady
interval, ``desc: done/total (pct) rate, elapsed<ETA``, and a last line when it closes. The interval is
``EGONLQ_PROGRESS_SEC`` seconds (default 30).
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Any

from tqdm import tqdm as _tqdm

DEFAULT_INTERVAL_SEC = 30.0
_LINE_FORMAT = "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) {rate_fmt}, {elapsed}<{remaining} ETA"
_LINE_FORMAT_NO_TOTAL = "{desc}: {n_fmt} done, {rate_fmt}, {elapsed} elapsed"


def interval_sec() -> float:
    try:
        return max(0.0, float(os.environ.get("EGONLQ_PROGRESS_SEC", DEFAULT_INTERVAL_SEC)))
    except ValueError:
        return DEFAULT_INTERVAL_SEC


_CURSOR_MOVES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _LogLines:
    """A file for tqdm that turns its carriage-return redraws into whole, timestamped lines on stderr (the
    cursor moves tqdm adds for several open bars are dropped)."""

    def write(self, text: str) -> None:
        line = _CURSOR_MOVES.sub("", text.replace("\r", "")).strip()
        if line:
            sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} progress {line}\n")

    def flush(self) -> None:
        sys.stderr.flush()


class tqdm(_tqdm):  # noqa: N801  (a drop-in for tqdm.tqdm)
    """``tqdm.tqdm`` that logs a line per interval when stderr is not a terminal (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        file = kwargs.get("file") or sys.stderr
        on_terminal = hasattr(file, "isatty") and file.isatty()
        if kwargs.get("disable", False) is None and not on_terminal:
            interval = interval_sec()
            total = kwargs.get("total")
            if total is None and args and hasattr(args[0], "__len__"):
                total = len(args[0])
            kwargs.update(
                disable=False,
                file=_LogLines(),
                mininterval=interval,
                maxinterval=max(interval, 1.0),
                miniters=1,
                ascii=True,
                bar_format=_LINE_FORMAT if total else _LINE_FORMAT_NO_TOTAL,
            )
        super().__init__(*args, **kwargs)
