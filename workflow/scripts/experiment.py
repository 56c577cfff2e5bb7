from pathlib import Path

from sgm_bench.bench import setup_job
from sgm_bench.experiments import EXPERIMENTS
from sgm_bench.io import save_json

setup_job(snakemake.threads, snakemake.log[0])
name = snakemake.wildcards.experiment
opts = {k: v for k, v in (snakemake.config["experiments"][name] or {}).items() if k not in ("model", "classifier")}
if "model" in snakemake.input.keys():
    opts["model_path"] = snakemake.input.model
if "classifier" in snakemake.input.keys():
    opts["classifier_path"] = snakemake.input.classifier
    opts["cache_root"] = str(Path(snakemake.config["work"]) / "fidelity-cache")
numbers = EXPERIMENTS[name](Path(snakemake.output.figure).with_suffix(""), **opts)
save_json({"experiment": name, "doc": EXPERIMENTS[name].__doc__.split("\n")[0], **numbers}, snakemake.output.json)
