"""The typed plan: a workflow configuration parsed and checked once into frozen settings, its models, its jobs and the
layout of its files. The rules, the job scripts, the tracker, the report and the preflight read the plan; nothing else
reads the configuration mapping.

    plan = build_plan(config)          # one ConfigError naming the entry, before any job
    plan.evaluation.n_samples, plan.models["vp-digits"].family, plan.jobs_of("vp-digits"), plan.layout.metrics(m)
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .chain import make_chain
from .checks import COUNT, FRACTION, POSITIVE, Range, parse_settings, setting
from .data import IMAGES, TOYS
from .errors import ConfigError
from .spec import check_data_options, check_loss_options, merged
from .layout import Layout, check_name, is_server
from .models import FAMILIES, build_sde, check_net
from .samplers import SAMPLERS, applicable
from .samplers.registry import NOT_APPLICABLE, check_options, resolved_options, why_not
from .train import TrainConfig

NEEDS_ROOT = {"mnist", "cifar10"}
EXTRACTORS = ("digits-cnn", "inception-v3-compat", "inception-v3-tf-stylegan")


@dataclass(frozen=True)
class Likelihood:
    """evaluation.likelihood: test-set ODE NLL (score_sde's solver tolerances) with dequantization repeats."""

    n_examples: int = setting(64, COUNT)
    repeats: int = setting(5, COUNT)
    solver: str = setting("rk45", choices=("rk45", "dopri5"))
    eps: float = setting(1e-5, FRACTION)
    rtol: float = setting(1e-5, POSITIVE)
    atol: float = setting(1e-5, POSITIVE)


@dataclass(frozen=True)
class Evaluation:
    """evaluation: how samples are scored (sample counts, seed sets, the FID detector, the floor)."""

    n_samples: int = setting(where=Range(2, integer=True))  # per seed set
    seed_sets: int = setting(where=COUNT)
    kid_subset_size: int = setting(where=Range(2, integer=True))
    batch_size: int = setting(500, COUNT)
    extractor: str = setting("digits-cnn", choices=EXTRACTORS)
    inception_weights: str | None = None  # inception-v3-compat's file, or a TorchScript detector
    classifier_epochs: int = setting(40, COUNT)
    reference_split: str = setting("train", choices=("train", "test"))  # the papers' convention: train
    floor_draws: int = setting(20, Range(2, integer=True))
    pool_seed_sets: bool = setting(False, choices=(False, True))  # images: FID / KID / IS of all seed sets together
    likelihood: Likelihood = setting(of=Likelihood)

    def scored_n(self, n: int | None = None) -> int:
        """How many samples one image-quality value is computed on: a seed set's n, or all seed sets' if pooled."""
        n = n or self.n_samples
        return n * self.seed_sets if self.pool_seed_sets else n


@dataclass(frozen=True)
class Tracking:
    """mlflow: where the runs go (MLFLOW_TRACKING_URI overrides uri), the experiment, the local artifact store."""

    uri: str
    experiment: str
    artifacts: str | None = None

    @property
    def server(self) -> bool:
        """A tracking server takes concurrent writers: one track_model job per model."""
        return is_server(self.uri)


@dataclass(frozen=True)
class ModelSpec:
    """One model entry: its dataset (key and settings) and the mappings training and loading read."""

    name: str
    data_key: str
    data: dict
    model: dict
    loss: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    checkpoint: dict | None = None  # a released checkpoint, evaluated instead of trained
    evaluate: bool = True  # False: trained only as an experiment's input
    deviations: tuple = ()  # how it departs from its paper (printed under the tables it fills, not hashed)
    replicate_of: str | None = None  # another training of that model (`replicates`), with its own training seed

    @property
    def config(self) -> dict:
        """What training reads and hashes, and what the model's run records."""
        out = {"data": self.data, "model": self.model, "loss": self.loss, "train": self.train}
        return {**out, "checkpoint": self.checkpoint} if self.checkpoint else out

    @property
    def family(self) -> str:
        return self.model["family"]

    @property
    def dataset(self) -> str:
        return self.data["name"]

    @property
    def images(self) -> bool:
        return self.dataset in IMAGES

    @property
    def processes(self) -> int:
        return int(self.train.get("processes", 1))


@dataclass(frozen=True)
class EvalJob:
    """One evaluation setting: `name` is the sampler or a named variant of it (e.g. pc_probability_flow)."""

    model: str
    name: str
    sampler: str
    steps: tuple
    options: dict = field(default_factory=dict)
    n_samples: int | None = None  # the model's own sample count (evaluation.n_samples otherwise)


@dataclass(frozen=True)
class ExperimentSpec:
    """experiments.<name>: the registered function (`experiment:`, else the name), its options and the workflow outputs
    it reads (a trained `model:`, the clean `classifier:` of a dataset)."""

    name: str
    function: str
    options: dict
    model: str | None = None
    classifier: str | None = None


@dataclass(frozen=True)
class Plan:
    name: str
    layout: Layout
    device: str
    threads_per_job: int
    tracking: Tracking
    evaluation: Evaluation
    datasets: dict  # key -> data settings
    models: dict  # name -> ModelSpec
    jobs: tuple
    variants: tuple = ()  # the configuration's named sampler variants
    experiments: dict = field(default_factory=dict)  # name -> ExperimentSpec
    paper_cells: tuple = ()
    requires_gpu: bool = False
    required_files: tuple = ()
    not_run: tuple = ()  # (model, sampler, why and where it runs): `not run` cells
    not_applicable: tuple = ()  # (model, sampler, why): `not applicable` cells

    @property
    def released(self) -> dict:
        """model -> its `checkpoint` entry, for the models evaluated from released weights instead of trained."""
        return {m: s.checkpoint for m, s in self.models.items() if s.checkpoint}

    @property
    def benchmarked(self) -> list:
        """Models with sampler and likelihood jobs (all but `evaluate: false` ones), in configuration order."""
        return [m for m in self.models if any(j.model == m for j in self.jobs)]

    @property
    def deviations(self) -> dict:
        return {m: list(s.deviations) for m, s in self.models.items()}

    @property
    def gpus_per_job(self) -> int:
        return 1 if self.device.startswith("cuda") else 0

    @property
    def trainings(self) -> dict:
        """model -> the names of its training runs (itself first) for the models trained more than once
        (`replicates`): the paper cells and likelihood tables show the spread across them."""
        out = {}
        for m, s in self.models.items():
            if s.replicate_of:
                out.setdefault(s.replicate_of, [s.replicate_of]).append(m)
        return out

    def jobs_of(self, model: str) -> list:
        return [j for j in self.jobs if j.model == model]

    def floor_datasets(self) -> list:
        """The dataset keys of the image models: a reference statistics job and a held-out floor each."""
        return sorted({s.data_key for s in self.models.values() if s.images})


def _released_spec(name: str, spec: dict, data: dict) -> dict:
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
    return {"model": {k: model[k] for k in ("family", "net", "sde", "param")}, "checkpoint": dict(spec["checkpoint"])}


def _model_spec(name: str, spec: dict, datasets: dict) -> ModelSpec:
    check_name("model", name)
    if not isinstance(spec, dict) or spec.get("data") not in datasets:
        got = spec.get("data") if isinstance(spec, dict) else spec
        raise ConfigError(f"model {name!r}: data {got!r} is not in datasets ({', '.join(datasets)})")
    data = datasets[spec["data"]]
    common = dict(name=name, data_key=spec["data"], data=data, evaluate=spec.get("evaluate", True) is not False,
                  deviations=tuple(spec.get("deviations") or ()), replicate_of=spec.get("replicate_of"))
    if "checkpoint" in spec:
        return ModelSpec(**common, **_released_spec(name, spec, data))
    fam = spec["model"].get("family")
    if fam not in FAMILIES:
        raise ConfigError(f"model {name!r}: unknown family {fam!r}; valid choices: {', '.join(FAMILIES.names())}")
    try:
        build_sde(fam, **spec["model"].get("sde", {}))
        check_net(spec["model"].get("net"), "net")
        if spec["model"].get("class_conditional") and data["name"] in TOYS:
            raise ConfigError(f"model.class_conditional is true, but the toy {data['name']!r} has no labels: set it "
                              "to false or use a labelled dataset (digits, mnist, cifar10, synthetic)")
        check_data_options(data)
        check_loss_options(spec)
        TrainConfig.from_dict(spec["train"])
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model {name!r}: {e}") from e
    return ModelSpec(**common, model=spec["model"], loss=spec.get("loss", {}), train=spec["train"])


def _replicates(name: str, spec: dict) -> list:
    """(name, entry) for the extra trainings of a model entry with `replicates: {trainings: k, samplers: [...]}`:
    `<name>-r2` .. `<name>-rk`, each trained with training seed + 1 .. k - 1, running the listed sampler variants (all
    of the model's by default, at its step grids) and the likelihood."""
    rep = spec.get("replicates")
    if rep is None:
        return []
    if not isinstance(rep, dict) or set(rep) - {"trainings", "samplers"}:
        raise ConfigError(f"model {name!r}: replicates must be a mapping {{trainings: k, samplers: [...]}}, got {rep!r}")
    k = rep.get("trainings")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"model {name!r}: replicates.trainings must be a whole number >= 1, got {k!r}")
    if "checkpoint" in spec:
        raise ConfigError(f"model {name!r}: a released checkpoint is not trained, so it has no replicates")
    if rep.get("samplers") is not None and (not isinstance(rep["samplers"], list) or not rep["samplers"]):
        raise ConfigError(f"model {name!r}: replicates.samplers must list at least one sampler variant (leave it out "
                          f"for all of the model's), got {rep['samplers']!r}")
    extra = {"samplers": list(rep["samplers"])} if rep.get("samplers") is not None else {}
    seed = int(spec["train"].get("seed", 0))
    drop = ("replicates", "not_run") + (("extra_samplers", "exclude_samplers") if extra else ())
    keep = {k: v for k, v in spec.items() if k not in drop}
    return [(f"{name}-r{r}", {**keep, **extra, "train": {**spec["train"], "seed": seed + r - 1}, "replicate_of": name})
            for r in range(2, k + 1)]


