"""The step-grounding recipe: the source's claim against the steps stage's per-seed metrics."""

from __future__ import annotations

import json
from pathlib import Path

from egonlq.steps.recipe import recipe_arms, write_steps_recipe


def _metrics(root: Path, values: dict[tuple[str, str], list[float | None]]) -> list[Path]:
    """Metrics files in the stage's layout: (model, decoder) -> R1@0.3 per seed (None: did not run)."""
    paths = []
    for (model, decoder), per_seed in values.items():
        run = "scratch" if model == "vslnet" else "gt100"
        for seed, v in enumerate(per_seed):
            name = "span_metrics.json" if model == "vslnet" else f"{decoder}_metrics.json"
            path = root / model / run / f"seed{seed}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            entry = {"note": "too many steps"} if v is None else {"recall": {"R1@0.3": v / 100}, "miou": 0.1}
            path.write_text(json.dumps({"official": entry, "strict": entry}))
            paths.append(path)
    return paths


def _write(tmp_path: Path, paths: list[Path]) -> tuple[bool, list[str]]:
    out = {f"out_{k}": tmp_path / f"r.{k}" for k in ("parquet", "png")} | {"out_markdown": tmp_path / "r.md"}
    ok = write_steps_recipe(paths, "gt100", **out)
    return ok, (tmp_path / "r.md").read_text().splitlines()


VALUES = {
    ("zeroshot", "argmax"): [4.0, 5.0],
    ("zeroshot", "dp"): [50.0, 55.0],
    ("adapters", "argmax"): [20.0, 22.0],
    ("adapters", "dp"): [58.0, 60.0],
    ("adapters", "dfs"): [None, 61.0],
    ("vslnet", "span"): [22.0, 21.0],
}


def test_claim_holds_and_arms_are_in_table_order(tmp_path: Path) -> None:
    paths = _metrics(tmp_path / "steps", VALUES)
    ok, lines = _write(tmp_path, paths)
    assert ok and lines[0].startswith("Claim: Goal-Step")
    assert lines[-1].startswith("Demo reproduces the claim: yes")
    arms = recipe_arms(paths, "gt100")
    assert list(dict.fromkeys(arms["arm"])) == [
        "zeroshot argmax", "zeroshot dp", "adapters argmax", "adapters dp", "adapters dfs", "vslnet span",
    ]  # fmt: skip
    assert "| adapters dfs | 1 | 61.00 |" in lines  # a seed DFS did not run has no value, and is counted
    assert any(line.startswith("| adapters + DP vs VSLNet | 59.00 | 21.50 | +37.50") for line in lines)


def test_claim_fails_when_fine_tuning_does_not_help_on_a_seed(tmp_path: Path) -> None:
    paths = _metrics(tmp_path / "steps", {**VALUES, ("zeroshot", "dp"): [50.0, 61.0]})
    ok, lines = _write(tmp_path, paths)
    assert not ok and "DP: adapters vs zero-shot: no gain on every seed" in lines[-1]
