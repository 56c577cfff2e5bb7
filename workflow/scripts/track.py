"""The MLflow writers. Rule track_model (one job per model): the model's run (its config, checkpoint, training curve
and dataset) and a child run per (sampler variant, steps) with the seed-set mean and spread as metrics and the per-seed
rows as a logged table. Rule track: on a SQLite store (one writer at a time) every
model's runs itself, then a run per course experiment and the list of every run. Each run's key belongs to one job,
so with a tracking server the track_model jobs write concurrently."""
import csv
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from sgm_bench.io import content_digest, file_hash, save_json
from sgm_bench.job import start
from sgm_bench.metrics.registry import METRICS, ranked_by, ranking_metric
from sgm_bench.report import plots, tables
from sgm_bench.report.build import load_rows_of
from sgm_bench.report.stats import seed_set_summary
from sgm_bench.samplers import SAMPLERS
from sgm_bench.tracking import Tracker, compare_link, dataset_input, environment_tags, flatten, job_key

plan = start(snakemake, threads=1)
L, NAME, uri = plan.layout, plan.name, plan.tracking.uri
DESCRIPTION = (f"sgm-bench, configuration `{NAME}`: one parent run per trained model, a child run per (sampler, "
               "steps) with metrics averaged over seed sets (`fid` / `sw` with `_std` (ddof 1) and `_ci95` (the half-width of the "
               "mean's 95 % t interval; with evaluation.pool_seed_sets, `fid` is the FID of all seed sets pooled and "
               "`_ci95` its jackknife interval), `nfe`, `seconds_per_sample`) and "
               "the per-seed rows in `seed_sets.json`. Compare samplers: filter `tags.kind = 'sampler' and "
               "tags.model = '<model>'`, show columns params.variant, params.steps, metrics.nfe, metrics.fid (or sw), "
               "metrics.fid_std. Diverged settings are FAILED runs with tags.status = 'diverged (...)'.")
SETTING = ("extractor", "n_reference", "reference_hash", "reference_split", "device")


def log_model(tracker: Tracker, model: str) -> list:
    """The model's run and its sampler children; returns their records."""
    runs, spec = [], plan.models[model]
    stats = json.loads(Path(L.train_stats(model)).read_text())
    lik = json.loads(Path(L.likelihood(model)).read_text()) if model in plan.benchmarked else {}
    with open(L.train_log(model)) as f:
        curve = [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]
    tags = environment_tags(stats.get("device_name", ""))
    params = {**flatten(spec.config), "config_hash": stats["config_hash"]}
    metrics = {**{k: stats[k] for k in ("seconds", "steps_per_second", "peak_memory_mb", "parameters", "final_loss")
                  if stats.get(k) is not None},
               **{k: v for k, v in lik.items() if isinstance(v, (int, float))}}
    data = spec.data
    train_input = dataset_input(data["name"], stats["config_hash"] + "-" + data["name"], data["name"],
                                int(data.get("n_train", 0)), "training")
    # keys carry the content hash of the job's output: identical results are never logged twice, new results are
    parent, created = tracker.log_run(
        job_key(NAME, model, file_hash(L.train_stats(model))), model, params, metrics,
        {**tags, "kind": "model", "model": model, "family": spec.family, "dataset": data["name"],
         "config": NAME, "likelihood_status": lik.get("status", "not run"),
         **({"replicate_of": spec.replicate_of} if spec.replicate_of else {})},
        artifacts=[Path(L.train_log(model)), Path(L.model_file(model))], series={"loss": curve},
        job=job_key(NAME, model), times=(stats.get("started", 0), stats.get("finished", 0)) if "started" in stats
        else None, datasets=[train_input], documents={"config.yaml": spec.config})
    runs.append({"model": model, "run_id": parent, "created": created})
    if model not in plan.benchmarked:
        return runs
    record = json.loads(Path(L.metrics(model)).read_text())
    ref_file = Path(L.reference(spec.data_key))  # images: the held-out floor
    floors = record.get("floor") or (json.loads(ref_file.read_text())["floor"] if ref_file.exists() else {})
    floor = {f"floor_{k}_{q}": v[q] for k, v in floors.items() if isinstance(v, dict) for q in ("mean", "p05", "p95")}
    for job in plan.jobs_of(model):
        rows = [r for r in record["rows"] if r["variant"] == job.name]
        for steps in dict.fromkeys(r["steps"] for r in rows):
            per_seed = [r for r in rows if r["steps"] == steps]
            first = per_seed[0]
            key = job_key(NAME, model, job.name, steps, content_digest(per_seed), parent)  # its own rows and
            # parent: a re-measured or added setting replaces or adds its run and keeps the others
            p = {"sampler": job.sampler, "variant": job.name, "steps": steps if steps is not None else "adaptive",
                 "n": first["n"], "seed_sets": len(per_seed),
                 **{f"option.{k}": v for k, v in {**SAMPLERS[job.sampler].defaults, **job.options}.items()},
                 **{k: first[k] for k in SETTING if k in first}}
            statuses = sorted({r.get("status", "ok") for r in per_seed}, key=lambda s: s != "ok")
            status = next((s for s in statuses if s.startswith("diverged")), statuses[-1])
            ref = [dataset_input(data["name"], first["reference_hash"], data["name"], first.get("n_reference", 0),
                                 first.get("reference_split", "train"))] if first.get("reference_hash") else []
            rid, c = tracker.log_run(
                key, f"{model}/{job.name}/{steps if steps is not None else 'adaptive'}", p,
                {**seed_set_summary(per_seed), **floor},
                {**tags, "kind": "sampler", "model": model, "status": status, "dataset": data["name"]},
                parent=parent, artifacts=[Path(L.sample_grid(model, job.name, steps))],
                failed=status.startswith("diverged"), job=job_key(NAME, model, job.name, steps),
                times=(min(r.get("started", 0) for r in per_seed), max(r.get("finished", 0) for r in per_seed))
                if "started" in first else None, datasets=ref,
                tables={"seed_sets.json": pd.DataFrame(per_seed).drop(columns=["mode_weights"], errors="ignore")})
            runs.append({"model": model, "sampler": job.name, "steps": steps, "run_id": rid, "created": c})
    summarise(tracker, parent, model, record["rows"], floors)
    return runs


