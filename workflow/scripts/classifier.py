import sys

from sgm_bench.bench import setup_job
from sgm_bench.experiment import load_dataset
from sgm_bench.io import save_json
from sgm_bench.metrics.digits_cnn import train_digits_classifier

setup_job(snakemake.threads, snakemake.log[0], snakemake)
cfg, ev = snakemake.config, snakemake.config["evaluation"]
data = load_dataset(cfg["datasets"][snakemake.wildcards.data])
report = train_digits_classifier(data.train, data.train_labels, data.test, data.test_labels, snakemake.output.weights,
                                 epochs=ev.get("classifier_epochs", 40))
save_json({**report, "dataset": snakemake.wildcards.data, "note": "domain-feature classifier, not Inception"},
          snakemake.output.report)
print(f"sgm-bench: classifier {report}", file=sys.stderr)
