"""The tiny demo through the slurm profile on a real one-node SLURM cluster (no accounting daemon, no cgroups,
no partition named in the profile): every job runs as its own sbatch and completes, and a second run plans
nothing. The cluster comes from Debian's slurm-wlm and munge (`make test` installs them where it can)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REPO, snakemake
from tests.workflow.slurm_cluster import missing_programs, slurm_cluster

pytestmark = pytest.mark.workflow

PROFILE = str(REPO / "workflow" / "profiles" / "slurm")


@pytest.mark.skipif(
    bool(missing_programs()),
    reason=f"SLURM is not installed here (missing {', '.join(missing_programs())}): "
    "install Debian's slurm-wlm and munge (make test does so where apt-get can) to run the cluster test",
)
def test_tiny_demo_completes_on_a_plain_slurm_cluster(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(FIXTURES / "tiny" / "config.yaml", work / "config.yaml")
    with slurm_cluster(tmp_path / "cluster") as env:
        run = snakemake(work, "--workflow-profile", PROFILE, env=env, timeout=1800)
        submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", run.stdout + run.stderr))
        local = re.findall(r"localrule (\w+):", run.stdout + run.stderr)
        # every job is an sbatch, but the rendering of the report pages and the final target (local rules)
        assert len(submitted) >= 40 and set(local) == {"all", "report_table"}
        queue = subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%i %T"], capture_output=True, text=True, env=env, check=True
        )
        states = dict(line.split() for line in queue.stdout.splitlines())
        assert set(states) == submitted
        assert set(states.values()) == {"COMPLETED"}, states
        with capsys.disabled():  # in the CI log, whatever pytest's verbosity
            done = sorted(set(states.values()))
            print(f"\nSLURM: {len(states)} sbatch jobs, states {done}, local rules {sorted(set(local))}")
        again = snakemake(work, "--workflow-profile", PROFILE, "-n", env=env)
        assert "Nothing to be done" in again.stdout + again.stderr
    # the rule logs are the one place to look: SLURM's own logs of successful jobs are gone
    assert (work / "results" / "logs" / "train_vslnet").is_dir()
    assert not list((work / ".snakemake" / "slurm_logs").rglob("*.log"))
