"""Blocks, prompts, sharded generation with cache and resume, retries, windows, merge, export, rephrasing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egonlq.data.tables import NARRATIONS, VIDEOS
from egonlq.errors import InputError
from egonlq.queries.blocks import Block, make_blocks, parse_numbered_list, shard_of
from egonlq.queries.curation import assign_pseudo_clips, curate_narrations, pseudo_clips
from egonlq.queries.generation_cache import GenerationCache
from egonlq.queries.llm_backends import Generation, TemplateBackend
from egonlq.queries.llm_queries import (
    GENERATED,
    RETRY_NOTE,
    export_nlq_json,
    fit_window,
    generate_shard,
    load_prompt,
    merge_shards,
    narration_rows,
    render_prompt,
    rephrase,
)
from egonlq.queries.template_writer import TEMPLATES

ACTIONS = """picks the knife from the drawer|cuts the onion on the counter|puts the knife in the sink
washes a cup in the sink|turns on the kettle|places the cup on the table|opens the fridge
takes a bottle from the fridge|pours water into the bowl|closes the fridge|drops the spoon on the floor
folds the towel on the table""".replace("\n", "|").split("|")


def _assigned(counts: dict[str, int], duration: float = 900.0) -> tuple[pa.Table, object]:
    """Curated narrations with pseudo-clips: ``counts[video]`` narrations 60 s apart, reverse file order."""
    rows = []
    for video, n in counts.items():
        for i in reversed(range(n)):
            rows.append({"video_uid": video, "pass": 1, "narration_idx": i, "timestamp_sec": 5.0 + 60.0 * i,
                         "timestamp_frame": None, "text": f"#C C {ACTIONS[i % len(ACTIONS)]}", "tag": "#C",
                         "unsure": False, "annotation_uid": "a"})  # fmt: skip
    narr = pa.Table.from_pylist(rows, schema=NARRATIONS)
    videos = pa.Table.from_pylist(
        [
            {"video_uid": v, "duration_sec": duration, "fps": 30.0, "num_frames": int(duration * 30)}
            for v in counts
        ],
        schema=VIDEOS,
    )
    curated, _ = curate_narrations(narr, videos, exclude_videos={"val": set(), "test": set()}, alpha=30.0)
    clips = pseudo_clips(curated)
    assigned, _ = assign_pseudo_clips(curated, clips)
    return assigned, clips


@pytest.fixture(scope="module")
def world() -> tuple[list[Block], object]:
    assigned, clips = _assigned({"va": 10, "vb": 3})
    return make_blocks(assigned, block_size=4), clips


def _run(blocks: list[Block], backend: object, tmp: Path, name: str = "s", **kwargs: object) -> dict:
    kwargs.setdefault("prompt_template", load_prompt())
    kwargs.setdefault("batch_size", 2)
    return generate_shard(
        blocks, backend, cache_path=tmp / f"{name}.jsonl", out_path=tmp / f"{name}.parquet", **kwargs
    )


class Counting:
    """Wraps a backend: counts prompts, optionally dies after ``fail_after`` batches (a killed job)."""

    def __init__(self, inner: object, fail_after: int | None = None) -> None:
        self.inner, self.fail_after, self.batches, self.prompts = inner, fail_after, 0, []
        self.name = inner.name

    def fingerprint(self) -> dict:
        return self.inner.fingerprint()

    def generate(self, prompts: list[str]) -> list[Generation]:
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise RuntimeError("killed")
        self.batches += 1
        self.prompts += prompts
        return self.inner.generate(prompts)


def test_blocks_are_consecutive_stable_and_sharded(world: tuple) -> None:
    blocks, _ = world
    assert [(b.video_uid, len(b.rows)) for b in blocks] == [("va", 4), ("va", 4), ("va", 2), ("vb", 3)]
    times = [r.time_sec for b in blocks[:3] for r in b.rows]
    assert times == [5.0 + 60.0 * i for i in range(10)]
    assert blocks[0].block_id == "va:" + hashlib.sha256(b"va:1:0\nva:1:1\nva:1:2\nva:1:3").hexdigest()[:12]
    again = make_blocks(_assigned({"vb": 3, "va": 10})[0], block_size=4)
    assert [b.block_id for b in again] == [b.block_id for b in blocks]
    shards = [shard_of(b.block_id, 3) for b in blocks]
    assert shards == [shard_of(b.block_id, 3) for b in reversed(blocks)][::-1]
    parts = [[b for b in blocks if shard_of(b.block_id, 3) == s] for s in range(3)]  # in their order
    assigned = _assigned({"va": 10, "vb": 3})[0]
    assert [make_blocks(assigned, block_size=4, shard=s, num_shards=3) for s in range(3)] == parts
    assert sorted(b.block_id for p in parts for b in p) == sorted(b.block_id for b in blocks)
    assert len({shard_of(f"v:{i}", 4) for i in range(50)}) == 4


def test_prompt_has_templates_example_and_block(world: tuple) -> None:
    blocks, _ = world
    template = load_prompt()
    prompt = render_prompt(blocks[3], template)
    for t in TEMPLATES:
        assert f"- {t}\n" in prompt
    assert "In what location did I see object X ?" in prompt and "How many X’s?" in prompt
    items, timed = parse_numbered_list(prompt)
    assert timed and items == [("00:05", "The camera wearer picks the knife from the drawer"),
                               ("01:05", "The camera wearer cuts the onion on the counter"),
                               ("02:05", "The camera wearer puts the knife in the sink")]  # fmt: skip
    assert '{"i": <narration number>, "question": "<question>"}' in prompt
    with pytest.raises(ValueError, match="NARRATIONS"):
        render_prompt(blocks[0], "no placeholder")


def test_generate_shard_template_backend(world: tuple, tmp_path: Path) -> None:
    blocks, _ = world
    stats = _run(blocks, TemplateBackend(seed=0), tmp_path)
    table = pq.read_table(tmp_path / "s.parquet")
    assert table.schema.equals(GENERATED, check_metadata=False)
    assert stats["blocks"] == 4 and stats["generated"] == 4 and stats["cached"] == 0 and stats["failed"] == 0
    assert stats["prompts"] == 4 and stats["accepted"] == table.num_rows == stats["questions_parsed"] == 12
    assert sum(stats["rejected"].values()) == 0
    assert stats["prompt_sha256"] == hashlib.sha256(load_prompt().encode()).hexdigest()
    df = table.to_pandas()
    assert set(df["source"]) == {"template"} and set(df["prompt_sha256"]) == {stats["prompt_sha256"]}
    assert json.loads(df["backend"][0]) == {"backend": "template", "seed": 0, "writer_version": "2"}
    rows = {r.narration_uid: r for b in blocks for r in b.rows}
    for q in df.itertuples():
        r = rows[q.narration_uid]
        assert q.clip_uid == r.clip_uid
        assert q.clip_start_sec <= r.clip_start_sec and q.clip_end_sec >= r.clip_end_sec  # EgoClip's inside
    # beta 60, alpha 30: EgoClip windows are t -/+ 1; narrations 60 s apart: answer windows t -/+ 4 (the cap)
    assert (df["window_end_sec"] - df["window_start_sec"]).round(9).tolist() == [8.0] * 12
    # va:1:9 at 545 s lies in the second pseudo-clip [480, 900]: clip-relative times
    late = df[df["narration_uid"] == "va:1:9"].iloc[0]
    assert (late["clip_start_sec"], late["clip_end_sec"]) == pytest.approx((61.0, 69.0))
    assert (late["window_start_sec"], late["window_end_sec"]) == pytest.approx((541.0, 549.0))
    again = _run(blocks, TemplateBackend(seed=0), tmp_path, name="s2")
    assert pq.read_table(tmp_path / "s2.parquet").equals(table) and again["accepted"] == 12


def test_chunks_change_nothing_but_memory(world: tuple, tmp_path: Path, monkeypatch) -> None:
    """Blocks go through in chunks of SHARD_CHUNK_BLOCKS: the table, the stats and the cache are those of
    one pass (duplicates are found across chunks: ``seen`` spans them)."""
    import egonlq.queries.llm_queries as llm_queries

    blocks, _ = world
    whole = _run(blocks * 2, TemplateBackend(seed=0), tmp_path, name="whole")  # repeats: duplicate_in_video
    monkeypatch.setattr(llm_queries, "SHARD_CHUNK_BLOCKS", 2)  # batch_size 2: 4 chunks of 2 blocks
    counting = Counting(TemplateBackend(seed=0))
    chunked = _run(blocks * 2, counting, tmp_path, name="chunked")
    assert pq.read_table(tmp_path / "chunked.parquet").equals(pq.read_table(tmp_path / "whole.parquet"))
    assert chunked["rejected"]["duplicate_in_video"] == whole["rejected"]["duplicate_in_video"] > 0
    same = ("blocks", "cached", "generated", "accepted", "questions_parsed", "rejected")
    assert {k: chunked[k] for k in same} == {k: whole[k] for k in same}
    # the repeated blocks are answered from the cache the first chunks wrote (one pass prompts them twice)
    assert counting.batches == 2 and chunked["prompts"] == 4 and whole["prompts"] == 8


def test_resume_after_kill_loses_nothing(world: tuple, tmp_path: Path) -> None:
    blocks, _ = world
    reference = _run(blocks, TemplateBackend(seed=0), tmp_path, name="ref")
    killed = Counting(TemplateBackend(seed=0), fail_after=1)
    with pytest.raises(RuntimeError, match="killed"):
        _run(blocks, killed, tmp_path, name="s")
    assert not (tmp_path / "s.parquet").exists()
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 2  # the first batch survived
    resumed = Counting(TemplateBackend(seed=0))
    stats = _run(blocks, resumed, tmp_path, name="s")
    assert len(resumed.prompts) == 2 and stats["cached"] == 2 and stats["generated"] == 2
    assert set(resumed.prompts).isdisjoint(killed.prompts)
    assert pq.read_table(tmp_path / "s.parquet").equals(pq.read_table(tmp_path / "ref.parquet"))
    assert stats["accepted"] == reference["accepted"]
    keys = [json.loads(x)["key"] for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 4
    idle = Counting(TemplateBackend(seed=0))
    assert _run(blocks, idle, tmp_path, name="s")["cached"] == 4 and idle.prompts == []


def test_changed_prompt_or_backend_regenerates(world: tuple, tmp_path: Path) -> None:
    blocks, _ = world
    _run(blocks, TemplateBackend(seed=0), tmp_path)
    changed = Counting(TemplateBackend(seed=0))
    stats = _run(blocks, changed, tmp_path, prompt_template=load_prompt() + "\nBe concise.\n")
    assert len(changed.prompts) == 4 and stats["cached"] == 0
    other_seed = Counting(TemplateBackend(seed=1))
    _run(blocks, other_seed, tmp_path)
    assert len(other_seed.prompts) == 4
    assert len(GenerationCache(tmp_path / "s.jsonl")) == 12


def test_torn_cache_line_is_ignored_and_counted(world: tuple, tmp_path: Path) -> None:
    blocks, _ = world
    _run(blocks[:2], TemplateBackend(seed=0), tmp_path)
    with open(tmp_path / "s.jsonl", "a") as f:
        f.write('{"key": "deadbeef", "raw_out')  # the job died mid-write
    backend = Counting(TemplateBackend(seed=0))
    stats = _run(blocks, backend, tmp_path)
    assert stats["cache_torn_lines"] == 1 and stats["cached"] == 2 and len(backend.prompts) == 2
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(x)["key"] != "deadbeef" for x in lines)
    assert GenerationCache(tmp_path / "s.jsonl").torn_lines == 0


class Scripted:
    """Garbage for first attempts, a fixed answer for retries (prompts starting with RETRY_NOTE)."""

    name = "llm:scripted"
    question = "Did I leave the fridge open?"  # va's blocks 2 and 3 mention a fridge; va's block 1 and vb not

    def fingerprint(self) -> dict:
        return {"backend": "scripted"}

    def generate(self, prompts: list[str]) -> list[Generation]:
        out = []
        for p in prompts:
            if p.startswith(RETRY_NOTE):
                items = [{"i": 1, "question": self.question}, {"i": 9, "question": "x?"}]
                text = f"Sure:\n```json\n{json.dumps(items)}\n```"
            else:
                text = "I think the questions are: where is"
            out.append(Generation(text, 10, 5))
        return out


def test_retry_then_fail(world: tuple, tmp_path: Path) -> None:
    blocks, _ = world
    stats = _run(blocks, Scripted(), tmp_path, retries=1)
    assert stats["prompts"] == 8 and stats["failed"] == 0 and stats["rejected"]["parse_failure"] == 0
    assert stats["rejected"]["index_out_of_range"] == 4
    assert stats["rejected"]["no_content_word"] == 2
    assert stats["rejected"]["duplicate_in_video"] == 1  # va's 3rd block asks va's 2nd block's question again
    assert stats["accepted"] == 1 and stats["new_tokens"] == 40 and stats["prompt_tokens"] == 80
    stats = _run(blocks, Scripted(), tmp_path, name="none", retries=0)
    assert stats["prompts"] == 4 and stats["failed"] == 4 and stats["rejected"]["parse_failure"] == 4
    assert stats["accepted"] == 0 and pq.read_table(tmp_path / "none.parquet").num_rows == 0


def test_short_windows_widened_or_dropped(tmp_path: Path) -> None:
    assigned, _ = _assigned({"va": 3})
    # make the windows points: a zero-length window at 35 s and one at the clip start
    df = assigned.to_pandas()
    points = [0.0, 35.0, 65.0]
    for column in ("clip_start_sec", "clip_end_sec", "window_start_sec", "window_end_sec", "timestamp_sec"):
        df[column] = points
    blocks = make_blocks(pa.Table.from_pandas(df, schema=assigned.schema, preserve_index=False), block_size=8)
    stats = _run(blocks, TemplateBackend(seed=0), tmp_path, min_window_sec=2.0, max_half_window_sec=0.0)
    table = pq.read_table(tmp_path / "s.parquet").to_pandas().sort_values("clip_start_sec")
    # the third narration's question ("Where is the knife?") repeats the first's: 2 accepted
    assert stats["windows_widened"] == stats["accepted"] == 2 and stats["windows_dropped"] == 0
    assert table[["clip_start_sec", "clip_end_sec"]].values.tolist() == [[0.0, 2.0], [34.0, 36.0]]
    assert table["window_start_sec"].tolist() == [0.0, 34.0]
    stats = _run(
        blocks, TemplateBackend(seed=0), tmp_path, name="d", zero_length="drop", min_window_sec=2.0,
        max_half_window_sec=0.0,
    )  # fmt: skip
    assert stats["windows_dropped"] == 2 and stats["accepted"] == 0
    with pytest.raises(ValueError, match="min_window_sec"):
        _run(blocks, TemplateBackend(seed=0), tmp_path, min_window_sec=0.0)


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 100), st.floats(0, 10), st.floats(0.01, 500), st.floats(0.05, 20))
def test_fit_window_property(start: float, length: float, duration: float, min_len: float) -> None:
    start = min(start, duration)
    end = min(start + length, duration)
    w = fit_window(start, end, duration, min_window_sec=min_len)
    if w is None:
        assert duration <= 1 / 30 + 1e-9
        return
    s, e = w
    assert 0.0 <= s <= e <= duration + 1e-9
    assert e - s >= min(min_len, duration) - 1e-9
    if end - start >= min_len:
        assert (s, e) == (start, end)


def test_merge_shards_dedups_across_shards(world: tuple, tmp_path: Path) -> None:
    blocks, _ = world
    stats = []
    for i, part in enumerate(([blocks[1]], [blocks[0], blocks[2], blocks[3]])):
        s = _run(part, Scripted(), tmp_path, name=f"shard{i}")
        s.update({"shard": i, "num_shards": 2})  # as the generate-queries command writes them
        (tmp_path / f"shard{i}.json").write_text(json.dumps(s))
        stats.append(s)
    assert [s["accepted"] for s in stats] == [1, 1]  # va's 2nd block, then va's 3rd: the same question
    shards = [tmp_path / "shard0.parquet", tmp_path / "shard1.parquet"]
    stats_paths = [tmp_path / "shard0.json", tmp_path / "shard1.json"]
    merged = merge_shards(shards, tmp_path / "all.parquet", stats_paths, tmp_path / "all.json")
    table = pq.read_table(tmp_path / "all.parquet").to_pandas()
    assert len(table) == 1 and table["block_id"].tolist() == [blocks[1].block_id]  # the earlier one is kept
    assert merged["accepted"] == 1 and merged["duplicates_across_shards"] == 1 and merged["shards"] == 2
    assert merged["rejected"]["duplicate_in_video"] == 1 and merged["rejected"]["no_content_word"] == 2
    assert merged["blocks"] == 4 and merged["prompts"] == 8
    assert merged["source"] == "llm:scripted"
    assert merged["num_shards"] == 2 and merged["shard_ids"] == [0, 1] and "shard" not in merged
    assert json.loads((tmp_path / "all.json").read_text()) == merged
    (tmp_path / "other.json").write_text(json.dumps({**stats[1], "shard": 1, "num_shards": 3}))
    with pytest.raises(InputError, match=r"other.json: num_shards 3 differs from 2"):
        merge_shards(
            shards, tmp_path / "x.parquet", [stats_paths[0], tmp_path / "other.json"], tmp_path / "x"
        )
    with pytest.raises(InputError, match=r"shard 0 is merged twice"):
        merge_shards(shards, tmp_path / "x.parquet", [stats_paths[0]] * 2, tmp_path / "x")


def test_export_nlq_json_layout(world: tuple, tmp_path: Path) -> None:
    blocks, clips = world
    _run(blocks, TemplateBackend(seed=0), tmp_path)
    generated = pq.read_table(tmp_path / "s.parquet")
    stats = export_nlq_json(generated, clips, tmp_path / "nlq_train.json")
    data = json.loads((tmp_path / "nlq_train.json").read_text())
    assert (data["version"], data["date"]) == ("1", "000000") and set(data) >= {"description", "videos"}
    assert [v["video_uid"] for v in data["videos"]] == ["va", "vb"] and data["videos"][0]["split"] == "train"
    assert stats == {"videos": 2, "clips": 3, "queries": 12, "clips_without_queries": 1}
    clip = data["videos"][0]["clips"][0]
    row = clips.set_index("clip_uid").loc[clip["clip_uid"]]
    assert (clip["video_start_sec"], clip["video_end_sec"], clip["clip_start_sec"], clip["clip_end_sec"]) == (
        row["video_start_sec"], row["video_end_sec"], 0, row["clip_end_sec"])  # fmt: skip
    (annotation,) = clip["annotations"]
    queries = annotation["language_queries"]
    assert [q["clip_start_sec"] for q in queries] == sorted(q["clip_start_sec"] for q in queries)
    df = generated.to_pandas().set_index("query")
    for q in queries:
        assert q["clip_end_sec"] == pytest.approx(df.loc[q["query"], "clip_end_sec"])
        assert q["video_start_frame"] == int(30 * q["video_start_sec"])
    total = sum(
        len(a["language_queries"]) for v in data["videos"] for c in v["clips"] for a in c["annotations"]
    )
    assert total == 12


def test_rephrase_questions_and_narrations(world: tuple, tmp_path: Path) -> None:
    blocks, _ = world
    _run(blocks, TemplateBackend(seed=0), tmp_path)
    generated = pq.read_table(tmp_path / "s.parquet")
    backend = Counting(TemplateBackend(seed=0))
    template = load_prompt("rephrase_v1")
    stats = rephrase(
        generated, backend, prompt_template=template, cache_path=tmp_path / "r.jsonl",
        out_path=tmp_path / "r.parquet", group_size=4, num_variants=2,
    )  # fmt: skip
    out = pq.read_table(tmp_path / "r.parquet").to_pandas()
    assert (
        stats["groups"] == 2 * 4 and len(backend.prompts) == 8
    )  # va: 10 rows -> 3 groups, vb: 1; x2 variants
    assert sum("variant 2:" in p for p in backend.prompts) == 4
    assert stats["accepted"] == len(out) > 10
    assert stats["accepted"] + sum(stats["rejected"].values()) == stats["questions_parsed"]
    parents = generated.to_pandas().set_index("query_uid")
    for r in out.itertuples():
        p = parents.loc[r.parent_query_uid]
        assert r.source == "rephrase:template" and r.query != p["query"] and r.query.endswith("?")
        assert r.window_start_sec == p["window_start_sec"] and r.window_end_sec == p["window_end_sec"]
        assert r.clip_uid == p["clip_uid"] and r.clip_start_sec == p["clip_start_sec"]
    assert not set(out["query"]) & set(parents["query"])
    narrations = narration_rows(_assigned({"va": 4})[0])
    assert narrations.column("source").to_pylist() == ["narration"] * 4
    stats = rephrase(narrations, TemplateBackend(seed=0), prompt_template=load_prompt("rephrase_v1"),
                     cache_path=tmp_path / "n.jsonl", out_path=tmp_path / "n.parquet")  # fmt: skip
    para = pq.read_table(tmp_path / "n.parquet").to_pandas()
    assert stats["accepted"] == 4 and set(para["source"]) == {"rephrase:narration"}
    assert para["query"].tolist()[0] in ("The camera wearer takes the knife from the drawer",
                                         "From the drawer, the camera wearer picks the knife")  # fmt: skip
