import json
import shutil
import sys
from dataclasses import asdict, replace
from pathlib import Path

from tqdm.auto import tqdm

from sgm_bench.evaluation import evaluate_sampler, plot_limits, toy_floor
from sgm_bench.spec import load_dataset, model_spec
from sgm_bench.io import file_hash, package_hash, resumable, save_json, save_torch
from sgm_bench.job import forced, start
from sgm_bench.metrics.registry import ranking_metric
from sgm_bench.metrics.toy import finite_only
from sgm_bench.report.plots import sample_grid
from sgm_bench.runtime import pick_device
from sgm_bench.train import load_model

plan = start(snakemake)
RANKING = [ranking_metric("image"), ranking_metric("toy")]
name, ev = snakemake.wildcards.model, plan.evaluation
spec, jobs = plan.models[name], plan.jobs_of(name)
data = load_dataset(spec.data)
device = pick_device(plan.device)
weights = snakemake.input.classifier or ev.inception_weights  # the FID detector's file
weights = (weights[0] if weights else None) if isinstance(weights, list) else weights
model = load_model(snakemake.input.model, device=device, expected_spec=model_spec(spec.config, data))
# A finished (sampler variant, steps) setting's rows are kept under a key naming everything they depend on: a re-run
# after a crash, or after a change to one setting, recomputes only what changed.
FRESH = forced(snakemake)  # --forcerun evaluate: nothing kept is reused, not even after a crash of this run
if FRESH and Path(snakemake.params.resume).exists():
    shutil.rmtree(snakemake.params.resume)
    print(f"sgm-bench: forced: kept settings in {snakemake.params.resume} removed", file=sys.stderr)
# the model, code, settings, and the detector's and reference statistics' contents (a retrained classifier or
# reference changes them)
inputs = [f for f in (weights, snakemake.input.reference) if f and not isinstance(f, list) and Path(f).is_file()]
base_key = [file_hash(snakemake.input.model), package_hash(), asdict(ev), *map(file_hash, inputs)]
limits = None if data.toy is None else plot_limits(data)
rows, samples = [], {}
for job in tqdm(jobs, desc=name, file=sys.stderr):
    n = job.n_samples or ev.n_samples
    print(f"sgm-bench: {name} / {job.name}: sampler {job.sampler}, steps {job.steps}, options {job.options}, "
          f"n {n} x {ev.seed_sets} seed sets, reference split {ev.reference_split}", file=sys.stderr)
    job_rows, grids = [], {}
    for steps in job.steps:  # one part per step count: adding a step count samples that one only
        key = json.dumps([*base_key, asdict(replace(job, steps=(steps,)))], sort_keys=True, default=str)
        part_rows, part_grids = resumable(
            plan.layout.evaluation_part(name, job.name, steps), key,
            lambda job=job, steps=steps: evaluate_sampler(model, data, job.sampler, [steps], job.options, ev,
                                                          plan.layout.fidelity_cache(), device, n=job.n_samples,
                                                          weights=weights), fresh=FRESH)
        job_rows += part_rows
        grids.update(part_grids)
    for r in job_rows:
        r.update(model=name, variant=job.name, family=model.family.name, dataset=spec.dataset)
        print(f"sgm-bench:   steps {r['steps']} seed set {r['seed_set']}: NFE {r['nfe']:g}, {r['seconds']:.2f} s, "
              f"{r['status']}, " + ", ".join(f"{k} {r[k]:.4g}" for k in RANKING if isinstance(r.get(k), float)),
              file=sys.stderr)
    for steps, x in grids.items():
        kept, bad = finite_only(x)
        first = next(r for r in job_rows if r["steps"] == steps and r["seed_set"] == 0)
        title = f"{name} / {job.name}, steps {steps if steps is not None else 'adaptive'}, NFE {first['nfe']:g}"
        title += f"\n{bad}/{len(x)} non-finite, not shown" if bad else ""
        sample_grid(kept, Path(plan.layout.sample_grid(name, job.name, steps)).with_suffix(""), title, data.images, limits,
                    formats=("png",))
        samples[(job.name, steps)] = x
    rows += job_rows
floor = toy_floor(data, rows[0]["n"], ev) if data.toy is not None else None
save_torch(samples, snakemake.output.samples)
save_json({"model": name, "rows": rows, "floor": floor}, snakemake.output.metrics)
