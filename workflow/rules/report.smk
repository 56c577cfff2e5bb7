REPORT_TABLES = ["samplers", "likelihood", "cost", "paper"]
GUIDED = [e for e, x in PLAN.experiments.items() if x.function in ("classifier_guidance", "classifier_free_guidance")]
KINDS = {image_model(m) for m in BENCHMARKED}
LIKELIHOOD_CSV = [f"likelihood_{k}" for k, images in (("images", True), ("toys", False)) if images in KINDS]


rule report:
    """Tables (CSV, Markdown, LaTeX) and seaborn figures (PNG, PDF) for results/<config>/."""
    input:
        stats=[L.train_stats(m) for m in MODELS],
        curves=[L.train_log(m) for m in MODELS],
        metrics=[L.metrics(m) for m in BENCHMARKED],
        likelihood=[L.likelihood(m) for m in BENCHMARKED],
        experiments=[L.experiment(e) for e in EXPERIMENT_NAMES],
        floors=FLOORS,
    params:
        code=script_code("report"),
    output:
        tables=[L.table(t) for t in REPORT_TABLES],
        leaderboards=[table(f"samplers_{m}", "Leaderboards") for m in BENCHMARKED],
        likelihood_csv=[table(t, "Likelihood") for t in LIKELIHOOD_CSV],
        cost_csv=table("cost", "Cost"),
        budget=table("budget", "Best sampler per NFE budget"),
        numbers=L.table("samplers_numbers", "csv"),
        paper=[table(f"paper_{t}", "Paper tables", "paper.rst") for t in PAPER_TABLES],
        guidance_csv=[table("guidance", "Guidance")] if GUIDED else [],
        quality=report(L.figure("quality_vs_nfe"), category="Figures", caption="../report/quality_vs_nfe.rst"),
        cost=report(L.figure("quality_vs_seconds"), category="Figures",
                    caption="../report/quality_vs_seconds.rst"),
        bpd=report(L.figure("likelihood"), category="Figures", caption="../report/likelihood_fig.rst"),
        curves=report(L.figure("training_curves"), category="Figures", caption="../report/training_curves.rst"),
        guidance=[report(L.figure("guidance"), category="Figures", caption="../report/guidance.rst")]
        if GUIDED else [],
        summary=report(L.summary(), category="Tables", subcategory="Summary", caption="../report/summary.rst"),
    log:
        L.log("report"),
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/report.py"
