"""Progress lines in log files: whole lines at an interval, with done/total, rate and ETA."""

from __future__ import annotations

import io
import sys

import pytest

from egonlq.progress import tqdm


def test_off_a_terminal_progress_is_logged_as_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("EGONLQ_PROGRESS_SEC", "0")
    for _ in tqdm(range(4), desc="ingest", disable=None):
        pass
    lines = err.getvalue().splitlines()
    assert "\r" not in err.getvalue() and len(lines) >= 2
    assert all(" progress ingest: " in line for line in lines)
    assert "4/4 (100%)" in lines[-1] and "ETA" in lines[-1] and "it/s" in lines[-1]


def test_explicitly_disabled_progress_stays_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    for _ in tqdm(range(3), desc="quiet", disable=True):
        pass
    assert err.getvalue() == ""


def test_lines_stay_plain_while_another_bar_is_open(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("EGONLQ_PROGRESS_SEC", "0")
    with tqdm(total=2, desc="outer", disable=None) as outer:
        for _ in tqdm(range(3), desc="inner", disable=None):
            pass
        outer.update(2)
    assert "\x1b" not in err.getvalue()
    lines = err.getvalue().splitlines()
    assert all(" progress outer: " in line or " progress inner: " in line for line in lines)


def test_the_interval_limits_the_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("EGONLQ_PROGRESS_SEC", "3600")
    with tqdm(total=1000, desc="blocks", disable=None) as bar:
        for _ in range(1000):
            bar.update(1)
    lines = err.getvalue().splitlines()
    assert 1 <= len(lines) <= 2 and "1000/1000" in lines[-1]