def summarise(tracker: Tracker, parent: str, model: str, rows: list, floors: dict) -> None:
    """The parent run carries the model's leaderboard (leaderboard.csv, and in its description with a link that opens
    the children sorted best first), its best setting per NFE budget (budget.csv, and in the description) and its
    quality-vs-NFE figure."""
    df = load_rows_of(rows)
    metric = ranked_by(df)
    board = tables.leaderboard(df, metric, METRICS[metric].label)
    band = {model: floors.get(metric)} if isinstance(floors.get(metric), dict) else {}
    budget = tables.budget_table(df).droplevel("model").T  # a row per budget
    with tempfile.TemporaryDirectory() as d:
        board.to_csv(Path(d) / "leaderboard.csv")
        budget.to_csv(Path(d) / "budget.csv")
        figure = plots.quality_vs(df, "nfe", Path(d) / "quality_vs_nfe", band, "NFE")
        link = compare_link(tracker.exp_id, model, metric)
        tracker.attach(parent, [Path(d) / "leaderboard.csv", Path(d) / "budget.csv", *figure],
                       note=f"**{model}**: [its sampler runs, best first]({link}).\n\nBest setting per NFE budget:"
                            f"\n\n{tables.markdown(budget)}\n\nLeaderboard (mean ± 95 % interval over seed sets):"
                            f"\n\n{tables.markdown(board)}\n")


def log_experiments(tracker: Tracker) -> list:
    runs = []
    for path in snakemake.input.experiments:
        exp = json.loads(Path(path).read_text())
        numbers = {k: v for k, v in exp.items() if isinstance(v, (int, float))}
        rid, c = tracker.log_run(job_key(NAME, "experiment", exp["experiment"], numbers),
                                 f"experiment/{exp['experiment']}",
                                 {"experiment": exp["experiment"], "description": exp["doc"]}, numbers,
                                 {**environment_tags(), "kind": "experiment"},
                                 job=job_key(NAME, "experiment", exp["experiment"]),
                                 artifacts=[Path(path).with_suffix(".png")])
        runs.append({"experiment": exp["experiment"], "run_id": rid, "created": c})
    return runs


if __name__ == "__main__":
    tracker = Tracker(uri, plan.tracking.experiment, plan.tracking.artifacts, DESCRIPTION)
    if snakemake.rule == "track_model":  # a tracking server: one writer job per model, concurrently
        runs = log_model(tracker, snakemake.wildcards.model)
        save_json({"model": snakemake.wildcards.model, "runs": runs}, snakemake.output[0])
    else:  # SQLite (one writer at a time): this job writes every model; a server: the track_model jobs' lists
        runs = ([r for f in snakemake.input.tracked for r in json.loads(Path(f).read_text())["runs"]]
                if snakemake.input.tracked else [r for m in plan.models for r in log_model(tracker, m)])
        runs += log_experiments(tracker)
        tracker.relocatable(plan.tracking.artifacts)  # artifact paths relative, like the store's
        metric = {m: ranking_metric("image" if plan.models[m].images else "toy") for m in plan.benchmarked}
        save_json({"tracking_uri": uri, "experiment": plan.tracking.experiment, "runs": runs,
                   "created": sum(r["created"] for r in runs), "total_runs_in_experiment": tracker.count(),
                   "compare": {m: compare_link(tracker.exp_id, m, k) for m, k in metric.items()}},
                  snakemake.output[0])
    print(f"sgm-bench: {sum(r['created'] for r in runs)} new MLflow runs of {len(runs)} at {uri}, experiment "
          f"{plan.tracking.experiment}", file=sys.stderr)
