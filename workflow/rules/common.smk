import os
import re
from importlib import resources

from sgm_bench.checks import load_yaml
from sgm_bench.io import file_hash, set_aside_unreadable
from sgm_bench.job import FORCED
from sgm_bench.plan import build_plan, check_experiments, check_paper_cells
from sgm_bench.preflight import preflight
from sgm_bench.samplers import SAMPLERS

PLAN = build_plan(config)  # the typed plan: configuration errors stop here, at DAG construction, with one message
check_experiments(PLAN)
L = PLAN.layout  # every path below is built by it (none leaves the results or work folder)
if not workflow.dryrun:  # a damaged result is rebuilt by its job, not read by the report and MLflow as if whole
    set_aside_unreadable(L.results)
MODELS = list(PLAN.models)
RELEASED = list(PLAN.released)  # evaluated from released weights: imported, not trained
BENCHMARKED = PLAN.benchmarked  # models with sampler and likelihood jobs
GPU = PLAN.gpus_per_job
THREADS = PLAN.threads_per_job
# a tracking server takes concurrent writers: one track_model job per model; a local store (SQLite) takes one writer
# at a time, so one track job writes every model (saves a process start per model)
PER_MODEL_TRACKING = PLAN.tracking.server


def one_of(names):
    """A wildcard pattern matching exactly these names."""
    return "|".join(map(re.escape, names)) if names else "(?!)"


wildcard_constraints:
    model=one_of(MODELS),
    sampler=one_of(SAMPLERS.names() + list(PLAN.variants)),
    data="[A-Za-z0-9_-]+",


onstart:
    # what --forcerun / -R names (rules or files) and --forceall: the jobs it re-runs compute their kept parts and
    # cached statistics again (sgm_bench.job.forced) instead of copying them
    dag = workflow.dag_settings
    os.environ[FORCED] = "\n".join(["*"] * bool(dag.forceall) + [os.path.normpath(str(f)) for f in dag.forcerun or ()])
    problems = preflight(PLAN)
    if problems:
        raise SystemExit("sgm-bench: cannot start:\n  - " + "\n  - ".join(problems))



_PUBLISHED = load_yaml(resources.files("sgm_bench") / "reference" / "paper_tables.yaml")
PAPER_TABLES = [k for k, v in _PUBLISHED.items() if isinstance(v, dict) and "rows" in v]  # one report entry each
check_paper_cells(PLAN, _PUBLISHED)
DIGITS_FEATURES = PLAN.evaluation.extractor == "digits-cnn"
FLOORS = [L.reference(d) for d in PLAN.floor_datasets()]


def settings(*parts):
    """What a job's output depends on, as one string: Snakemake re-runs the job when it changes."""
    import dataclasses, json

    return json.dumps([dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts], sort_keys=True,
                      default=str)


def script_code(name):
    """The content hash of workflow/scripts/<name>.py, a param of every rule that runs it: an edited script re-runs
    that rule's jobs and a merely touched one does not (the profiles leave out Snakemake's `code` trigger, which
    re-ran all 42 jobs of the default configuration when workflow/scripts/train.py was touched). The library's own
    code is keyed inside the jobs (io.package_hash in the evaluation cache)."""
    return file_hash(workflow.source_path(f"../scripts/{name}.py"))


def image_model(model):
    return PLAN.models[model].images


# Job order on few cores (Snakemake's greedy scheduler runs the ready job of highest priority first): the longest jobs
# first, as a longest-processing-time schedule does, so the short toy jobs fill the cores at the end. The image
# models' jobs (U-Net training ~80 s, evaluation 20-80 s) and what gates them (classifier, reference statistics) come
# before the toys', and within each, training before evaluation before likelihood and experiments.
STAGE = {"train": 3, "classifier": 3, "reference": 3, "evaluate": 2, "likelihood": 1, "experiment": 1}


def job_priority(step):
    """A job's priority: its stage, raised by 10 when it works on an image model."""

    def of(wc):
        if step in ("classifier", "reference"):
            return STAGE[step] + 10
        model = PLAN.experiments[wc.experiment].model if step == "experiment" else wc.model
        return STAGE[step] + 10 * (model is not None and image_model(model))

    return of


def classifier_input(wildcards):
    spec = PLAN.models[wildcards.model]
    return L.classifier(spec.data_key) if spec.images and DIGITS_FEATURES else []


def reference_input(wildcards):
    spec = PLAN.models[wildcards.model]
    return L.reference(spec.data_key) if spec.images else []


def table(name, subcategory, caption="table.rst"):
    """A table registered in the Snakemake report as its HTML page (shown as a table), with its caption; the CSV,
    Markdown and LaTeX versions lie beside it."""
    return report(L.table(name, "html"), category="Tables", subcategory=subcategory,
                  caption=f"../report/{caption}", labels={"table": name})


EXPERIMENT_NAMES = list(PLAN.experiments)


def experiment_inputs(wildcards):
    spec = PLAN.experiments[wildcards.experiment]
    inputs = {"model": L.model_file(spec.model)} if spec.model else {}
    return inputs | ({"classifier": L.classifier(spec.classifier)} if spec.classifier else {})


def tracked_files(m):
    """What a model's runs record: training, and for an evaluated model its sampler and likelihood results."""
    files = {"stats": L.train_stats(m), "model": L.model_file(m)}
    if m in BENCHMARKED:
        files |= {"metrics": L.metrics(m), "likelihood": L.likelihood(m)}
        files |= {"floor": L.reference(PLAN.models[m].data_key)} if PLAN.models[m].images else {}
    return files


def track_inputs(wc):
    """The track job's inputs: each model's run list from its track_model job (a tracking server), or, on SQLite,
    where writers take turns anyway, every model's files: the one track job logs them all."""
    if PER_MODEL_TRACKING:
        return {"tracked": [L.tracked(m) for m in MODELS]}
    return {"tracked": [], "models": [f for m in MODELS for f in tracked_files(m).values()]}
