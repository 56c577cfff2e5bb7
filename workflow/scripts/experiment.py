import inspect
import sys
from pathlib import Path

from sgm_bench.experiments import experiment_function
from sgm_bench.io import save_json
from sgm_bench.job import start

plan = start(snakemake)
spec = plan.experiments[snakemake.wildcards.experiment]
fn, opts = experiment_function(spec)
if "model" in snakemake.input.keys():
    opts["model_path"] = snakemake.input.model
if "classifier" in snakemake.input.keys():
    opts["classifier_path"] = snakemake.input.classifier
    opts["cache_root"] = plan.layout.fidelity_cache()
if "device" in inspect.signature(fn).parameters:
    opts["device"] = plan.device
numbers = fn(Path(snakemake.output.figure).with_suffix(""), **opts)
save_json({"experiment": spec.name, "doc": fn.__doc__.split("\n")[0], **numbers}, snakemake.output.json)
print("sgm-bench: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in numbers.items()
                               if isinstance(v, (int, float, str))), file=sys.stderr)
