"""The video stage's commands: non-zero exit when nothing usable was produced, help on every option, and the
keyframes rules' arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from egonlq.cli import main
from egonlq.data.tables import CLIPS, QUERIES, VIDEOS
from egonlq.io import write_parquet
from tests.conftest import FIXTURES, REPO
from tests.evaluation.test_cli import undocumented
from tests.video.world import World, pa_table


def tables(world: World, folder: Path, *, scale: int = 1) -> list[str]:
    """The clips, queries and videos tables of the world (canonical frame counts times ``scale``); the
    common arguments of frame-features and keyframes."""
    frames = pd.Series(world.num_frames) * scale
    videos = pd.DataFrame(
        {
            "video_uid": frames.index,
            "duration_sec": frames.to_numpy() / 30.0,
            "fps": 30.0,
            "num_frames": frames,
        }
    )
    write_parquet(pa_table(world.clips, CLIPS), folder / "clips.parquet", CLIPS)
    write_parquet(pa_table(world.queries, QUERIES), folder / "queries.parquet", QUERIES)
    write_parquet(pa_table(videos, VIDEOS), folder / "videos.parquet", VIDEOS)
    return ["--clips", str(folder / "clips.parquet"), "--videos", str(folder / "videos.parquet")]


def frame_features(common: list[str], video_dir: Path, out: Path) -> None:
    main(
        ["frame-features", *common, "--video-dir", str(video_dir), "--out-dir", str(out / "features"),
         "--frames", str(out / "frames.parquet"), "--stats", str(out / "stats.json")]
    )  # fmt: skip


def test_frame_features_fails_when_no_video_is_encoded(world: World, tmp_path: Path) -> None:
    common = tables(world, tmp_path)
    frame_features(common, world.video_dir, tmp_path / "ok")
    assert json.loads((tmp_path / "ok" / "stats.json").read_text())["videos_ok"] == 1
    with pytest.raises(
        SystemExit, match=r"^frame-features: no video encoded: no video of the split has an mp4"
    ):
        frame_features(common, tmp_path / "empty", tmp_path / "none")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / world.mp4.name).write_bytes(b"not a video")
    with pytest.raises(SystemExit) as failed:
        frame_features(common, broken, tmp_path / "failed")
    message = str(failed.value.code)
    assert message.startswith(f"frame-features: no video encoded: all 1 failed, first {world.video_uid}: ")
    assert "\n" not in message and not (tmp_path / "failed" / "stats.json").exists()


def keyframes(common: list[str], world: World, out: Path) -> None:
    main(
        ["keyframes", *common, "--queries", str(out.parent / "queries.parquet"), "--video-dir",
         str(world.video_dir), "--scorer", "encoder", "--aks", json.dumps([{"M": 4, "depth": 1}]),
         "--progress", str(out / "progress.jsonl"), "--scores", str(out / "scores.parquet"),
         "--selection", str(out / "selection.parquet"), "--frames-dir", str(out / "png"),
         "--stats", str(out / "stats.json")]
    )  # fmt: skip


def test_keyframes_fails_when_no_query_is_scored(world: World, tmp_path: Path) -> None:
    keyframes(tables(world, tmp_path), world, tmp_path / "ok")
    assert json.loads((tmp_path / "ok" / "stats.json").read_text())["score_rows"] == world.n_eligible
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    with pytest.raises(SystemExit) as failed:  # the mp4 is a tenth of its canonical video
        keyframes(tables(world, wrong, scale=10), world, wrong / "out")
    message = str(failed.value.code)
    assert message.startswith(f"keyframes: no query scored: all 1 failed, first {world.video_uid}: ")
    assert "canonical video has" in message and "\n" not in message


def test_every_command_and_option_has_help() -> None:
    assert undocumented("video") == []


@pytest.mark.workflow
def test_keyframes_vslnet_passes_the_runs_own_label_mode(tmp_path: Path) -> None:
    """A run trained with another label mode than the global one is scored on its own time grid."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings

    config = yaml.safe_load((FIXTURES / "tiny" / "config.yaml").read_text())
    runs = config["experiments"]["runs"]
    next(r for r in runs if r["name"] == "naq_ft")["label_mode"] = "corrected"
    config.setdefault("vslnet", {})["label_mode"] = "compatible"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(cores=1), snakefile=REPO / "Snakefile", workdir=tmp_path
        )
        workflow.dag(DAGSettings(forceall=True)).execute_workflow(executor="dryrun")
        jobs = [job for job in workflow._workflow.dag.jobs if job.rule.name == "keyframes_vslnet"]
    assert jobs and all("--label-mode corrected" in job.shellcmd for job in jobs)


