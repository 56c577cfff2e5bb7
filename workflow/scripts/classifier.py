import sys

from sgm_bench.spec import load_dataset
from sgm_bench.io import save_json
from sgm_bench.job import start
from sgm_bench.metrics.digits_cnn import train_digits_classifier

plan = start(snakemake)
data = load_dataset(plan.datasets[snakemake.wildcards.data])
pixels = data.images.to_uint8  # what torch-fidelity hands the classifier at FID time: it is trained on the same
report = train_digits_classifier(pixels(data.train), data.train_labels, pixels(data.test), data.test_labels,
                                 snakemake.output.weights, epochs=plan.evaluation.classifier_epochs,
                                 channels=data.shape[0])
save_json({**report, "dataset": snakemake.wildcards.data, "note": "domain-feature classifier, not Inception"},
          snakemake.output.report)
print(f"sgm-bench: classifier {report}", file=sys.stderr)
