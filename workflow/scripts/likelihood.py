import sys

from sgm_bench.bench import evaluate_likelihood, setup_job
from sgm_bench.experiment import load_dataset, model_spec
from sgm_bench.io import save_json
from sgm_bench.plan import build_plan
from sgm_bench.train import load_model, pick_device

setup_job(snakemake.threads, snakemake.log[0], snakemake)
cfg, name = snakemake.config, snakemake.wildcards.model
spec = build_plan(cfg).models[name]
device = pick_device(cfg.get("device", "cpu"))
data = load_dataset(spec["data"])
model = load_model(snakemake.input.model, device=device, expected_spec=model_spec(spec, data))
out = evaluate_likelihood(model, data, cfg["evaluation"].get("likelihood", {}), device)
save_json({"model": name, "family": model.family.name, "dataset": spec["data"]["name"], **out}, snakemake.output[0])
print(f"sgm-bench: {name}: " + ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in out.items()),
      file=sys.stderr)
