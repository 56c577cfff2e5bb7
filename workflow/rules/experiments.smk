EXPERIMENT_NAMES = list(config.get("experiments", {}))


def experiment_inputs(wildcards):
    opts = config["experiments"][wildcards.experiment] or {}  # checked by sgm_bench.plan
    inputs = {}
    if "model" in opts:
        inputs["model"] = f"{W}/models/{opts['model']}/model.pt"
    if opts.get("classifier"):
        inputs["classifier"] = f"{W}/classifier/{opts['classifier']}.pt"
    return inputs


rule experiment:
    """One course experiment (sgm_bench.experiments): a figure and its numbers."""
    input:
        unpack(experiment_inputs),
    params:
        options=lambda wc: config["experiments"][wc.experiment],  # a changed option re-runs the experiment
    output:
        json=f"{R}/experiments/{{experiment}}.json",
        figure=report(f"{R}/experiments/{{experiment}}.png", category="Course experiments"),
    log:
        f"{R}/logs/experiments/{{experiment}}.log",
    benchmark:
        f"{R}/benchmarks/experiments/{{experiment}}.tsv"
    threads: THREADS
    resources:
        gpu=GPU,  # the guidance experiments sample on config.device
    script:
        "../scripts/experiment.py"
