"""Provenance of results: the resolved config sections and the preflight's data fingerprint, joined into one
record that metrics files and tables carry (JSON key, parquet schema metadata, markdown footer)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from egonlq.data.provenance import (
    attach,
    markdown_footer,
    provenance,
    read_schema_provenance,
    with_schema_metadata,
)
from egonlq.errors import InputError


def preflight_report(path: Path, fingerprint: str) -> Path:
    report = {"fingerprint": fingerprint, "nlq": {"val": {"release": "NLQ v2 val"}}, "goalstep": {}}
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def test_record_from_config_sections_and_preflight(tmp_path: Path) -> None:
    config = {"evaluation": {"ks": [1, 5]}, "data": {"features": {"name": "egovlp", "dim": 256}}}
    report = preflight_report(tmp_path / "report.json", "ab" * 32)
    record = provenance(json.dumps(config), report)
    assert record["config"] == config and len(record["config_sha256"]) == 64
    assert record["data_fingerprint"] == "ab" * 32 and record["data_release"] == {"nlq val": "NLQ v2 val"}
    # the hash ignores key order, and follows every value
    reordered = json.dumps({"data": config["data"], "evaluation": config["evaluation"]})
    assert provenance(reordered, None)["config_sha256"] == record["config_sha256"]
    changed = json.dumps({**config, "evaluation": {"ks": [1, 3]}})
    assert provenance(changed, None)["config_sha256"] != record["config_sha256"]
    assert provenance(None, None) is None
    assert set(provenance(None, report)) == {"data_fingerprint", "data_release"}


def test_bad_provenance_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--provenance is not JSON"):
        provenance("{evaluation", None)
    with pytest.raises(InputError, match="not a JSON object"):
        provenance("[1]", None)
    (tmp_path / "r.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InputError, match="no data fingerprint") as info:
        provenance(None, tmp_path / "r.json")
    assert info.value.field == "fingerprint"


def test_attach_schema_metadata_and_footer(tmp_path: Path) -> None:
    record = provenance('{"evaluation": {"ks": [1]}}', preflight_report(tmp_path / "r.json", "cd" * 32))
    assert attach({"a": 1}, None) == {"a": 1} and attach({"a": 1}, record) == {"a": 1, "provenance": record}
    schema = pa.schema([pa.field("x", pa.int64())], metadata={b"other": b"kept"})
    tagged = with_schema_metadata(schema, record)
    assert read_schema_provenance(tagged) == record and tagged.metadata[b"other"] == b"kept"
    assert with_schema_metadata(schema, None) is schema and read_schema_provenance(schema) is None
    footer = markdown_footer(record, [record, None])
    assert f"Config (evaluation): sha256 `{record['config_sha256'][:16]}`." in footer
    assert "Data fingerprint: `cdcdcdcdcdcdcdcd`" in footer and "Warning" not in footer
    other = {**record, "data_fingerprint": "ef" * 32}
    assert "**Warning**: these results ran on 2 different data sets" in markdown_footer(record, [other])
    assert markdown_footer(None) == ""


def test_command_options_join_the_sections_the_command_resolved(tmp_path: Path) -> None:
    """A training command adds its resolved spec to the rule's sections; the hash follows both."""
    import argparse

    from egonlq.data.provenance import add_arguments, from_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    report = preflight_report(tmp_path / "r.json", "ef" * 32)
    a = parser.parse_args(["--provenance", '{"device": "cpu"}', "--preflight", str(report)])
    record = from_arguments(a, {"run": {"epochs": 30}})
    assert record["config"] == {"device": "cpu", "run": {"epochs": 30}}
    assert record["data_fingerprint"] == "ef" * 32
    assert from_arguments(a, {"run": {"epochs": 31}})["config_sha256"] != record["config_sha256"]
    assert from_arguments(parser.parse_args([])) is None
