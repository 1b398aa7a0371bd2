"""Headline tables as standalone HTML pages for the Snakemake report, so a reader sees the numbers in the
report itself instead of downloading a markdown file.

The inputs are the markdown tables the stages write (headings, paragraphs, bullet lists and pipe tables,
the only forms they use) and the ingest's validation report (JSON). Everything is escaped; no scripts.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from egonlq.io import read_json, write_text

_STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1em 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 1.5em; } h3 { font-size: 14px; }
code { background: #f4f4f4; padding: 0 3px; }
"""


def _inline(text: str) -> str:
    """Escape ``text`` and render the inline markdown our tables use: **bold** and `code`."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(rows: list[str]) -> str:
    header, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    head = "".join(f"<th>{_inline(c)}</th>" for c in header)
    lines = ["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    lines += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body]
    return "\n".join([*lines, "</tbody>", "</table>"])


def markdown_to_html(markdown: str) -> str:
    """The body of a page for ``markdown`` (headings, paragraphs, ``-`` lists, pipe tables)."""
    parts: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|?$", lines[i + 1].strip()):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            parts.append(_table(lines[i:j]))
            i = j
            continue
        if m := re.match(r"^(#{1,6})\s+(.*)$", line):
            level = len(m.group(1))
            parts.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            parts.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.strip():
            parts.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(parts)


def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _kv_table(title: str, rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><td>{_inline(str(k))}</td><td>{_inline(str(v))}</td></tr>" for k, v in rows)
    return f"<h2>{_inline(title)}</h2>\n<table><tbody>{body}</tbody></table>"


def validation_html(report: Mapping[str, Any]) -> str:
    """The validation report: quirk totals, then per source its counts and first examples."""
    parts = ["<h1>Validation report: quirks found in the inputs</h1>"]
    parts.append(_kv_table("Totals over all sources", sorted(report.get("quirk_totals", {}).items())))
    for name, source in sorted(report.get("sources", {}).items()):
        rows = [("file", source.get("source", ""))]
        rows += [(k, source[k]) for k in ("split", "rows", "clips", "queries") if k in source]
        rows += [(f"quirk {k}", v) for k, v in sorted(source.get("counts", {}).items())]
        rows += [(f"e.g. {k}", "; ".join(v[:3])) for k, v in sorted(source.get("examples", {}).items())]
        parts.append(_kv_table(name, rows))
    return "\n".join(parts)


def write_report_table(source: Path, out: Path, title: str) -> None:
    """``source`` (a markdown table or the validation report JSON) as an HTML page at ``out``."""
    if Path(source).suffix == ".json":
        body = validation_html(read_json(source))
    else:
        body = markdown_to_html(Path(source).read_text(encoding="utf-8"))
    write_text(page(title, body), out)
