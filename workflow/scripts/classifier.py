from pathlib import Path

from sgm_bench.bench import setup_job
from sgm_bench.experiment import load_dataset
from sgm_bench.io import save_json
from sgm_bench.metrics.digits_cnn import train_digits_classifier
from sgm_bench.metrics.fidelity import fidelity_metrics

setup_job(snakemake.threads, snakemake.log[0])
cfg, ev = snakemake.config, snakemake.config["evaluation"]
data = load_dataset(cfg["datasets"][snakemake.wildcards.data])
report = train_digits_classifier(data.train, data.train_labels, data.test, data.test_labels, snakemake.output.weights,
                                 epochs=ev.get("classifier_epochs", 40))
# the floor: training images scored against the test split at the evaluation's sample size
n = min(int(ev["n_samples"]), len(data.train))
floor = fidelity_metrics(data.images.to_uint8(data.train[:n]), data.images.to_uint8(data.test), extractor="digits-cnn",
                         weights_path=snakemake.output.weights, cache_root=Path(cfg["work"]) / "fidelity-cache",
                         kid_subset_size=ev["kid_subset_size"])
save_json({**report, "dataset": snakemake.wildcards.data, "note": "domain-feature classifier, not Inception",
           "floor": floor}, snakemake.output.report)
