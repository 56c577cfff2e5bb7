from pathlib import Path

import torch

from sgm_bench.bench import evaluate_sampler, setup_job
from sgm_bench.experiment import load_dataset
from sgm_bench.io import save_json, save_torch
from sgm_bench.plan import build_plan
from sgm_bench.report.plots import sample_grid
from sgm_bench.train import load_model, pick_device

setup_job(snakemake.threads, snakemake.log[0])
cfg, wc = snakemake.config, snakemake.wildcards
plan = build_plan(cfg)
job = plan.job(wc.model, wc.sampler)
data = load_dataset(plan.models[wc.model]["data"])
device = pick_device(cfg.get("device", "cpu"))
ev = {**cfg["evaluation"], "extractor_weights": snakemake.input.classifier or cfg["evaluation"].get("inception_weights")}
if isinstance(ev["extractor_weights"], list):
    ev["extractor_weights"] = ev["extractor_weights"][0] if ev["extractor_weights"] else None
model = load_model(snakemake.input.model, device=device)
rows, x = evaluate_sampler(model, data, job.sampler, job.steps, job.options, ev,
                           Path(cfg["work"]) / "fidelity-cache", device)
for r in rows:
    r.update(model=wc.model, variant=wc.sampler, family=model.family.name, dataset=plan.models[wc.model]["data"]["name"])
save_torch(x, snakemake.output.samples)
sample_grid(x, Path(snakemake.output.grid).with_suffix(""), f"{wc.model} / {wc.sampler}", data.images)
save_json({"model": wc.model, "sampler": wc.sampler, "rows": rows}, snakemake.output.metrics)
