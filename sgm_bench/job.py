"""What every workflow job script runs first: its threads and allocator (runtime.configure), its log, and the plan it
reads instead of the configuration mapping."""
from __future__ import annotations

import atexit
import os
import sys
import time
from pathlib import Path

import torch

from .runtime import configure


def setup_job(threads: int, log_path=None, job=None) -> None:
    """torch threads = the job's cores and the allocator (runtime.configure); warnings and progress go to its log,
    which opens with what the job is (rule, wildcards, threads, its settings) and closes with its wall-clock."""
    configure(threads)
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    if job is not None:
        start = time.time()
        wildcards = ", ".join(f"{k}={v}" for k, v in job.wildcards.items())
        print(f"sgm-bench: {time.strftime('%Y-%m-%d %H:%M:%S')} rule {job.rule} ({wildcards or 'no wildcards'}), "
              f"{threads} thread(s), torch {torch.__version__}", file=sys.stderr)
        for name, value in (job.params.items() if hasattr(job, "params") else []):
            print(f"sgm-bench: {name} {value}", file=sys.stderr)
        atexit.register(lambda: print(f"sgm-bench: done in {time.time() - start:.1f} s", file=sys.stderr))


def start(job, threads: int | None = None):
    """A Snakemake job's setup (setup_job with its threads and log) and its plan."""
    from .plan import build_plan

    setup_job(job.threads if threads is None else threads, job.log[0], job)
    return build_plan(job.config)


FORCED = "SGM_BENCH_FORCED"  # what the Snakefile was told to re-run (--forcerun / -R rules or files, --forceall: *)


def forced(job) -> bool:
    """Whether Snakemake was told to re-run this job: then its kept parts and cached statistics are computed again,
    never reused (a re-run that reads its own cache would only copy it)."""
    names = set(os.environ.get(FORCED, "").split("\n")) - {""}
    return "*" in names or job.rule in names or any(os.path.normpath(str(o)) in names for o in job.output)
