from sgm_bench.job import start
from sgm_bench.report.build import build, objective_of

plan = start(snakemake, threads=1)
build(plan.layout.results, snakemake.input.metrics, snakemake.input.likelihood, snakemake.input.curves,
      list(plan.paper_cells), snakemake.input.floors, snakemake.input.experiments, list(plan.not_run),
      list(plan.not_applicable), {m: objective_of(s.config) for m, s in plan.models.items()}, plan.deviations,
      plan.released, plan.trainings)
