"""Provenance of a result: the resolved config that produced it and the data it ran on (issue 18, part 4).

A rule passes the config sections its command depends on, resolved (after ``auto`` and overlays), as a JSON
object (``--provenance``), and the preflight report (``--preflight``), whose ``fingerprint`` hashes the
input data. :func:`provenance` joins them into one record, ``{"config": {...}, "config_sha256": ...,
"data_fingerprint": ..., "data_release": ...}``, that metrics files and tables carry: a JSON key, parquet
schema metadata (``provenance``) and a markdown footer (:func:`markdown_footer`). Two numbers with the same
``config_sha256`` and ``data_fingerprint`` came from the same settings and the same data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from egonlq.errors import InputError
from egonlq.io import read_json

PARQUET_KEY = b"provenance"


def provenance(
    config_json: str | None, preflight: Path | None, resolved: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The provenance record of a result from the rule's resolved config sections (a JSON object, or None),
    the sections its command resolved itself (``resolved``, joined into the config when one is given) and the
    preflight report (or None); None when neither config nor report is given."""
    if config_json is None and preflight is None:
        return None
    out: dict[str, Any] = {}
    if config_json is not None:
        try:
            config = json.loads(config_json)
        except json.JSONDecodeError as e:
            raise InputError(None, f"--provenance is not JSON: {e.msg}", expected="a JSON object") from e
        if not isinstance(config, dict):
            raise InputError(None, "--provenance is not a JSON object", expected="{section: settings}")
        config = {**config, **(resolved or {})}
        canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
        out.update(config=config, config_sha256=hashlib.sha256(canonical.encode()).hexdigest())
    if preflight is not None:
        report = read_json(preflight)
        fp = report.get("fingerprint") if isinstance(report, dict) else None
        if not isinstance(fp, str):
            raise InputError(
                preflight, "no data fingerprint", field="fingerprint", expected="a preflight report"
            )
        releases = {
            f"{task} {split}": entry["release"]
            for task in ("nlq", "goalstep")
            for split, entry in report.get(task, {}).items()
        }
        out.update(data_fingerprint=fp, data_release=releases)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command-line options of a command that records provenance: ``--provenance`` and ``--preflight``."""
    p.add_argument("--provenance", help="the resolved config sections behind the result (a JSON object)")
    p.add_argument("--preflight", type=Path, help="the preflight report: its data fingerprint is recorded")


def from_arguments(a: argparse.Namespace, resolved: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The provenance record of the options of :func:`add_arguments` (None when neither was given), with the
    sections the command resolved itself (``resolved``)."""
    return provenance(a.provenance, a.preflight, resolved)


def attach(obj: dict[str, Any], prov: Mapping[str, Any] | None) -> dict[str, Any]:
    """``obj`` with its ``provenance`` key (unchanged when there is none)."""
    return obj if prov is None else {**obj, "provenance": dict(prov)}


def with_schema_metadata(schema: pa.Schema, prov: Mapping[str, Any] | None) -> pa.Schema:
    """``schema`` carrying the provenance as metadata (``provenance``: its JSON), for write_parquet."""
    if prov is None:
        return schema
    return schema.with_metadata({**(schema.metadata or {}), PARQUET_KEY: json.dumps(prov, sort_keys=True)})


def read_schema_provenance(schema: pa.Schema) -> dict[str, Any] | None:
    """The provenance a table's schema carries (None when it carries none)."""
    raw = (schema.metadata or {}).get(PARQUET_KEY)
    return None if raw is None else json.loads(raw)


def data_fingerprints(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The distinct data fingerprints of results' provenance records (those without one are skipped)."""
    return sorted({p["data_fingerprint"] for p in records if p and "data_fingerprint" in p})


def markdown_footer(prov: Mapping[str, Any] | None, inputs: Iterable[Mapping[str, Any] | None] = ()) -> str:
    """A footer for a markdown table: the config's sections and hash, the data fingerprint, and a warning
    when the ``inputs`` (the provenance of the results it gathers) ran on different data."""
    lines = []
    if prov is not None and "config" in prov:
        sections = ", ".join(sorted(prov["config"]))
        lines.append(f"Config ({sections}): sha256 `{prov['config_sha256'][:16]}`.")
    fingerprints = data_fingerprints([*(p for p in inputs if p), *([prov] if prov else [])])
    if len(fingerprints) == 1:
        lines.append(f"Data fingerprint: `{fingerprints[0][:16]}` (results/preflight/report.md).")
    elif fingerprints:
        shown = ", ".join(f"`{f[:16]}`" for f in fingerprints)
        lines.append(f"**Warning**: these results ran on {len(fingerprints)} different data sets ({shown}).")
    return "" if not lines else "\n" + "\n".join(lines) + "\n"
