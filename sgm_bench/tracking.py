"""MLflow logging: a parent run per trained model, a child run per (sampler, steps, seed set).

One writer (the workflow's `track` job) logs everything after the parallel jobs finish, so concurrent jobs cannot lose
or duplicate runs. Each run carries a deterministic job key; a run is complete only once that tag is set, so a re-run
skips complete runs and deletes half-written ones.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .layout import is_server


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


# Bookkeeping tags live under `mlflow.` (the UI lists only the user's tags): the run's content key, its logical job
# (a re-run supersedes the job's older run) and the key of a run still being written.
KEY, JOB, PENDING = "mlflow.sgm_bench.key", "mlflow.sgm_bench.job", "mlflow.sgm_bench.pending"
DONE = "mlflow.sgm_bench.completed"  # when the run was marked complete (ns): the first complete run of a key wins


def metric_name(name: str) -> str:
    """An MLflow metric name without spaces or brackets: `fid[w=2.0]` -> `fid_w2.0`."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_.\-/]", "_", name.replace("=", ""))).strip("_")


def compare_link(experiment_id: str, model: str, metric: str) -> str:
    """The UI address (after `mlflow ui`'s http://host:port/) of one model's sampler runs, best first: the runs table
    in model-training mode (MLflow 3 opens GenAI's traces page otherwise), filtered to the model, sorted by metric."""
    from urllib.parse import quote

    search = quote(f"tags.kind = 'sampler' and tags.model = '{model}'")
    return (f"#/experiments/{experiment_id}/runs?workflowType=machine_learning&searchFilter={search}"
            f"&orderByKey={quote(f'metrics.`{metric}`')}&orderByAsc=true")


