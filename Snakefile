# sgm-bench: `snakemake --cores all` (embedded default) or `snakemake --cores all --configfile config/paper.yaml`.
from snakemake.utils import min_version, validate

from sgm_bench.checks import check_size, load_yaml, yaml12_numbers

min_version("9.0")

for _f in workflow.configfiles:  # Snakemake's loader lets a repeated key win silently: refuse it here
    load_yaml(_f)


# The default configuration only when none is given: Snakemake would deep-merge --configfile onto a `configfile:`
# directive, mixing the default models into every other configuration.
if not config:
    config.update(load_yaml(workflow.source_path("config/config.yaml")))


check_size(config)  # an alias bomb stops here, before the schema check walks it
config.update(yaml12_numbers(dict(config)))  # `lr: 1e-3` is a number (Snakemake's YAML 1.1 loader reads a string)
validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/track.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        rules.report.output,
        rules.track.output,
        # what the report and MLflow read, named as targets too: a deleted result is rebuilt by the next run (as an
        # input only, Snakemake let the finished report stand on it and did nothing)
        rules.report.input,
        [f for m in MODELS for f in tracked_files(m).values()],
    default_target: True
