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

from sgm_bench.bench import grid_name, setup_job
from sgm_bench.io import content_digest, file_hash, save_json
from sgm_bench.plan import build_plan, tracking_uri
from sgm_bench.report import plots, tables
from sgm_bench.report.build import load_rows_of
from sgm_bench.report.stats import half_width
from sgm_bench.samplers import SAMPLERS
from sgm_bench.tracking import Tracker, compare_link, dataset_input, environment_tags, flatten, job_key

cfg = snakemake.config
R = Path(cfg["results"])
uri = tracking_uri(cfg)
DESCRIPTION = (f"sgm-bench, configuration `{cfg['name']}`: one parent run per trained model, a child run per (sampler, "
               "steps) with metrics averaged over seed sets (`fid` / `sw` with `_std` (ddof 1) and `_ci95` (the half-width of the "
               "mean's 95 % t interval), `nfe`, `seconds_per_sample`) and "
               "the per-seed rows in `seed_sets.json`. Compare samplers: filter `tags.kind = 'sampler' and "
               "tags.model = '<model>'`, show columns params.variant, params.steps, metrics.nfe, metrics.fid (or sw), "
               "metrics.fid_std. Diverged settings are FAILED runs with tags.status = 'diverged (...)'.")
plan = build_plan(cfg)
QUALITY = ("fid", "is", "kid", "sw", "mmd", "mean_log_density", "mode_weight_error", "n_nonfinite")
COST = ("nfe", "seconds", "seconds_per_sample", "peak_memory_mb")
SETTING = ("extractor", "n_reference", "reference_hash", "reference_split", "device")


def aggregate(rows: list) -> dict:
    """Seed-set mean of every quality and cost number, its std (ddof 1) as `<name>_std` and the half-width of the
    mean's 95 % t interval as `<name>_ci95` (both absent for one seed set)."""
    df = pd.DataFrame(rows)
    out = {}
    for k in QUALITY + COST:
        if k in df and pd.api.types.is_numeric_dtype(df[k]) and df[k].notna().any():
            out[k] = float(df[k].mean())
            if df[k].notna().sum() > 1:
                out[f"{k}_std"], out[f"{k}_ci95"] = float(df[k].std(ddof=1)), half_width(df[k])
    out["seed_sets"] = len(df)
    return out


