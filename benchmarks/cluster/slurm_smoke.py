"""The smoke configuration through the Snakemake SLURM executor plugin on a real (one-node) SLURM cluster, beside the
same run on the local executor: wall-clock, what was submitted, MLflow runs, and that a rerun is a no-op.

    benchmarks/cluster/slurm_local.sh start          # as root: slurmctld + slurmd from the distribution's packages
    python benchmarks/cluster/slurm_smoke.py > results/benchmarks/slurm.md
"""
from __future__ import annotations

import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--configfile", "config/smoke.yaml"]


def run(cwd: Path, *args) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"snakemake {' '.join(args)} failed in {cwd}:\n{out.stderr[-4000:]}")
    return time.perf_counter() - start, out.stdout + out.stderr


def mlflow_runs(cwd: Path) -> int:
    with sqlite3.connect(cwd / "results" / "mlflow.db") as db:
        return db.execute("select count(*) from runs where lifecycle_stage = 'active'").fetchone()[0]


def fresh(root: Path, name: str) -> Path:
    d = root / name
    shutil.copytree(REPO / "config", d / "config")
    return d


def main():
    if not shutil.which("sbatch") or subprocess.run(["sinfo"], capture_output=True).returncode:
        sys.exit("no SLURM cluster answers (sinfo failed): run benchmarks/cluster/slurm_local.sh start as root first")
    root = Path(tempfile.mkdtemp(prefix="sgm-slurm-"))
    local_s, _ = run(fresh(root, "local"), "--cores", "2")
    cluster = fresh(root, "slurm")
    slurm_s, log = run(cluster, "--workflow-profile", str(REPO / "profiles" / "slurm-local"))
    again_s, again = run(cluster, "--workflow-profile", str(REPO / "profiles" / "slurm-local"))
    submitted = re.findall(r"SLURM jobid (\d+) \(log: [^)\n]*?slurm_logs/rule_(\w+)/(?:([^/\n]+)/)?\d+\.log\)", log)
    sinfo = subprocess.run(["sinfo", "-h", "-o", "%P %D %c %m %G"], capture_output=True, text=True).stdout.strip()
    version = subprocess.run(["sinfo", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"# Smoke configuration on SLURM (`{version}`, one node: {platform.node()}, {platform.machine()})\n")
    print("Measured by `benchmarks/cluster/slurm_smoke.py` on the cluster of `benchmarks/cluster/slurm_local.sh` "
          "(partitions `cpu`, `gpu` on the same node; no accounting database) with `profiles/slurm-local`.\n")
    print(f"Partitions (sinfo: partition, nodes, CPUs, memory MB, gres):\n\n```\n{sinfo}\n```\n")
    print("| executor | wall-clock (s) | jobs submitted to SLURM | MLflow runs |\n|---|---:|---:|---:|")
    print(f"| local, `--cores 2` | {local_s:.1f} | — | {mlflow_runs(root / 'local')} |")
    print(f"| SLURM, `--workflow-profile profiles/slurm-local` | {slurm_s:.1f} | {len(submitted)} | {mlflow_runs(cluster)} |")
    print(f"\nRerun on SLURM: {again_s:.1f} s, "
          + ("'Nothing to be done'" if "Nothing to be done" in again else "**jobs ran again**") + ".\n")
    print("Submitted (SLURM job id, rule, wildcards):\n\n```")
    for jobid, rule, wc in submitted:
        print(f"{jobid:>6}  {rule:<12} {wc}")
    print("```\n")
    print("The SLURM run pays each job's submission and Python start on the node, and the plugin's status polling "
          "(squeue, an interval that starts at `slurm-init-seconds-before-status-checks` and grows by 10 s while no job "
          "finishes): seconds per job that vanish against hour-long training jobs on GPU nodes.")


if __name__ == "__main__":
    main()
