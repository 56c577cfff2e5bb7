rule experiment:
    """One course experiment (sgm_bench.experiments): a figure and its numbers."""
    input:
        unpack(experiment_inputs),
    params:
        code=script_code("experiment"),
        options=lambda wc: settings(PLAN.experiments[wc.experiment]),  # a changed option re-runs the experiment
    output:
        json=L.experiment("{experiment}"),
        figure=report(L.experiment("{experiment}", "png"), category="Course experiments",
                      caption="../report/experiment.rst"),
    log:
        L.log("experiments", "{experiment}"),
    benchmark:
        L.benchmark("experiments", "{experiment}")
    priority: job_priority("experiment")
    threads: THREADS
    resources:
        gpu=GPU,  # the guidance experiments sample on config.device
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/experiment.py"
