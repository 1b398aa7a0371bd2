"""A one-node SLURM cluster on localhost for the tests: munge, slurmctld and slurmd from Debian's packages
(slurm-wlm, munge), configured in a temporary folder, started and stopped by their pids.

No accounting daemon (slurmdbd), no cgroups (proctrack/linuxproc, task/none): the plain cluster the slurm
profile must work on. Nothing system-wide is written: munge gets its own key and socket, the daemons their own
ports, state and log folders. Client commands find the configuration through ``SLURM_CONF``; the
executor's job-step plugin strips ``SLURM_*`` variables from the environment of its inner ``srun``, so
``bin/srun`` (first on ``PATH``) puts ``SLURM_CONF`` back before calling the real one.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "srun")


def missing_programs() -> list[str]:
    """The SLURM/munge programs this machine lacks (empty when a cluster can be started)."""
    missing = [p for p in DAEMONS if not os.access(p, os.X_OK)]
    return missing + [c for c in CLIENTS if shutil.which(c) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slurm_conf(root: Path, host: str, cpus: int, mem_mb: int) -> str:
    ctld, slurmd = _free_port(), _free_port()
    return f"""\
ClusterName=egonlqtest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/socket
CredType=cred/munge
SlurmctldPort={ctld}
SlurmdPort={slurmd}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MinJobAge=3600
# memory is scheduled, not enforced (no cgroups): declare enough for every rule's request on any CI machine
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
NodeName={host} CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _pid(path: Path, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text().split()[0])
        time.sleep(0.1)
    raise RuntimeError(f"{path} was not written: the daemon did not start (see {path.parent}/log)")


@contextmanager
def slurm_cluster(root: Path, cpus: int | None = None, mem_mb: int = 64000) -> Iterator[dict[str, str]]:
    """Start a one-node cluster under ``root``; yield the environment its clients (and Snakemake) need."""
    root = root.resolve()
    for sub in ("munge", "state", "spool", "log", "bin"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "munge").chmod(0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    host = socket.gethostname()
    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root, host, cpus or os.cpu_count() or 1, mem_mb))
    srun = root / "bin" / "srun"
    srun.write_text(f'#!/bin/sh\nexport SLURM_CONF={conf}\nexec {shutil.which("srun")} "$@"\n')
    srun.chmod(0o755)
    env = dict(os.environ, SLURM_CONF=str(conf), PATH=f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}")
    for var in ("SBATCH_PARTITION", "SBATCH_ACCOUNT"):
        env.pop(var, None)
    pids: list[int] = []
    try:
        munge = root / "munge"
        subprocess.run(
            [DAEMONS[0], "--force", f"--socket={munge}/socket", f"--key-file={key}",
             f"--log-file={root}/log/munged.log", f"--pid-file={munge}/munged.pid",
             f"--seed-file={munge}/seed"],
            check=True, env=env,
        )  # fmt: skip
        pids.append(_pid(munge / "munged.pid"))
        subprocess.run([DAEMONS[1], "-f", str(conf)], check=True, env=env)
        pids.append(_pid(root / "slurmctld.pid"))
        subprocess.run([DAEMONS[2], "-f", str(conf)], check=True, env=env)
        pids.append(_pid(root / "slurmd.pid"))
        deadline = time.monotonic() + 60
        while True:  # the node registers with the controller
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env)
            if state.stdout.strip() == "idle":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test node never became idle: {state.stdout} {state.stderr}")
            time.sleep(0.5)
        yield env
    finally:
        for pid in reversed(pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in pids:
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
