"""Headline tables rendered for the Snakemake report: the numbers appear as HTML table cells, escaped."""

from __future__ import annotations

import json
from pathlib import Path

from egonlq.report import markdown_to_html, write_report_table

TABLE = """# VSLNet experiments

**SYNTHETIC demo data.**

- naq_ft vs scratch: +6.73 points
- every seed agrees: yes

| run | R@1 IoU0.3 | note |
|---|---|---|
| scratch | 9.62 | `a` <script>alert(1)</script> |
| naq_ft | 16.35 |  |
"""


def test_markdown_tables_become_html_tables_with_every_value() -> None:
    body = markdown_to_html(TABLE)
    assert body.count("<table>") == 1 and body.count("<tr>") == 3
    assert "<th>R@1 IoU0.3</th>" in body and "<td>16.35</td>" in body and "<td>9.62</td>" in body
    assert "<h1>VSLNet experiments</h1>" in body and "<b>SYNTHETIC demo data.</b>" in body
    assert body.count("<li>") == 2 and "<code>a</code>" in body
    assert "<script>" not in body and "&lt;script&gt;" in body


def test_validation_report_page(tmp_path: Path) -> None:
    report = {
        "quirk_totals": {"zero_length_window": 51, "video_without_clips": 3},
        "sources": {
            "nlq_val": {
                "source": "v1/annotations/nlq_val.json",
                "split": "val",
                "clips": 40,
                "counts": {"zero_length_window": 9},
                "examples": {"zero_length_window": ["q1"]},
            }
        },
    }
    (tmp_path / "v.json").write_text(json.dumps(report))
    write_report_table(tmp_path / "v.json", tmp_path / "v.html", "Validation")
    page = (tmp_path / "v.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<title>Validation</title>" in page
    assert "<td>zero_length_window</td><td>51</td>" in page
    assert "<td>quirk zero_length_window</td><td>9</td>" in page
    assert "<td>e.g. zero_length_window</td><td>q1</td>" in page and "nlq_val" in page