def _grid(job_name: str, sampler: str, variant: dict, spec: dict, sampling: dict, model: str) -> tuple:
    """Step grid: the model's own, the variant's, the sampler's, then sampling.steps.default."""
    table = sampling.get("steps", {})
    own = spec.get("steps", {})
    steps = (own.get(job_name) or variant.get("steps") or table.get(job_name) or table.get(sampler)
             or own.get("default") or table.get("default", [None]))
    for s in steps:
        if s is not None and (not isinstance(s, int) or isinstance(s, bool) or s <= 0):
            raise ConfigError(f"model {model!r}, sampler {job_name!r}: steps must be positive integers, got {s!r}")
    return tuple(steps)


def _check_chain(model: ModelSpec, job_name: str, steps: tuple, options: dict) -> None:
    """A chain-walking sampler's step counts must give a valid chain: at most a discrete model's own N steps, and a
    rebuilt VP chain needs beta_max / N < 1."""
    sde = build_sde(model.family, **model.model.get("sde", {}))
    for s in steps:
        try:
            make_chain(sde, s, 1e-3, respace=options.get("respace", "respace"), skip=options.get("skip", "linspace"))
        except ConfigError as e:
            raise ConfigError(f"model {model.name!r}, sampler {job_name!r}, steps {s}: {e}") from e


