rule track:
    """The one MLflow writer: idempotent by job key, so re-runs and parallel evaluations never duplicate runs."""
    input:
        stats=expand(f"{R}/train/{{model}}/train_stats.json", model=MODELS),
        models=expand(f"{W}/models/{{model}}/model.pt", model=MODELS),  # logged with each model's run
        metrics=expand(f"{R}/metrics/{{model}}/samplers.json", model=BENCHMARKED),
        likelihood=expand(f"{R}/metrics/{{model}}/likelihood.json", model=BENCHMARKED),
        experiments=expand(f"{R}/experiments/{{e}}.json", e=EXPERIMENT_NAMES),
        floors=FLOORS,
    output:
        f"{R}/mlflow_runs.json",
    log:
        f"{R}/logs/track.log",
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/track.py"
