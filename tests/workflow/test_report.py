"""The Snakemake report of the tiny run, opened in headless Chromium: it renders, with the headline tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import snakemake
from tests.workflow.report_check import check, chromium

pytestmark = pytest.mark.workflow


@pytest.mark.skipif(
    chromium() is None, reason="chromium is not installed (make test installs Debian's chromium where it can)"
)
def test_report_renders_with_headline_tables(tiny_run: Path) -> None:
    report = tiny_run / "report.html"
    snakemake(tiny_run, "--report", str(report))
    assert check(report, tiny_run / "report.png") == []