def _jobs(spec: dict, model: ModelSpec, sampling: dict) -> list:
    """The (sampler or variant, steps) jobs of one evaluated model."""
    variants, jobs = sampling.get("variants", {}), []
    known = set(applicable(model.family)) | set(variants)
    for key, names in (("exclude_samplers", spec.get("exclude_samplers") or []), ("options", spec.get("options") or {}),
                       ("steps", set(spec.get("steps") or {}) - {"default"})):
        if unknown := sorted(set(names) - known):  # a misspelled name would be ignored silently
            raise ConfigError(f"model {model.name!r}: {key} names {unknown}, not a sampler of family {model.family!r} "
                              f"or a variant; valid: {', '.join(sorted(known))}")
    chosen = spec.get("samplers") or [s for s in applicable(model.family) if s not in spec.get("exclude_samplers", [])]
    for job_name in chosen + list(spec.get("extra_samplers", [])):
        variant = variants.get(job_name, {"sampler": job_name})
        sampler = variant["sampler"]
        if sampler not in SAMPLERS:
            valid = ", ".join(SAMPLERS.names() + sorted(variants))
            raise ConfigError(f"model {model.name!r}: unknown sampler {job_name!r}; valid choices: {valid}")
        if sampler not in applicable(model.family):
            raise ConfigError(f"model {model.name!r}: sampler {job_name!r} does not apply to family {model.family!r}: "
                              f"{why_not(sampler, model.family)}; applicable: {', '.join(applicable(model.family))}")
        options = merged(sampling.get("options", {}).get(sampler, {}), variant.get("options", {}))
        options = resolved_options(sampler, merged(options, spec.get("options", {}).get(job_name, {})),
                                   FAMILIES[model.family].sde)
        try:
            check_options(sampler, options)
        except ConfigError as e:
            raise ConfigError(f"model {model.name!r}, sampler {job_name!r}: {e}") from e
        steps = _grid(job_name, sampler, variant, spec, sampling, model.name)
        if SAMPLERS[sampler].walks_chain:
            _check_chain(model, job_name, steps, options)
        jobs.append(EvalJob(model.name, job_name, sampler, steps, options, spec.get("n_samples")))
    return jobs


