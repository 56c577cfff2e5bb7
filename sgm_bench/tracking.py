"""MLflow logging: a parent run per trained model, a child run per (sampler, steps, seed set).

One writer (the workflow's `track` job) logs everything after the parallel jobs finish, so concurrent jobs cannot lose
or duplicate runs. Each run carries a deterministic job key; a run is complete only once that tag is set, so a re-run
skips complete runs and deletes half-written ones.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient


def job_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def environment_tags(device: str = "") -> dict:
    """git commit, package versions and device, on every run."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    tags = {"git_commit": commit, "device": device}
    for pkg in ("sgm-bench", "torch", "torch-fidelity", "snakemake", "mlflow"):
        try:
            tags[f"version.{pkg}"] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return tags


class Tracker:
    """Idempotent writes to one experiment."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None = None):
        with store_lock(tracking_uri):  # the first writer creates the store (and the experiment) alone
            self.client = MlflowClient(tracking_uri)
            exp = self.client.get_experiment_by_name(experiment)
            loc = Path(artifact_location).resolve().as_uri() if artifact_location else None
            self.exp_id = exp.experiment_id if exp else self.client.create_experiment(experiment, artifact_location=loc)

    def find(self, key: str):
        runs = self.client.search_runs([self.exp_id], filter_string=f"tags.job_key = '{key}'", max_results=1)
        return runs[0].info.run_id if runs else None

    def _clean_pending(self, key: str):
        for r in self.client.search_runs([self.exp_id], filter_string=f"tags.pending_key = '{key}'"):
            if "job_key" not in r.data.tags:
                self.client.delete_run(r.info.run_id)

    def supersede(self, job: str, key: str) -> int:
        """Delete (MLflow's soft delete) the complete runs of logical job `job` other than `key`: a re-run replaces its
        run, so a search returns one current run per job. Returns how many were superseded."""
        old = [r for r in self.client.search_runs([self.exp_id], filter_string=f"tags.job = '{job}'", max_results=50000)
               if r.data.tags.get("job_key") != key]
        for r in old:
            self.client.delete_run(r.info.run_id)
        return len(old)

    def log_run(self, key: str, name: str, params: dict, metrics: dict, tags: dict, parent: str | None = None,
                artifacts=(), series: dict | None = None, failed: bool = False) -> tuple[str, bool]:
        """(run_id, created): a complete run with this key is reused; otherwise written and then marked complete
        (FAILED where the result it records diverged, so `attributes.status = 'FAILED'` finds it)."""
        existing = self.find(key)
        if existing:
            return existing, False
        self._clean_pending(key)
        run_tags = {"pending_key": key, "mlflow.runName": name, **tags}
        if parent:
            run_tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(self.exp_id, tags=run_tags)
        rid = run.info.run_id
        self.client.log_batch(rid, params=[Param(k, str(v)[:6000]) for k, v in params.items()],
                              metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()
                                       if isinstance(v, (int, float)) and v == v])
        for metric, points in (series or {}).items():
            batch = [Metric(metric, float(v), 0, int(s)) for s, v in points]
            for i in range(0, len(batch), 1000):
                self.client.log_batch(rid, metrics=batch[i:i + 1000])
        for a in artifacts:
            if Path(a).exists():
                self.client.log_artifact(rid, str(a))
        self.client.set_tag(rid, "job_key", key)
        self.client.set_terminated(rid, status="FAILED" if failed else "FINISHED")
        if "job" in tags:
            self.supersede(tags["job"], key)
        return rid, True

    def count(self) -> int:
        return len(self.client.search_runs([self.exp_id], max_results=50000))


@contextlib.contextmanager
def store_lock(tracking_uri: str):
    """An exclusive lock beside a SQLite store while it is opened: two first writers (two configurations' `track`
    jobs at once) would both run the schema migrations and break the database."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    db = Path(tracking_uri[len("sqlite:///"):])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested configuration to dotted MLflow params."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out
