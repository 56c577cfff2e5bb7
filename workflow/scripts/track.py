import csv
import json
import os
from pathlib import Path

from sgm_bench.bench import grid_name, setup_job
from sgm_bench.io import file_hash, save_json
from sgm_bench.plan import build_plan
from sgm_bench.samplers import SAMPLERS
from sgm_bench.tracking import Tracker, environment_tags, flatten, job_key

setup_job(1, snakemake.log[0])
cfg = snakemake.config
R = Path(cfg["results"])
uri = os.environ.get("MLFLOW_TRACKING_URI") or cfg["mlflow"]["tracking_uri"]
tracker = Tracker(uri, cfg["mlflow"]["experiment"], cfg["mlflow"].get("artifacts"))
plan = build_plan(cfg)
QUALITY = ("fid", "is", "is_std", "kid", "kid_std", "sw", "mmd", "mean_log_density", "mode_weight_error", "n_nonfinite")
COST = ("nfe", "seconds", "seconds_per_sample", "peak_memory_mb")
runs = []
for model, mcfg in plan.models.items():
    stats = json.loads((R / "train" / model / "train_stats.json").read_text())
    lik = json.loads((R / "metrics" / model / "likelihood.json").read_text()) if model in plan.benchmarked else {}
    with open(R / "train" / model / "train_log.csv") as f:
        curve = [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]
    tags = environment_tags(stats.get("device_name", ""))
    params = {**flatten({k: v for k, v in mcfg.items()}), "config_hash": stats["config_hash"],
              "checkpoint": f"{cfg['work']}/models/{model}/model.pt"}
    metrics = {**{k: stats[k] for k in ("seconds", "steps_per_second", "peak_memory_mb", "parameters", "final_loss")
                  if stats.get(k) is not None},
               **{k: v for k, v in lik.items() if isinstance(v, (int, float))}}
    # keys carry the content hash of the job's output: identical results are never logged twice, new results are
    parent, created = tracker.log_run(job_key(cfg["name"], model, file_hash(R / "train" / model / "train_stats.json")),
                                      model, params, metrics,
                                      {**tags, "kind": "model", "config": cfg["name"], "job": job_key(cfg["name"], model),
                                       "likelihood_status": lik.get("status", "not run")},
                                      artifacts=[R / "train" / model / "train_log.csv"], series={"loss": curve})
    runs.append({"model": model, "run_id": parent, "created": created})
    if model not in plan.benchmarked:
        continue
    metrics_file = R / "metrics" / model / "samplers.json"
    record = json.loads(metrics_file.read_text())
    floor = {f"floor_{k}_{q}": v[q] for k, v in (record.get("floor") or {}).items() if isinstance(v, dict)
             for q in ("mean", "p05", "p95")}
    for job in plan.jobs_of(model):
        for row in (r for r in record["rows"] if r["variant"] == job.name):
            key = job_key(cfg["name"], model, job.name, row["steps"], row["seed_set"], file_hash(metrics_file))
            p = {"sampler": job.sampler, "variant": job.name, "steps": row["steps"], "seed_set": row["seed_set"], "n": row["n"],
                 **{f"option.{k}": v for k, v in {**SAMPLERS[job.sampler].defaults, **job.options}.items()},
                 **{k: row[k] for k in ("extractor", "n_reference", "reference_hash", "reference_split") if k in row}}
            m = {**{k: row[k] for k in QUALITY + COST if isinstance(row.get(k), (int, float))}, **floor}
            status = row.get("status", "ok")
            rid, c = tracker.log_run(key, f"{model}/{job.name}/{row['steps']}/{row['seed_set']}", p, m,
                                     {**tags, "kind": "sampler", "device": row.get("device", ""), "status": status,
                                      "job": job_key(cfg["name"], model, job.name, row["steps"], row["seed_set"])},
                                     parent=parent, artifacts=[R / "samples" / model / f"{grid_name(job.name, row['steps'])}.png"],
                                     failed=status.startswith("diverged"))
            runs.append({"model": model, "sampler": job.name, "steps": row["steps"], "seed_set": row["seed_set"],
                         "run_id": rid, "created": c})
for path in snakemake.input.experiments:
    exp = json.loads(Path(path).read_text())
    numbers = {k.replace("[", "_").replace("]", "").replace("=", ""): v for k, v in exp.items() if isinstance(v, (int, float))}
    rid, c = tracker.log_run(job_key(cfg["name"], "experiment", exp["experiment"], numbers), f"experiment/{exp['experiment']}",
                             {"experiment": exp["experiment"], "description": exp["doc"]}, numbers,
                             {**environment_tags(), "kind": "experiment", "job": job_key(cfg["name"], "experiment", exp["experiment"])},
                             artifacts=[Path(path).with_suffix(".png")])
    runs.append({"experiment": exp["experiment"], "run_id": rid, "created": c})
save_json({"tracking_uri": uri, "experiment": cfg["mlflow"]["experiment"], "runs": runs,
           "created": sum(r["created"] for r in runs), "total_runs_in_experiment": tracker.count()}, snakemake.output[0])
