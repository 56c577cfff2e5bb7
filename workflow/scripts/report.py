from sgm_bench.bench import setup_job
from sgm_bench.plan import build_plan
from sgm_bench.report.build import build, objective_of

setup_job(1, snakemake.log[0], snakemake)
plan = build_plan(snakemake.config)
build(snakemake.config["results"], snakemake.input.metrics, snakemake.input.likelihood, snakemake.input.curves,
      snakemake.config.get("paper_cells", []), snakemake.input.floors, snakemake.input.experiments,
      plan.not_run, plan.not_applicable, {m: objective_of(spec) for m, spec in plan.models.items()},
      plan.deviations, plan.released)
