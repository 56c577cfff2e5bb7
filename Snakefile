# sgm-bench: `snakemake --cores all` (embedded default) or `snakemake --cores all --configfile config/paper.yaml`.
from snakemake.utils import min_version, validate

min_version("9.0")


# The default configuration only when none is given: Snakemake would deep-merge --configfile onto a `configfile:`
# directive, mixing the default models into every other configuration.
if not config:
    import yaml

    config.update(yaml.safe_load(open(workflow.source_path("config/config.yaml"))))


validate(config, "workflow/schemas/config.schema.yaml")


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
    default_target: True