def test_clip_summaries_command_writes_table_json_and_counts(world: World, tmp_path: Path) -> None:
    from egonlq.data.narrations import ingest_narrations
    from egonlq.data.summaries import CLIP_SUMMARIES
    from egonlq.data.tables import SUMMARIES
    from egonlq.io import read_parquet

    ingest_narrations(
        world.root / "v1" / "annotations" / "narration.json",
        tmp_path / "narrations.parquet",
        tmp_path / "summaries.parquet",
    )
    write_parquet(pa_table(world.clips, CLIPS), tmp_path / "clips.parquet", CLIPS)
    names = ("summaries.parquet", "summaries.json", "stats.json")
    out = {name: tmp_path / f"nlq_val_{name}" for name in names}
    main(["clip-summaries", "--summaries", str(tmp_path / "summaries.parquet"), "--clips",
          str(tmp_path / "clips.parquet"), "--parquet", str(out["summaries.parquet"]), "--json",
          str(out["summaries.json"]), "--stats", str(out["stats.json"])])  # fmt: skip
    rows = read_parquet(out["summaries.parquet"], CLIP_SUMMARIES).to_pandas()
    exported = json.loads(out["summaries.json"].read_text())
    stats = json.loads(out["stats.json"].read_text())
    assert sorted(exported) == sorted(world.clips["clip_uid"].unique())
    assert stats["clips"] == len(exported) == stats["clips_with_summary"] + stats["clips_without_summary"]
    assert stats["clips_without_summary"] == sum(v["summary"] is None for v in exported.values())
    # every demo video has a whole-video summary per pass: each clip gets its video's summaries
    summaries = read_parquet(tmp_path / "summaries.parquet", SUMMARIES).to_pandas()
    per_video = summaries.groupby("video_uid").size()
    for entry in exported.values():
        assert len(entry["summaries"]) == per_video.get(entry["video_uid"], 0)
        assert all(s["start_sec"] <= 0 <= s["end_sec"] for s in entry["summaries"])
    assert len(rows) == sum(len(v["summaries"]) for v in exported.values())


def test_moment_hits_coverage_needs_all_three_arguments(tmp_path: Path) -> None:
    args = ["moment-hits", "--selections", "s", "--queries", "q", "--clips", "c", "--parquet", "p",
            "--markdown", "m", "--plot", "x", "--narrations", "n"]  # fmt: skip
    with pytest.raises(SystemExit, match="summary coverage needs --narrations, --coverage-parquet"):
        main(args)


@pytest.mark.workflow
def test_keyframe_targets_plan_the_dual_encoder_scorer_and_the_recipe(tmp_path: Path) -> None:
    """keyframes_dualenc scores with the gt100 seed-0 checkpoint; recipe_keyframes re-selects every scorer's
    stored scores with the AKS set "seed" (one job each, nothing re-scored); `all` plans neither."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings

    (tmp_path / "config.yaml").write_text((FIXTURES / "tiny" / "config.yaml").read_text())
    planned = {}
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(cores=1), snakefile=REPO / "Snakefile", workdir=tmp_path
        )
        for targets in (["all"], ["keyframes_dualenc", "recipe_keyframes"]):
            dag = workflow.dag(DAGSettings(targets=targets, forceall=True))
            dag.execute_workflow(executor="dryrun")
            planned[targets[0]] = list(workflow._workflow.dag.jobs)
    names = {job.rule.name for job in planned["all"]}
    assert not names & {"keyframes_dual_encoder", "keyframes_aks_set", "keyframe_recipe"}
    (score,) = [job for job in planned["keyframes_dualenc"] if job.rule.name == "keyframes_dual_encoder"]
    assert "--scorer dualenc --dualenc-dir results/dualenc/gt100/seed0" in score.shellcmd
    assert "results/keyframes/dualenc_gt100_seed0/selection.parquet" in score.output
    reselect = [job for job in planned["keyframes_dualenc"] if job.rule.name == "keyframes_aks_set"]
    scorers = sorted(Path(job.output[0]).parent.name for job in reselect)
    # the scorers of the moment-hit table (the tiny config trains one seed), the summary-guided ones left out
    query_guided = {
        Path(job.output[0]).parent.name
        for job in planned["all"]
        if job.rule.name in ("keyframes_encoder", "keyframes_vslnet") and not job.wildcards.get("text")
    }
    assert scorers == sorted(query_guided) and len(scorers) == 2
    assert all("--aks seed" in job.shellcmd and "/aks_seed/" in job.output[0] for job in reselect)
