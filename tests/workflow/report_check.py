"""Check a Snakemake report the way a reader meets it: open it in headless Chromium (Debian's `chromium`),
take a screenshot, and check that the report application rendered (its categories in the DOM) and that every
headline table is embedded as an HTML page holding a table with numbers.

Usage: ``python tests/workflow/report_check.py results/report.html [--screenshot results/report.png]``
(``make report-check``). Exit status 0 when every check passes; each failure is printed on its own line.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HEADLINE_CATEGORY = "0. Headline tables"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=10000", "--window-size=1400,1000",
]  # fmt: skip


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def embedded_results(report_html: str) -> dict[str, dict]:
    """The report's ``results`` object: output path -> name, caption, mime type, data URI."""
    m = re.search(r"var results = (\{.*?\});\s*\n", report_html, flags=re.S)
    if not m:
        raise ValueError("no `var results = {...}` in the report: not a Snakemake report?")
    return json.loads(m.group(1))


def _decoded(entry: dict) -> str:
    return base64.b64decode(entry["data_uri"].split("base64,", 1)[1]).decode("utf-8")


def check(report: Path, screenshot: Path | None) -> list[str]:
    problems: list[str] = []
    text = report.read_text(encoding="utf-8")
    results = embedded_results(text)
    pages = {k: v for k, v in results.items() if k.startswith("results/report/") and k.endswith(".html")}
    if not pages:
        problems.append(f"no headline table (results/report/*.html) in {report}")
    for path, entry in sorted(pages.items()):
        page = _decoded(entry)
        if "<table>" not in page or not re.search(r"<td>\d", page):
            problems.append(f"{path}: no table with numbers")
    browser = chromium()
    if browser is None:
        problems.append("chromium is not installed (Debian: apt-get install chromium)")
        return problems
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", report.resolve().as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    if HEADLINE_CATEGORY not in dom.stdout:
        problems.append(f"the rendered report does not list the category {HEADLINE_CATEGORY!r}")
    if screenshot is not None:
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run(
                [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                 f"--screenshot={screenshot.resolve()}", report.resolve().as_uri()],
                capture_output=True, timeout=120,
            )  # fmt: skip
        if not screenshot.exists() or screenshot.stat().st_size < 10_000:
            problems.append(f"no screenshot written to {screenshot}")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", type=Path)
    ap.add_argument("--screenshot", type=Path)
    a = ap.parse_args()
    problems = check(a.report, a.screenshot)
    for p in problems:
        print(f"report check: {p}")
    if problems:
        sys.exit(1)
    print(f"report check: {a.report} renders; every headline table is an HTML table with numbers")


if __name__ == "__main__":
    main()
