"""Commands of the report: headline tables rendered as HTML pages for ``snakemake --report``."""

from __future__ import annotations

import argparse
from pathlib import Path

from egonlq.cli.registry import command, log


def _report_table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", type=Path, required=True, help="a markdown table or the validation JSON")
    p.add_argument("--title", required=True, help="the page title")
    p.add_argument("--out", type=Path, required=True, help="the HTML page to write")


@command("report-table", _report_table_args)
def report_table(a: argparse.Namespace) -> None:
    """Render a headline table as an HTML page for the Snakemake report."""
    from egonlq.report import write_report_table

    write_report_table(a.source, a.out, a.title)
    log.info("wrote %s from %s", a.out, a.source)