def _cells(config: dict, models: dict) -> tuple[list, list]:
    """The `not run` cells a model's entry names and the `not applicable` cells of its family."""
    not_run, not_applicable = [], []
    for name, spec in config.get("models", {}).items():
        if not models[name].evaluate:
            continue
        fam = models[name].family
        for sampler, why in (spec.get("not_run") or {}).items():
            if sampler not in SAMPLERS or sampler not in applicable(fam):
                raise ConfigError(f"model {name!r}: not_run names {sampler!r}, not a sampler that applies to {fam!r}")
            not_run.append((name, sampler, why))
        not_applicable += [(name, s, why_not(s, fam)) for s in SAMPLERS.names()
                           if s not in applicable(fam) and (fam, s) in NOT_APPLICABLE]
    return not_run, not_applicable


def _experiments(config: dict, models: dict, datasets: dict) -> dict:
    out = {}
    for target, opts in (config.get("experiments") or {}).items():
        check_name("experiment", target)
        opts = dict(opts or {})
        if "model" in opts and opts["model"] not in models:
            raise ConfigError(f"experiment {target!r}: model {opts['model']!r} is not in models")
        if "classifier" in opts and opts["classifier"] not in datasets:
            raise ConfigError(f"experiment {target!r}: classifier {opts['classifier']!r} is not a key of datasets")
        out[target] = ExperimentSpec(target, opts.pop("experiment", target), opts, opts.pop("model", None),
                                     opts.pop("classifier", None))
    return out


