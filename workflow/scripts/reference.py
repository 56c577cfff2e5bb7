from pathlib import Path

from sgm_bench.bench import setup_job
from sgm_bench.experiment import load_dataset
from sgm_bench.io import save_json
from sgm_bench.metrics.fidelity import fidelity_metrics

setup_job(snakemake.threads, snakemake.log[0])
cfg, ev = snakemake.config, snakemake.config["evaluation"]
data = load_dataset(cfg["datasets"][snakemake.wildcards.data])
weights = snakemake.input.get("classifier") or ev.get("inception_weights")
# computes and caches the test split's statistics once (content-hashed), before any evaluation job reads them, and
# reports the floor: training images scored against the test split at the evaluation's sample size
n = min(int(ev["n_samples"]), len(data.train))
floor = fidelity_metrics(data.images.to_uint8(data.train[:n]), data.images.to_uint8(data.test), extractor=ev["extractor"],
                         weights_path=weights, cache_root=Path(cfg["work"]) / "fidelity-cache",
                         kid_subset_size=min(ev["kid_subset_size"], n), device=cfg.get("device", "cpu"))
save_json({"dataset": snakemake.wildcards.data, "floor": floor}, snakemake.output[0])
