"""The workflow against a shared MLflow server (PostgreSQL backend, served artifacts): concurrent writer jobs lose and
duplicate no run, and a rerun is idempotent.

The smoke configuration plus 8 more toy models (11 models) is computed first; then the tracking jobs are released at
once with --cores 8, so 8 track_model jobs write to the server together. Then the tracking jobs are forced to run again.

    benchmarks/cluster/mlflow_server.sh start                 # as root: PostgreSQL + mlflow server on port 5057
    python benchmarks/cluster/mlflow_concurrency.py [--uri http://127.0.0.1:5057] > results/benchmarks/mlflow_server.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
EXTRA = 8


def snakemake(cwd: Path, uri: str, *args) -> float:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--configfile",
                          "config/concurrency.yaml", *args], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    if out.returncode:
        sys.exit(f"snakemake {' '.join(args)} failed:\n{out.stderr[-4000:]}")
    return time.perf_counter() - start


def configuration(experiment: str) -> dict:
    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    cfg["mlflow"]["experiment"] = experiment
    base = cfg["models"]["vp-mixture2d"]
    for k in range(1, EXTRA + 1):
        cfg["models"][f"vp-mixture2d-seed{k}"] = {**base, "train": {**base["train"], "seed": k, "processes": 1},
                                                  "samplers": ["euler_maruyama"]}
    return cfg


def writers_at_once(logs: list[Path]) -> int:
    """The most track_model jobs whose [start, end] overlap, from their logs' first and last lines."""
    spans = []
    for log in logs:
        text = log.read_text()
        start = datetime.strptime(re.search(r"sgm-bench: (\S+ \S+) rule", text).group(1), "%Y-%m-%d %H:%M:%S")
        seconds = float(re.search(r"done in ([\d.]+) s", text).group(1))
        spans.append((start.timestamp(), start.timestamp() + max(seconds, 1.0)))
    return max(sum(a <= t < b for a, b in spans) for t, _ in spans)


def check_runs(uri: str, experiment: str, expected: int) -> dict:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    names = Counter(r.info.run_name for r in runs)
    ids = {r.info.run_id for r in runs}
    orphans = [r.info.run_name for r in runs if r.data.tags.get("mlflow.parentRunId", r.info.run_id) not in ids]
    artifacts = sum(bool(client.list_artifacts(r.info.run_id)) for r in runs)
    return {"active": len(runs), "expected": expected, "duplicated": sorted(n for n, c in names.items() if c > 1),
            "orphans": orphans, "with_artifacts": artifacts}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", default="http://127.0.0.1:5057")
    args = ap.parse_args()
    if subprocess.run(["curl", "-sf", f"{args.uri}/health"], capture_output=True).returncode:
        sys.exit(f"no MLflow server answers at {args.uri}: run benchmarks/cluster/mlflow_server.sh start first")
    from sgm_bench.plan import build_plan

    experiment = f"sgm-bench-concurrency-{int(time.time())}"
    cfg = configuration(experiment)
    root = Path(tempfile.mkdtemp(prefix="sgm-mlflow-"))
    shutil.copytree(REPO / "config", root / "config")
    (root / "config" / "concurrency.yaml").write_text(yaml.safe_dump(cfg))
    plan = build_plan(cfg)
    expected = len(plan.models) + sum(len(j.steps) for j in plan.jobs)
    compute_s = snakemake(root, args.uri, "--cores", "2", "--omit-from", "track_model")
    track_s = snakemake(root, args.uri, "--cores", "8")
    logs = sorted((root / "results" / "smoke" / "logs" / "track").glob("*.log"))
    first = check_runs(args.uri, experiment, expected)
    concurrent = writers_at_once(logs)
    rerun_s = snakemake(root, args.uri, "--cores", "8", "--forcerun", "track_model")
    again = check_runs(args.uri, experiment, expected)
    created = json.loads((root / "results" / "smoke" / "mlflow_runs.json").read_text())["created"]
    ok = (first["active"] == again["active"] == expected and not first["duplicated"] + first["orphans"]
          + again["duplicated"] + again["orphans"] and created == 0)
    print(f"# MLflow tracking server: concurrent writers ({platform.node()}, {platform.machine()}, "
          f"{os.cpu_count()} cores)\n")
    print(f"`mlflow server` with a PostgreSQL backend store and served artifacts (`benchmarks/cluster/mlflow_server.sh`),"
          f" the workflow pointed at it by `MLFLOW_TRACKING_URI={args.uri}` alone. Configuration: smoke + {EXTRA} toy "
          f"models ({len(plan.models)} models), measured by `benchmarks/cluster/mlflow_concurrency.py`.\n")
    print("| step | wall-clock (s) | MLflow runs (active / expected) | duplicated | orphaned children |")
    print("|---|---:|---:|---:|---:|")
    print(f"| compute (`--omit-from track_model`) | {compute_s:.1f} | — | — | — |")
    print(f"| tracking, `--cores 8`: {len(logs)} track_model jobs, up to {concurrent} writing at once | {track_s:.1f} | "
          f"{first['active']} / {expected} | {len(first['duplicated'])} | {len(first['orphans'])} |")
    print(f"| rerun, `--forcerun track_model` | {rerun_s:.1f} | {again['active']} / {expected} | "
          f"{len(again['duplicated'])} | {len(again['orphans'])} |")
    print(f"\nRuns with artifacts served by the server: {again['with_artifacts']} of {again['active']}. "
          f"Runs created by the rerun: {created}. Verdict: {'PASS' if ok else 'FAIL'}.")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