def log_model(tracker: Tracker, model: str) -> list:
    """The model's run and its sampler children; returns their records."""
    runs, mcfg = [], plan.models[model]
    stats = json.loads((R / "train" / model / "train_stats.json").read_text())
    lik = json.loads((R / "metrics" / model / "likelihood.json").read_text()) if model in plan.benchmarked else {}
    with open(R / "train" / model / "train_log.csv") as f:
        curve = [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]
    tags = environment_tags(stats.get("device_name", ""))
    checkpoint = Path(cfg["work"]) / "models" / model / "model.pt"
    params = {**flatten(dict(mcfg)), "config_hash": stats["config_hash"]}
    metrics = {**{k: stats[k] for k in ("seconds", "steps_per_second", "peak_memory_mb", "parameters", "final_loss")
                  if stats.get(k) is not None},
               **{k: v for k, v in lik.items() if isinstance(v, (int, float))}}
    data = mcfg["data"]
    train_input = dataset_input(data["name"], stats["config_hash"] + "-" + data["name"], data["name"],
                                int(data.get("n_train", 0)), "training")
    # keys carry the content hash of the job's output: identical results are never logged twice, new results are
    parent, created = tracker.log_run(
        job_key(cfg["name"], model, file_hash(R / "train" / model / "train_stats.json")), model, params, metrics,
        {**tags, "kind": "model", "model": model, "family": mcfg["model"]["family"], "dataset": data["name"],
         "config": cfg["name"], "likelihood_status": lik.get("status", "not run")},
        artifacts=[R / "train" / model / "train_log.csv", checkpoint], series={"loss": curve},
        job=job_key(cfg["name"], model), times=(stats.get("started", 0), stats.get("finished", 0)) if "started" in stats
        else None, datasets=[train_input], documents={"config.yaml": dict(mcfg)})
    runs.append({"model": model, "run_id": parent, "created": created})
    if model not in plan.benchmarked:
        return runs
    metrics_file = R / "metrics" / model / "samplers.json"
    record = json.loads(metrics_file.read_text())
    ref_file = R / "reference" / f"{cfg['models'][model]['data']}.json"  # images: the held-out floor
    floors = record.get("floor") or (json.loads(ref_file.read_text())["floor"] if ref_file.exists() else {})
    floor = {f"floor_{k}_{q}": v[q] for k, v in floors.items() if isinstance(v, dict) for q in ("mean", "p05", "p95")}
    for job in plan.jobs_of(model):
        rows = [r for r in record["rows"] if r["variant"] == job.name]
        for steps in dict.fromkeys(r["steps"] for r in rows):
            per_seed = [r for r in rows if r["steps"] == steps]
            first = per_seed[0]
            key = job_key(cfg["name"], model, job.name, steps, content_digest(per_seed), parent)  # its own rows and
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
                {**aggregate(per_seed), **floor},
                {**tags, "kind": "sampler", "model": model, "status": status, "dataset": data["name"]},
                parent=parent, artifacts=[R / "samples" / model / f"{grid_name(job.name, steps)}.png"],
                failed=status.startswith("diverged"), job=job_key(cfg["name"], model, job.name, steps),
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
    metric = "fid" if "fid" in df and df["fid"].notna().any() else "sw"
    board = tables.leaderboard(df, metric, "FID" if metric == "fid" else "SW2")
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
        rid, c = tracker.log_run(job_key(cfg["name"], "experiment", exp["experiment"], numbers), f"experiment/{exp['experiment']}",
                                 {"experiment": exp["experiment"], "description": exp["doc"]}, numbers,
                                 {**environment_tags(), "kind": "experiment"}, job=job_key(cfg["name"], "experiment", exp["experiment"]),
                                 artifacts=[Path(path).with_suffix(".png")])
        runs.append({"experiment": exp["experiment"], "run_id": rid, "created": c})
    return runs


if __name__ == "__main__":
    setup_job(1, snakemake.log[0], snakemake)
    tracker = Tracker(uri, cfg["mlflow"]["experiment"], cfg["mlflow"].get("artifacts"), DESCRIPTION)
    if snakemake.rule == "track_model":  # a tracking server: one writer job per model, concurrently
        runs = log_model(tracker, snakemake.wildcards.model)
        save_json({"model": snakemake.wildcards.model, "runs": runs}, snakemake.output[0])
    else:  # SQLite (one writer at a time): this job writes every model; a server: the track_model jobs' lists
        runs = ([r for f in snakemake.input.tracked for r in json.loads(Path(f).read_text())["runs"]]
                if snakemake.input.tracked else [r for m in plan.models for r in log_model(tracker, m)])
        runs += log_experiments(tracker)
        tracker.relocatable(cfg["mlflow"].get("artifacts"))  # artifact paths relative, like the store's
        metric = {m: "fid" if plan.models[m]["data"]["name"] in plan.image_datasets else "sw" for m in plan.benchmarked}
        save_json({"tracking_uri": uri, "experiment": cfg["mlflow"]["experiment"], "runs": runs,
                   "created": sum(r["created"] for r in runs), "total_runs_in_experiment": tracker.count(),
                   "compare": {m: compare_link(tracker.exp_id, m, k) for m, k in metric.items()}},
                  snakemake.output[0])
    print(f"sgm-bench: {sum(r['created'] for r in runs)} new MLflow runs of {len(runs)} at {uri}, experiment "
          f"{cfg['mlflow']['experiment']}", file=sys.stderr)
