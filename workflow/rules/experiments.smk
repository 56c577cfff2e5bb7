rule experiment:
    """One course experiment (sgm_bench.experiments): a figure and its numbers."""
    input:
        unpack(experiment_inputs),
    params:
        code=script_code("experiment"),
        options=lambda wc: config["experiments"][wc.experiment],  # a changed option re-runs the experiment
    output:
        json=f"{R}/experiments/{{experiment}}.json",
        figure=report(f"{R}/experiments/{{experiment}}.png", category="Course experiments",
                      caption="../report/experiment.rst"),
    log:
        f"{R}/logs/experiments/{{experiment}}.log",
    benchmark:
        f"{R}/benchmarks/experiments/{{experiment}}.tsv"
    priority: job_priority("experiment")
    threads: THREADS
    resources:
        gpu=GPU,  # the guidance experiments sample on config.device
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/experiment.py"
