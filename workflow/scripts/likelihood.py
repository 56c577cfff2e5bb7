import sys

from sgm_bench.evaluation import evaluate_likelihood
from sgm_bench.spec import load_dataset, model_spec
from sgm_bench.io import save_json
from sgm_bench.job import start
from sgm_bench.runtime import pick_device
from sgm_bench.train import load_model

plan = start(snakemake)
spec = plan.models[snakemake.wildcards.model]
device = pick_device(plan.device)
data = load_dataset(spec.data)
model = load_model(snakemake.input.model, device=device, expected_spec=model_spec(spec.config, data))
out = evaluate_likelihood(model, data, plan.evaluation.likelihood, device)
save_json({"model": spec.name, "family": model.family.name, "dataset": spec.dataset, **out}, snakemake.output[0])
print(f"sgm-bench: {spec.name}: " + ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}"
                                              for k, v in out.items()), file=sys.stderr)
