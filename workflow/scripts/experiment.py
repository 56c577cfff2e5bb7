import inspect
import sys
from pathlib import Path

from sgm_bench.bench import setup_job
from sgm_bench.experiments import EXPERIMENTS, experiment_options
from sgm_bench.io import save_json

setup_job(snakemake.threads, snakemake.log[0], snakemake)
cfg = snakemake.config
fn, opts = experiment_options(snakemake.wildcards.experiment, cfg)
if "model" in snakemake.input.keys():
    opts["model_path"] = snakemake.input.model
if "classifier" in snakemake.input.keys():
    opts["classifier_path"] = snakemake.input.classifier
    opts["cache_root"] = str(Path(cfg["work"]) / "fidelity-cache")
if "device" in inspect.signature(fn).parameters:
    opts["device"] = cfg.get("device", "cpu")
numbers = fn(Path(snakemake.output.figure).with_suffix(""), **opts)
save_json({"experiment": snakemake.wildcards.experiment, "doc": fn.__doc__.split("\n")[0], **numbers},
          snakemake.output.json)
print("sgm-bench: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in numbers.items()
                               if isinstance(v, (int, float, str))), file=sys.stderr)