class Tracker:
    """Idempotent writes to one experiment."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None = None,
                 description: str | None = None):
        with store_lock(tracking_uri):  # the first writer creates the store (and the experiment) alone
            self.client = MlflowClient(tracking_uri)
            exp = self.client.get_experiment_by_name(experiment)
            served = is_server(tracking_uri)  # a server keeps the artifacts in its own store
            loc = Path(artifact_location).resolve().as_uri() if artifact_location and not served else None
            self.exp_id = exp.experiment_id if exp else self._create(experiment, loc)
        # MLflow 3's UI opens an untagged experiment in its GenAI mode (traces); these are model-training runs
        self._tag("mlflow.experimentKind", "custom_model_development")
        if description:  # shown as the experiment's description in the UI
            self._tag("mlflow.note.content", description)

    def _tag(self, key: str, value: str) -> None:
        """Set an experiment tag once; concurrent writer jobs setting the same value race on the server's insert, and
        the loser finds it set."""
        if self.client.get_experiment(self.exp_id).tags.get(key) == value:
            return
        try:
            self.client.set_experiment_tag(self.exp_id, key, value)
        except MlflowException:
            if self.client.get_experiment(self.exp_id).tags.get(key) != value:
                raise

    def _create(self, experiment: str, location: str | None) -> str:
        """Create the experiment; when a concurrent writer job (on a tracking server) created it first, use theirs."""
        try:
            return self.client.create_experiment(experiment, artifact_location=location)
        except MlflowException as e:
            exp = self.client.get_experiment_by_name(experiment)
            if exp is None:
                raise
            print(f"sgm-bench: experiment {experiment} was created by a concurrent writer ({e.error_code}); using it",
                  file=sys.stderr)
            return exp.experiment_id

    def _runs(self):
        """Every active run of the experiment, page by page."""
        token = None
        while True:
            page = self.client.search_runs([self.exp_id], max_results=50000, page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    @functools.cached_property
    def _index(self) -> dict:
        """run id -> bookkeeping tags of the experiment's active runs, from one search: a search per lookup (three per
        logged run) was half of the track job. Each key and job belongs to one writer job, so what concurrent writers
        add meanwhile never concerns this one; this writer's own changes are kept in it."""
        return {r.info.run_id: {k: v for k, v in r.data.tags.items() if k in (KEY, JOB, PENDING)} for r in self._runs()}

    def _matching(self, tag: str, value: str) -> list:
        return [rid for rid, tags in self._index.items() if tags.get(tag) == value]

    def _delete(self, run_id: str) -> None:
        self.client.delete_run(run_id)
        del self._index[run_id]

    def find(self, key: str):
        runs = self._matching(KEY, key)
        return runs[0] if runs else None

    def _clean_pending(self, key: str):
        for rid in self._matching(PENDING, key):
            if KEY not in self._index[rid]:
                self._delete(rid)

    def supersede(self, job: str, key: str) -> int:
        """Delete (MLflow's soft delete) the complete runs of logical job `job` other than `key`: a re-run replaces its
        run, so a search returns one current run per job. Returns how many were superseded."""
        old = [rid for rid in self._matching(JOB, job) if self._index[rid].get(KEY) != key]
        for rid in old:
            self._delete(rid)
        return len(old)

    def log_run(self, key: str, name: str, params: dict, metrics: dict, tags: dict, parent: str | None = None,
                artifacts=(), series: dict | None = None, failed: bool = False, job: str | None = None,
                times: tuple | None = None, datasets=(), tables: dict | None = None,
                documents: dict | None = None) -> tuple[str, bool]:
        """(run_id, created): a complete run with this key is reused; otherwise written and then marked complete
        (FAILED where the result it records diverged, so `attributes.status = 'FAILED'` finds it). times: the work's
        (start, end) in seconds since the epoch; datasets: mlflow DatasetInputs; tables: {file.json: DataFrame};
        documents: {file.yaml: dict}."""
        existing = self.find(key)
        if existing:
            self._restore(existing, artifacts, tables, documents)
            return existing, False
        local = self.client.tracking_uri.startswith("sqlite:///")
        with store_lock(self.client.tracking_uri):  # SQLite: one writer creates a run at a time
            if local:  # under the lock the store itself says whether another writer made this run meanwhile
                existing = self._lookup(key)
                if existing:
                    return existing, False
            else:
                self._clean_pending(key)
            rid = self._write(key, name, params, metrics, tags, parent, artifacts, series, failed, job, times,
                              datasets, tables, documents)
            winner = rid if local else self._settle(key, rid)  # a server takes writers at once: they settle after
        if job:
            self.supersede(job, key)
        return winner, winner == rid

    @functools.cached_property
    def _artifact_root(self) -> Path | None:
        """The experiment's artifact folder when it is a local one (runs keep theirs at <root>/<run id>/artifacts)."""
        location = self.client.get_experiment(self.exp_id).artifact_location
        if "://" in location and not location.startswith("file://"):
            return None
        return Path(location[len("file://"):] if location.startswith("file://") else location)

    def _restore(self, rid: str, artifacts=(), tables=None, documents=None) -> int:
        """Log again what a reused run's local artifact folder lost (a deleted results/mlartifacts): the run's record
        is in the store, its files are not. Returns how many files were restored."""
        root = self._artifact_root
        if root is None:
            return 0
        have = root / rid / "artifacts"
        missing = [a for a in artifacts if Path(a).exists() and not (have / Path(a).name).exists()]
        for a in missing:
            self.client.log_artifact(rid, str(a))
        lost_tables = {f: df for f, df in (tables or {}).items() if not (have / f).exists()}
        for file, df in lost_tables.items():
            self.client.log_table(rid, data=df, artifact_file=file)
        lost_docs = {f: d for f, d in (documents or {}).items() if not (have / f).exists()}
        for file, doc in lost_docs.items():
            self.client.log_dict(rid, doc, file)
        return len(missing) + len(lost_tables) + len(lost_docs)

    def _lookup(self, key: str):
        """The store's own runs of `key` (not the index read when this writer started): a complete one is returned,
        half-written ones (a crashed writer's; called under the store lock, never another's run in progress) deleted."""
        found = None
        for r in self.client.search_runs([self.exp_id], f"tags.`{PENDING}` = '{key}'", max_results=1000):
            if r.data.tags.get(KEY) == key and found is None:
                found = r.info.run_id
                self._index[found] = {k: v for k, v in r.data.tags.items() if k in (KEY, JOB, PENDING)}
            elif r.data.tags.get(KEY) != key:
                self.client.delete_run(r.info.run_id)
                self._index.pop(r.info.run_id, None)
        return found

    def _write(self, key, name, params, metrics, tags, parent, artifacts, series, failed, job, times, datasets, tables,
               documents) -> str:
        """Create the run (pending), log everything, then mark it complete: its key tag is written last."""
        run_tags = {PENDING: key, "mlflow.runName": name, **tags, **({JOB: job} if job else {})}
        if parent:
            run_tags["mlflow.parentRunId"] = parent
        start, end = (int(1000 * t) for t in times) if times else (None, None)
        rid = self.client.create_run(self.exp_id, tags=run_tags, start_time=start).info.run_id
        self._index[rid] = {k: v for k, v in run_tags.items() if k in (JOB, PENDING)}
        self.client.log_batch(rid, params=[Param(k, str(v)[:6000]) for k, v in params.items()],
                              metrics=[Metric(metric_name(k), float(v), end or 0, 0) for k, v in metrics.items()
                                       if isinstance(v, (int, float)) and v == v])
        for metric, points in (series or {}).items():
            batch = [Metric(metric, float(v), 0, int(s)) for s, v in points]
            for i in range(0, len(batch), 1000):
                self.client.log_batch(rid, metrics=batch[i:i + 1000])
        if datasets:
            self.client.log_inputs(rid, datasets=list(datasets))
        for file, df in (tables or {}).items():
            self.client.log_table(rid, data=df, artifact_file=file)
        for file, doc in (documents or {}).items():
            self.client.log_dict(rid, doc, file)
        for a in artifacts:
            if Path(a).exists():
                self.client.log_artifact(rid, str(a))
        self.client.log_batch(rid, tags=[RunTag(DONE, str(time.time_ns())), RunTag(KEY, key)])
        self._index[rid][KEY] = key
        self.client.set_terminated(rid, status="FAILED" if failed else "FINISHED", end_time=end)
        return rid

    def _settle(self, key: str, rid: str) -> str:
        """The one run of `key` when writers race (two runs of one configuration at once each find no run and write
        one) on a server, where no file lock reaches: the complete runs of the key are looked up in the store itself,
        and this writer deletes its own run if another completed earlier (then: has the smaller id) and uses that one.
        It never deletes another writer's run, which that writer may already hold as a parent: writers that finish
        apart keep one run; two whose completion stamps and commits cross can keep two, never lose one."""
        found = self.client.search_runs([self.exp_id], f"tags.`{KEY}` = '{key}'", max_results=1000)
        runs = sorted(found, key=lambda r: (int(r.data.tags.get(DONE, 0)), r.info.run_id))
        winner = runs[0].info.run_id if runs else rid
        if winner != rid:
            self.client.delete_run(rid)
            self._index.pop(rid, None)
            self._index.setdefault(winner, {KEY: key})
        return winner

    def attach(self, run_id: str, files=(), note: str | None = None) -> None:
        """Write (or overwrite) artifacts and the description of an existing run: what summarises a parent's children
        (the model's leaderboard and figure) changes when they do, while the parent run itself stays."""
        for f in files:
            self.client.log_artifact(run_id, str(f))
        if note is not None:
            self.client.set_tag(run_id, "mlflow.note.content", note)

    def relocatable(self, artifact_location: str | None) -> int:
        """Store the experiment's and its runs' artifact locations relative to the working directory (as the SQLite
        store's own path is), so that the results folder can be moved or copied and `mlflow ui` started beside it
        still finds every artifact. MLflow's API always stores absolute file URIs; this rewrites the two columns of
        the SQLite store that hold them. Returns how many runs were rewritten (0 for other stores)."""
        uri = self.client.tracking_uri
        if not (artifact_location and uri.startswith("sqlite:///")) or Path(artifact_location).is_absolute():
            return 0
        import sqlite3

        absolute, relative = Path(artifact_location).resolve().as_uri(), Path(artifact_location).as_posix()
        with contextlib.closing(sqlite3.connect(uri[len("sqlite:///"):])) as db, db:
            db.execute("UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?) "
                       "WHERE experiment_id = ?", (absolute, relative, int(self.exp_id)))
            return db.execute("UPDATE runs SET artifact_uri = replace(artifact_uri, ?, ?) WHERE experiment_id = ?",
                              (absolute, relative, int(self.exp_id))).rowcount

    def count(self) -> int:
        return sum(1 for _ in self._runs())


def dataset_input(name: str, digest: str, source: str, n: int, split: str):
    """An MLflow dataset input (name, content digest, where it comes from, size), logged with a run."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    ds = Dataset(name=name, digest=digest[:36], source_type="code", source=json.dumps({"loader": source}),
                 profile=json.dumps({"num_rows": n}))
    return DatasetInput(dataset=ds, tags=[InputTag(key="mlflow.data.context", value=split)])


@contextlib.contextmanager
def store_lock(tracking_uri: str):
    """An exclusive lock beside a SQLite store while it is opened: two first writers (two configurations' `track`
    jobs at once) would both run the schema migrations and break the database. A tracking server (`mlflow server`,
    PostgreSQL behind it) takes concurrent writers itself: no lock."""
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
