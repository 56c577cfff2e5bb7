import sys
from pathlib import Path

from sgm_bench.bench import evaluate_sampler, setup_job, toy_floor
from sgm_bench.experiment import load_dataset, model_spec
from sgm_bench.io import save_json, save_torch
from sgm_bench.metrics.toy import finite_only
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
model = load_model(snakemake.input.model, device=device, expected_spec=model_spec(plan.models[wc.model], data))
print(f"sgm-bench: {wc.model} / {wc.sampler}: sampler {job.sampler}, steps {job.steps}, options {job.options}, "
      f"n {job.n_samples or ev['n_samples']} x {ev['seed_sets']} seed sets, reference split {ev.get('reference_split')}", file=sys.stderr)
rows, grids = evaluate_sampler(model, data, job.sampler, job.steps, job.options, ev,
                               Path(cfg["work"]) / "fidelity-cache", device, n=job.n_samples)
for r in rows:
    r.update(model=wc.model, variant=wc.sampler, family=model.family.name, dataset=plan.models[wc.model]["data"]["name"])
    print(f"sgm-bench: steps {r['steps']} seed set {r['seed_set']}: NFE {r['nfe']:g}, {r['seconds']:.2f} s, "
          f"{r['status']}, " + ", ".join(f"{k} {r[k]:.4g}" for k in ("fid", "sw") if isinstance(r.get(k), float)), file=sys.stderr)
floor = toy_floor(data, rows[0]["n"], ev) if data.toy is not None else None
save_torch(grids, snakemake.output.samples)
steps, x = list(grids.items())[-1]
kept, bad = finite_only(x)
last = [r for r in rows if r["steps"] == steps and r["seed_set"] == 0][0]
title = f"{wc.model} / {wc.sampler}, steps {steps if steps is not None else 'adaptive'}, NFE {last['nfe']:g}"
title += f"\n{bad}/{len(x)} non-finite, not shown" if bad else ""
sample_grid(kept, Path(snakemake.output.grid).with_suffix(""), title, data.images)
save_json({"model": wc.model, "sampler": wc.sampler, "rows": rows, "floor": floor}, snakemake.output.metrics)