def _datasets(config: dict) -> dict:
    datasets = config.get("datasets") or {}
    for key, d in datasets.items():
        check_name("dataset", key)
        if not isinstance(d, dict):
            raise ConfigError(f"datasets.{key} must be a mapping with a name, got {d!r}")
        if d.get("name") in NEEDS_ROOT and not d.get("root"):
            raise ConfigError(f"dataset {key!r} ({d['name']}) needs datasets.{key}.root: the folder torchvision reads")
    return datasets


def build_plan(config: dict) -> Plan:
    """The configuration's plan, or one ConfigError naming the offending entry."""
    name = check_name("configuration", config.get("name", "default"))
    datasets = _datasets(config)
    sampling = config.get("sampling") or {}
    for v, variant in sampling.get("variants", {}).items():
        check_name("sampler variant", v)
        if variant.get("sampler") not in SAMPLERS:
            raise ConfigError(f"sampling.variants.{v}: sampler {variant.get('sampler')!r} is not a sampler; "
                              f"valid choices: {', '.join(SAMPLERS.names())}")
    for s in sampling.get("options") or {}:
        if s not in SAMPLERS:
            raise ConfigError(f"sampling.options names {s!r}, not a sampler; valid choices: {', '.join(SAMPLERS.names())}")
    entries = {}
    for name, spec in (config.get("models") or {}).items():
        entries[name] = spec
        for rep, rep_spec in _replicates(name, spec) if isinstance(spec, dict) else ():
            if rep in (config.get("models") or {}):
                raise ConfigError(f"model {name!r}: its replicate {rep!r} is also a model entry; rename that entry")
            entries[rep] = rep_spec
    models = {name: _model_spec(name, spec, datasets) for name, spec in entries.items()}
    jobs = [j for name, spec in entries.items() if models[name].evaluate for j in _jobs(spec, models[name], sampling)]
    ev = parse_settings(Evaluation, config.get("evaluation"), "evaluation")
    fewest = min([j.n_samples or ev.n_samples for j in jobs] or [0])
    if jobs and ev.kid_subset_size > fewest:
        raise ConfigError(f"evaluation.kid_subset_size {ev.kid_subset_size} is more than the {fewest} samples of a "
                          "seed set: KID's subsets are drawn from them")
    mlflow = config.get("mlflow") or {}
    tracking = Tracking(os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get("tracking_uri", ""),
                        mlflow.get("experiment", f"sgm-bench-{name}"), mlflow.get("artifacts"))
    requires = config.get("requires") or {}
    not_run, not_applicable = _cells(config, models)
    layout = Layout(config.get("results", f"results/{name}"), config.get("work", f"work/{name}"))
    return Plan(name, layout, str(config.get("device", "cpu")),
                int(config.get("threads_per_job", 1)), tracking, ev, datasets, models, tuple(jobs),
                tuple(sampling.get("variants", {})), _experiments(config, models, datasets),
                tuple(config.get("paper_cells") or ()), bool(requires.get("gpu")), tuple(requires.get("files", ())),
                tuple(not_run), tuple(not_applicable))


LIKELIHOOD_CELLS = ("bpd", "nll", "vlb_bpd")


def check_paper_cells(plan: Plan, tables: dict) -> None:
    """Every paper_cells entry names a published cell (table, row, column) and a run of this configuration that
    measures it (model and sampler variant, steps in its grid, or a likelihood metric): one ConfigError otherwise."""
    for c in plan.paper_cells:
        where = f"paper_cells entry {c}"
        table = tables.get(c["table"])
        if not isinstance(table, dict) or "rows" not in table:
            raise ConfigError(f"{where}: no paper table {c['table']!r}; tables: "
                              f"{', '.join(k for k, v in tables.items() if isinstance(v, dict) and 'rows' in v)}")
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


def check_experiments(plan: Plan) -> None:
    """Every experiment resolves to a function that takes its options (ConfigError otherwise). Separate from
    build_plan, which every job calls: the experiment modules import matplotlib and torchvision."""
    from .experiments import experiment_function

    for spec in plan.experiments.values():
        experiment_function(spec)
