"""egoclip.csv ingest: the README row, malformed lines (columns or numbers) skipped and counted with their
line numbers, inverted windows dropped, a missing column named, quoted fields read as pandas reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from egonlq.cli import main
from egonlq.data.egoclip import _read_checked, _read_well_formed, read_egoclip_csv
from egonlq.data.tables import EGOCLIP
from egonlq.errors import InputError

HEADER = (
    "clip_idx\tvideo_uid\tvideo_dur\tnarration_source\tnarration_ind\tnarration_time\tclip_start\tclip_end"
    "\tclip_text\ttag_verb\ttag_noun"
)
VIDEO = "5f3c0a9e-0000-4000-8000-00000000a001"


def row(idx: int = 0, *, dur: str = "128.033333", time: str = "3.3445", start: str = "2.967651",
        end: str = "3.721266", ind: str | None = None) -> str:  # fmt: skip
    """One data line; the README example by default (ego4d-formats.md section 4)."""
    ind = str(idx) if ind is None else ind
    fields = (str(idx), VIDEO, dur, "narration_pass_1", ind, time, start, end,
              "#C C picks a bag of clothes from the floor", "[93]", "[192, 115, 12]")  # fmt: skip
    return "\t".join(fields)


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "egoclip.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def test_readme_row(tmp_path: Path) -> None:
    table, stats = read_egoclip_csv(write(tmp_path, [row()]))
    assert table.schema == EGOCLIP
    assert table.to_pylist() == [
        {
            "clip_idx": 0,
            "video_uid": VIDEO,
            "video_dur": 128.033333,
            "narration_source": "narration_pass_1",
            "narration_ind": 0,
            "narration_time": 3.3445,
            "clip_start": 2.967651,
            "clip_end": 3.721266,
            "clip_text": "#C C picks a bag of clothes from the floor",
            "tag_verb": "[93]",
            "tag_noun": "[192, 115, 12]",
        }
    ]
    assert stats == {
        "rows_in": 1,
        "malformed_lines": 0,
        "malformed_examples": [],
        "short_rows_kept": 0,
        "bad_window": 0,
        "rows_out": 1,
    }


def test_malformed_numbers_and_columns_are_skipped_with_line_numbers(tmp_path: Path) -> None:
    lines = [
        row(0),  # line 2
        row(1, start="abc"),  # 3: not a number (used to reject the whole file)
        row(2, end="nan"),  # 4: NaN (used to be a raw ValueError)
        row(3, dur=""),  # 5: empty number field
        "4\tonly three\tcolumns",  # 6: wrong column count
        row(5, ind="1.5"),  # 7: an index that is not an integer
        row(6, time="inf"),  # 8
        "",  # 9: an empty line
        row(8, start="1e1", end="-2.5e+1"),  # 10: numbers, inverted window: dropped as bad_window
        row(9, start="+.5", end="7."),  # 11: fine
    ]
    table, stats = read_egoclip_csv(write(tmp_path, lines))
    assert table.column("clip_idx").to_pylist() == [0, 9]
    assert table.column("clip_start").to_pylist() == [2.967651, 0.5]
    assert stats["rows_in"] == 10 and stats["rows_out"] == 2 and stats["bad_window"] == 1
    assert stats["malformed_lines"] == 7
    assert stats["malformed_examples"] == [
        "line 3: clip_start='abc' is not a number",
        "line 4: clip_end='nan' is not a number",
        "line 5: video_dur='' is not a number",
        "line 6: 3 columns instead of 11",
        "line 7: narration_ind='1.5' is not a number",
    ]


def test_ingest_egoclip_command_reports_malformed_lines(tmp_path: Path) -> None:
    path = write(tmp_path, [row(0), row(1, start="abc"), row(2, end="")])
    out, report = tmp_path / "egoclip.parquet", tmp_path / "egoclip.json"
    main(["ingest-egoclip", "--input", str(path), "--table", str(out), "--report", str(report)])
    rep = json.loads(report.read_text())
    assert rep["counts"] == {"egoclip_malformed_lines": 2}
    assert rep["examples"]["egoclip_malformed_lines"] == [
        "line 3: clip_start='abc' is not a number",
        "line 4: clip_end='' is not a number",
    ]


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "egoclip.csv"
    path.write_text(HEADER.replace("\tclip_end", "") + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="header lacks") as info:
        read_egoclip_csv(path)
    assert info.value.field == "clip_end"


def test_well_formed_file_is_read_typed_with_the_checked_rows(tmp_path: Path) -> None:
    """The fast typed read gives the rows of the line-by-line checks, number spellings included."""
    lines = [row(0), row(1, start="+.5", end="7."), row(2, start="1e1", end="2.5E+1", ind="-0")]
    path = write(tmp_path, lines)
    typed, rejects = _read_well_formed(path)
    checked, rows_in, malformed, _, _ = _read_checked(path)
    assert not rejects.malformed and malformed == 0 and rows_in == 3
    assert typed.equals(checked)


@pytest.mark.parametrize(
    "line",
    [
        row(1, ind="0x10"),  # Arrow reads hexadecimal integers; the checks do not
        row(1, end="nan"),
        row(1, time="-inf"),
        row(1, dur=""),
        row(1, ind="+5"),
        row(1, ind="99999999999999999999"),
        "",  # Arrow reads an empty line as a row of one empty field
    ],
)
def test_any_doubtful_line_sends_the_file_to_the_checks(tmp_path: Path, line: str) -> None:
    path = write(tmp_path, [row(0), line, row(2)])
    assert _read_well_formed(path) is None


def test_hexadecimal_index_is_malformed(tmp_path: Path) -> None:
    table, stats = read_egoclip_csv(write(tmp_path, [row(0), row(1, ind="0x10")]))
    assert table.column("clip_idx").to_pylist() == [0]
    assert stats["malformed_examples"] == ["line 3: narration_ind='0x10' is not a number"]


def _many(n: int, **bad: tuple[int, dict]) -> list[str]:
    lines = [row(i) for i in range(n)]
    for i, kwargs in bad.values():
        lines[i] = row(i, **kwargs)
    return lines


@pytest.mark.parametrize(
    "bad",
    [
        {},  # well formed: streamed in several blocks and row groups
        {"inverted": (17, {"start": "9.0", "end": "1.0"})},  # dropped as bad_window, still streamed
        {"hex_late": (55, {"ind": "0x10"})},  # a doubt after row groups were written: read again, checked
        {"nan_late": (58, {"end": "nan"}), "inverted": (3, {"start": "9.0", "end": "1.0"})},
    ],
)
def test_streamed_parquet_equals_the_whole_file_read(tmp_path: Path, bad: dict) -> None:
    """``write_egoclip_parquet`` (the ingest job) writes the rows and stats of ``read_egoclip_csv``."""
    import pyarrow.parquet as pq

    from egonlq.data.egoclip import write_egoclip_parquet

    path = write(tmp_path, _many(60, **bad))
    out = tmp_path / "out" / "egoclip.parquet"
    stats = write_egoclip_parquet(path, out, rows_per_group=7, block_size=512)
    table, expected = read_egoclip_csv(path)
    assert stats == expected
    assert pq.read_table(out).equals(table) and pq.read_schema(out).equals(EGOCLIP)
    groups = pq.ParquetFile(out).metadata.num_row_groups
    assert groups > 1 if stats["malformed_lines"] == 0 else groups == 1  # the checked path writes it whole
    assert [p.name for p in out.parent.iterdir()] == ["egoclip.parquet"]  # no temporary file left


def test_streamed_parquet_of_a_header_only_file(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from egonlq.data.egoclip import write_egoclip_parquet

    out = tmp_path / "egoclip.parquet"
    stats = write_egoclip_parquet(write(tmp_path, []), out)
    assert stats["rows_in"] == stats["rows_out"] == 0
    assert pq.read_table(out).schema.equals(EGOCLIP) and pq.read_table(out).num_rows == 0


def test_a_column_of_the_file_own_does_not_stop_the_stream(tmp_path: Path) -> None:
    """A column outside the table (here numbers in the first blocks, text later: the streaming reader would
    type it from its first block) is not read at all, and the file still streams."""
    import pyarrow.parquet as pq

    from egonlq.data.egoclip import write_egoclip_parquet

    lines = [f"{line}\t{i if i < 40 else 'text'}" for i, line in enumerate(_many(60))]
    path = tmp_path / "egoclip.csv"
    path.write_text("\n".join([HEADER + "\textra", *lines]) + "\n", encoding="utf-8")
    out = tmp_path / "egoclip.parquet"
    stats = write_egoclip_parquet(path, out, rows_per_group=7, block_size=512)
    table, expected = read_egoclip_csv(path)
    assert stats == expected and stats["rows_out"] == 60 and stats["malformed_lines"] == 0
    assert pq.read_table(out).equals(table) and pq.read_schema(out).equals(EGOCLIP)
    assert pq.ParquetFile(out).metadata.num_row_groups > 1  # streamed, not re-read through the checks


def _fields(idx: int, text: str, *, start: str = "2.967651", noun: str = "[192, 115, 12]") -> str:
    """A data line with the given clip_text, clip_start and tag_noun written as they stand in the file."""
    fields = (str(idx), VIDEO, "128.033333", "narration_pass_1", str(idx), "3.3445", start, "3.721266",
              text, "[93]", noun)  # fmt: skip
    return "\t".join(fields)


QUOTED = [
    _fields(0, "#C C picks a bag"),
    _fields(1, '"#C C says ""hi"" to man X"'),  # pandas' to_csv quoting: "" inside stands for "
    _fields(2, '"#C C reads" the sign'),  # text after the closing quote joins the field
    _fields(3, '"#C C types\ta tab"'),  # a tab inside quotes is text, not a separator
    _fields(4, '"#C C writes\ntwo lines"'),  # a line break inside quotes: one row over two lines
    _fields(5, '#C C says "hi" in the middle'),  # a quote inside a field is text
    _fields(6, "#C C holds a cup", start='"2.5"', noun='"[1, 2]"'),  # quoted number and tag list
    _fields(7, '"#C C opens'),  # unbalanced: pandas reads on to the next quote, taking the next row in
    _fields(8, '#C C closes"'),
    _fields(9, "#C C puts the cup down"),
]


def test_quoted_fields_are_read_as_pandas_reads_them(tmp_path: Path) -> None:
    """EgoVLP and NaQ read egoclip.csv with pandas' ``read_csv(sep="\\t")``, whose quoting turns a field that
    starts with ``"`` into a quoted one. The ingest gives the same rows, quirks included, in the fast read
    and in the checked one."""
    import pandas as pd

    path = write(tmp_path, QUOTED)
    table, stats = read_egoclip_csv(path)
    assert table.equals(_read_well_formed(path)[0]) and table.equals(_read_checked(path)[0])
    frame = pd.read_csv(path, sep="\t", on_bad_lines="skip")
    expected = frame[["clip_idx", "clip_start", "clip_text", "tag_noun"]].to_dict("records")
    assert table.select(["clip_idx", "clip_start", "clip_text", "tag_noun"]).to_pylist() == expected
    assert table["clip_text"][1].as_py() == '#C C says "hi" to man X'
    assert table["clip_text"][4].as_py() == "#C C writes\ntwo lines"
    assert table["clip_start"][6].as_py() == 2.5 and table["tag_noun"][6].as_py() == "[1, 2]"
    assert stats["rows_in"] == stats["rows_out"] == 9 and stats["malformed_lines"] == 0


def test_malformed_lines_after_a_quoted_line_break_keep_their_line_numbers(tmp_path: Path) -> None:
    lines = [
        row(0),  # line 2
        _fields(1, '"#C C writes\ntwo lines"'),  # lines 3-4
        "2\tonly three\tcolumns",  # line 5
        _fields(3, '"#C C a\nb\nc"', start="abc"),  # lines 6-8: not a number
        row(4, end="nan"),  # line 9
    ]
    table, stats = read_egoclip_csv(write(tmp_path, lines))
    assert table["clip_idx"].to_pylist() == [0, 1]
    assert stats["malformed_examples"] == [
        "line 5: 3 columns instead of 11",
        "line 6: clip_start='abc' is not a number",
        "line 9: clip_end='nan' is not a number",
    ]


def test_quoted_fields_stream_across_blocks(tmp_path: Path) -> None:
    """Quoted fields (a line break inside one) over several small csv blocks and row groups: streamed, the
    rows of the checked read."""
    import pyarrow.parquet as pq

    from egonlq.data.egoclip import write_egoclip_parquet

    lines = _many(60)
    lines[50] = _fields(50, '"#C C says ""ok"""')
    lines[20] = _fields(20, '"#C C writes\ntwo lines"')
    path = write(tmp_path, lines)
    out = tmp_path / "out" / "egoclip.parquet"
    stats = write_egoclip_parquet(path, out, rows_per_group=7, block_size=512)
    table, expected = read_egoclip_csv(path)
    assert stats == expected and stats["rows_out"] == 60
    assert pq.read_table(out).equals(table)
    assert pq.read_table(out)["clip_text"][50].as_py() == '#C C says "ok"'
    assert pq.read_table(out)["clip_text"][20].as_py() == "#C C writes\ntwo lines"
    assert pq.ParquetFile(out).metadata.num_row_groups > 1  # streamed, not re-read through the checks
    assert [p.name for p in out.parent.iterdir()] == ["egoclip.parquet"]


