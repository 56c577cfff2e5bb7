rule track_model:
    """One model's MLflow runs (the model, a child per sampler setting), idempotent by content key; the models' jobs
    write concurrently to a tracking server, and take turns on a SQLite store."""
    input:
        unpack(tracked_inputs),
    output:
        f"{R}/mlflow/{{model}}.json",
    log:
        f"{R}/logs/track/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/track/{{model}}.tsv"
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/track.py"


rule track:
    """The course experiments' runs, then the list of every run of the configuration (mlflow_runs.json)."""
    input:
        tracked=expand(f"{R}/mlflow/{{model}}.json", model=MODELS),
        experiments=expand(f"{R}/experiments/{{e}}.json", e=EXPERIMENT_NAMES),
    output:
        f"{R}/mlflow_runs.json",
    log:
        f"{R}/logs/track.log",
    benchmark:
        f"{R}/benchmarks/track.tsv"
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/track.py"
