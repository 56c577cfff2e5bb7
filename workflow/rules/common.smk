import re
from importlib import resources

from sgm_bench.checks import load_yaml
from sgm_bench.io import file_hash, set_aside_unreadable

from sgm_bench.plan import build_plan, check_experiments, check_paper_cells, is_server, preflight, tracking_uri
from sgm_bench.samplers import SAMPLERS

PLAN = build_plan(config)  # configuration errors stop here, at DAG construction, with one message
check_experiments(config)
R, W = config["results"], config["work"]
if not workflow.dryrun:  # a damaged result is rebuilt by its job, not read by the report and MLflow as if whole
    set_aside_unreadable(R)
MODELS = list(PLAN.models)
RELEASED = list(PLAN.released)  # evaluated from released weights: imported, not trained
BENCHMARKED = PLAN.benchmarked  # models with sampler and likelihood jobs
GPU = 1 if str(config.get("device", "cpu")).startswith("cuda") else 0
THREADS = config.get("threads_per_job", 1)
# a tracking server takes concurrent writers: one track_model job per model; a local store (SQLite) takes one writer
# at a time, so one track job writes every model (saves a process start per model)
PER_MODEL_TRACKING = is_server(tracking_uri(config))


def processes(model):
    """train.processes: a model trained on K data-parallel processes asks for K GPUs (and K times the threads)."""
    return PLAN.models[model]["train"].get("processes", 1)


def one_of(names):
    """A wildcard pattern matching exactly these names."""
    return "|".join(map(re.escape, names)) if names else "(?!)"


wildcard_constraints:
    model=one_of(MODELS),
    sampler="|".join(SAMPLERS.names() + list(config.get("sampling", {}).get("variants", {}))),
    data="[A-Za-z0-9_-]+",


onstart:
    problems = preflight(config)
    if problems:
        raise SystemExit("sgm-bench: cannot start:\n  - " + "\n  - ".join(problems))



_PUBLISHED = load_yaml(resources.files("sgm_bench") / "reference" / "paper_tables.yaml")
PAPER_TABLES = [k for k, v in _PUBLISHED.items() if isinstance(v, dict) and "rows" in v]  # one report entry each
check_paper_cells(config, PLAN, _PUBLISHED)
DIGITS_FEATURES = config["evaluation"].get("extractor", "digits-cnn") == "digits-cnn"
FLOORS = sorted({f"{R}/reference/{config['models'][m]['data']}.json" for m in MODELS
                 if PLAN.models[m]["data"]["name"] in PLAN.image_datasets})


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
    return PLAN.models[model]["data"]["name"] in PLAN.image_datasets


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
        model = (config["experiments"][wc.experiment] or {}).get("model") if step == "experiment" else wc.model
        return STAGE[step] + 10 * (model is not None and image_model(model))

    return of


def classifier_input(wildcards):
    key = config["models"][wildcards.model]["data"]
    return f"{W}/classifier/{key}.pt" if image_model(wildcards.model) and DIGITS_FEATURES else []


def reference_input(wildcards):
    return f"{R}/reference/{config['models'][wildcards.model]['data']}.json" if image_model(wildcards.model) else []


def table(name, subcategory, caption="table.rst"):
    """A table registered in the Snakemake report as its HTML page (shown as a table), with its caption; the CSV,
    Markdown and LaTeX versions lie beside it."""
    return report(f"{R}/tables/{name}.html", category="Tables", subcategory=subcategory,
                  caption=f"../report/{caption}", labels={"table": name})


EXPERIMENT_NAMES = list(config.get("experiments", {}))


def experiment_inputs(wildcards):
    opts = config["experiments"][wildcards.experiment] or {}  # checked by sgm_bench.plan
    inputs = {}
    if "model" in opts:
        inputs["model"] = f"{W}/models/{opts['model']}/model.pt"
    if opts.get("classifier"):
        inputs["classifier"] = f"{W}/classifier/{opts['classifier']}.pt"
    return inputs


def tracked_files(m):
    """What a model's runs record: training, and for an evaluated model its sampler and likelihood results."""
    files = {"stats": f"{R}/train/{m}/train_stats.json", "model": f"{W}/models/{m}/model.pt"}
    if m in BENCHMARKED:
        files |= {"metrics": f"{R}/metrics/{m}/samplers.json", "likelihood": f"{R}/metrics/{m}/likelihood.json"}
        data = config["models"][m]["data"]
        files |= {"floor": f"{R}/reference/{data}.json"} if f"{R}/reference/{data}.json" in FLOORS else {}
    return files


def track_inputs(wc):
    """The track job's inputs: each model's run list from its track_model job (a tracking server), or, on SQLite,
    where writers take turns anyway, every model's files: the one track job logs them all."""
    if PER_MODEL_TRACKING:
        return {"tracked": expand(f"{R}/mlflow/{{model}}.json", model=MODELS)}
    return {"tracked": [], "models": [f for m in MODELS for f in tracked_files(m).values()]}
