REPORT_TABLES = ["samplers", "likelihood", "cost", "paper"]
GUIDED = [e for e, o in config.get("experiments", {}).items()
          if (o or {}).get("experiment", e) in ("classifier_guidance", "classifier_free_guidance")]


rule report:
    """Tables (CSV, Markdown, LaTeX) and seaborn figures (PNG, PDF) for results/<config>/."""
    input:
        stats=expand(f"{R}/train/{{model}}/train_stats.json", model=MODELS),
        curves=expand(f"{R}/train/{{model}}/train_log.csv", model=MODELS),
        metrics=expand(f"{R}/metrics/{{model}}/samplers.json", model=BENCHMARKED),
        likelihood=expand(f"{R}/metrics/{{model}}/likelihood.json", model=BENCHMARKED),
        experiments=expand(f"{R}/experiments/{{e}}.json", e=EXPERIMENT_NAMES),
        floors=FLOORS,
    output:
        tables=expand(f"{R}/tables/{{t}}.md", t=REPORT_TABLES),
        quality=report(f"{R}/figures/quality_vs_nfe.png", category="Figures"),
        cost=report(f"{R}/figures/quality_vs_seconds.png", category="Figures"),
        bpd=report(f"{R}/figures/likelihood.png", category="Figures"),
        curves=report(f"{R}/figures/training_curves.png", category="Figures"),
        guidance=[report(f"{R}/figures/guidance.png", category="Figures")] if GUIDED else [],
        summary=report(f"{R}/summary.md", category="Tables"),
    log:
        f"{R}/logs/report.log",
    script:
        "../scripts/report.py"
