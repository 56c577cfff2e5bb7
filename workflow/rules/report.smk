REPORT_TABLES = ["samplers", "likelihood", "cost", "paper"]
GUIDED = [e for e, o in config.get("experiments", {}).items()
          if (o or {}).get("experiment", e) in ("classifier_guidance", "classifier_free_guidance")]
KINDS = {image_model(m) for m in BENCHMARKED}
LIKELIHOOD_CSV = [f"likelihood_{k}" for k, images in (("images", True), ("toys", False)) if images in KINDS]


rule report:
    """Tables (CSV, Markdown, LaTeX) and seaborn figures (PNG, PDF) for results/<config>/."""
    input:
        stats=expand(f"{R}/train/{{model}}/train_stats.json", model=MODELS),
        curves=expand(f"{R}/train/{{model}}/train_log.csv", model=MODELS),
        metrics=expand(f"{R}/metrics/{{model}}/samplers.json", model=BENCHMARKED),
        likelihood=expand(f"{R}/metrics/{{model}}/likelihood.json", model=BENCHMARKED),
        experiments=expand(f"{R}/experiments/{{e}}.json", e=EXPERIMENT_NAMES),
        floors=FLOORS,
    params:
        code=script_code("report"),
    output:
        tables=expand(f"{R}/tables/{{t}}.md", t=REPORT_TABLES),
        leaderboards=[table(f"samplers_{m}", "Leaderboards") for m in BENCHMARKED],
        likelihood_csv=[table(t, "Likelihood") for t in LIKELIHOOD_CSV],
        cost_csv=table("cost", "Cost"),
        budget=table("budget", "Best sampler per NFE budget"),
        numbers=f"{R}/tables/samplers_numbers.csv",
        paper=[table(f"paper_{t}", "Paper tables", "paper.rst") for t in PAPER_TABLES],
        guidance_csv=[table("guidance", "Guidance")] if GUIDED else [],
        quality=report(f"{R}/figures/quality_vs_nfe.png", category="Figures", caption="../report/quality_vs_nfe.rst"),
        cost=report(f"{R}/figures/quality_vs_seconds.png", category="Figures",
                    caption="../report/quality_vs_seconds.rst"),
        bpd=report(f"{R}/figures/likelihood.png", category="Figures", caption="../report/likelihood_fig.rst"),
        curves=report(f"{R}/figures/training_curves.png", category="Figures", caption="../report/training_curves.rst"),
        guidance=[report(f"{R}/figures/guidance.png", category="Figures", caption="../report/guidance.rst")]
        if GUIDED else [],
        summary=report(f"{R}/summary.md", category="Tables", subcategory="Summary", caption="../report/summary.rst"),
    log:
        f"{R}/logs/report.log",
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/report.py"