@pytest.mark.parametrize(
    "line",
    [
        _fields(1, "#C C holds a cup", start='"2.5"'),  # a quoted float
        _fields(1, "#C C holds a cup").replace("1\t", '"1"\t', 1),  # a quoted integer
        _fields(1, "#C C holds a cup").replace(VIDEO, f'"{VIDEO}"'),  # a quoted uid
        _fields(1, "#C C holds a cup", noun='"[1, 2]"'),
        _fields(1, '"#C C holds a cup"'),
    ],
)
def test_a_quoted_field_of_any_column_is_read_unquoted(tmp_path: Path, line: str) -> None:
    path = write(tmp_path, [row(0), line, row(2)])
    table, stats = read_egoclip_csv(path)
    assert table.equals(_read_well_formed(path)[0]) and table.equals(_read_checked(path)[0])
    assert stats["rows_out"] == 3 and '"' not in "".join(map(str, table.slice(1, 1).to_pylist()[0].values()))


def test_rows_lacking_only_their_tags_are_kept_in_order_as_pandas_keeps_them(tmp_path: Path) -> None:
    """pandas keeps a short row (missing fields NaN): a row that lacks only ``tag_verb``/``tag_noun`` is a
    NaQ query for the published script, so it is kept here with null tags; one that lacks its text is not."""
    import pandas as pd

    full = _fields(0, "#C C picks a cup").split("\t")
    lines = [
        row(0),  # line 2
        "\t".join(full[:9]).replace("0\t", "1\t", 1),  # 3: no tags
        row(2),  # 4
        "\t".join(full[:10]).replace("0\t", "3\t", 1),  # 5: no tag_noun
        "\t".join(full[:8]).replace("0\t", "4\t", 1),  # 6: no text: malformed
        _fields(5, '"#C C writes\ntwo lines"').rsplit("\t", 2)[0],  # 7-8: quoted text over two lines, no tags
        row(6, start="abc"),  # 9
    ]
    path = write(tmp_path, lines)
    table, stats = read_egoclip_csv(path)
    assert table["clip_idx"].to_pylist() == [0, 1, 2, 3, 5]
    assert table["tag_verb"].to_pylist() == ["[93]", None, "[93]", "[93]", None]
    assert table["tag_noun"].to_pylist() == ["[192, 115, 12]", None, "[192, 115, 12]", None, None]
    assert table["clip_text"][4].as_py() == "#C C writes\ntwo lines"
    assert stats["short_rows_kept"] == 3 and stats["malformed_lines"] == 2
    assert stats["malformed_examples"] == [
        "line 6: 8 columns instead of 11",
        "line 9: clip_start='abc' is not a number",
    ]
    frame = pd.read_csv(path, sep="\t", on_bad_lines="skip")
    usable = frame[frame["clip_text"].notna() & pd.to_numeric(frame["clip_start"], errors="coerce").notna()]
    assert usable["clip_idx"].tolist() == table["clip_idx"].to_pylist()
    assert usable["clip_text"].tolist() == table["clip_text"].to_pylist()

    out, report = tmp_path / "egoclip.parquet", tmp_path / "egoclip.json"
    main(["ingest-egoclip", "--input", str(path), "--table", str(out), "--report", str(report)])
    counts = json.loads(report.read_text())["counts"]
    assert counts == {"egoclip_malformed_lines": 2, "egoclip_short_rows_kept": 3}


def test_a_row_lacking_a_column_of_the_file_own_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "egoclip.csv"
    lines = [f"{row(0)}\tx", row(1), f"{row(2)}\tz"]
    path.write_text("\n".join([HEADER + "\textra", *lines]) + "\n", encoding="utf-8")
    table, stats = read_egoclip_csv(path)
    assert table["clip_idx"].to_pylist() == [0, 1, 2] and table["tag_noun"][1].as_py() == "[192, 115, 12]"
    assert stats["short_rows_kept"] == 1 and stats["malformed_lines"] == 0


def _checked_only(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """``read_egoclip_csv`` forced through the row-by-row checks (the exact reference of the fast read)."""
    import egonlq.data.egoclip as egoclip

    def doubt(*args, **kwargs):
        raise egoclip._Doubtful
        yield

    with monkeypatch.context() as m:
        m.setattr(egoclip, "_well_formed_tables", doubt)
        return read_egoclip_csv(path)


def _no_tags(idx: int, text: str = "#C C picks a cup") -> str:
    return "\t".join(_fields(idx, text).split("\t")[:9])


@pytest.mark.parametrize(
    "case",
    {
        "column counts": {0: "0\ttoo\tfew", 7: row(7) + "\textra\tfields", 59: "59\tlast"},
        "short rows": {0: _no_tags(0), 1: _no_tags(1), 30: _no_tags(30), 31: "31\tx", 59: _no_tags(59)},
        "short row, bad number": {20: _no_tags(20).replace("2.967651", "abc")},
        "quoted line break, then a bad count": {5: _fields(5, '"#C C a\nb"'), 40: "40\tx"},
        "short row over two lines, then a bad count": {5: _no_tags(5, '"#C C a\nb"'), 40: "40\tx"},
        "all of them": {
            3: "3",
            4: _no_tags(4),
            9: row(9, start="9.0", end="1.0"),
            44: _no_tags(44, '"a\tb"'),
        },
    }.items(),
    ids=lambda case: case[0],
)
def test_the_stream_skips_and_keeps_rows_as_the_checks_do(tmp_path: Path, monkeypatch, case) -> None:
    """Malformed records are skipped in the stream with their line numbers, short rows put back in their
    place, across many small blocks and row groups: the table and stats of the row-by-row checks."""
    import pyarrow.parquet as pq

    from egonlq.data.egoclip import write_egoclip_parquet

    lines = _many(60)
    for i, line in case[1].items():
        lines[i] = line
    path = write(tmp_path, lines)
    out = tmp_path / "out" / "egoclip.parquet"
    stats = write_egoclip_parquet(path, out, rows_per_group=7, block_size=512)
    table, expected = _checked_only(path, monkeypatch)
    assert stats == expected and pq.read_table(out).equals(table)
    whole, whole_stats = read_egoclip_csv(path)  # the fast read in one block
    assert whole.equals(table) and whole_stats == expected
    assert stats["malformed_lines"] + stats["short_rows_kept"] > 0 or case[0] == "short row, bad number"


def test_a_malformed_line_keeps_the_file_on_the_fast_read(tmp_path: Path, monkeypatch) -> None:
    """One record with the wrong field count no longer sends the whole file through the slow checks."""
    import egonlq.data.egoclip as egoclip

    lines = _many(60)
    lines[30] = "30\tbroken"
    path = write(tmp_path, lines)
    monkeypatch.setattr(egoclip, "_read_checked", lambda *a: pytest.fail("read through the checks"))
    table, stats = egoclip.read_egoclip_csv(path)
    stats_w = egoclip.write_egoclip_parquet(path, tmp_path / "t.parquet", rows_per_group=7, block_size=512)
    assert stats == stats_w and table.num_rows == 59
    assert stats["malformed_examples"] == ["line 32: 2 columns instead of 11"]


@pytest.mark.parametrize("head", [bytes(range(256)) * 4, b"clip_idx\tvideo_uid\xe9\n0\tx\n"])
def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path, head: bytes) -> None:
    path = tmp_path / "egoclip.csv"
    path.write_bytes(head)
    with pytest.raises(InputError, match="not UTF-8 text") as info:
        read_egoclip_csv(path)
    assert info.value.path == str(path)
