rule track_model:
    """One model's MLflow runs (the model, a child per sampler setting), idempotent by content key: with a tracking
    server (MLFLOW_TRACKING_URI=http...), the models' jobs write to it concurrently."""
    input:
        unpack(lambda wc: tracked_files(wc.model)),
    params:
        code=script_code("track"),
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
    """On SQLite every model's runs, on a server the track_model jobs' lists; then the course experiments' runs and the
    list of every run of the configuration (mlflow_runs.json)."""
    input:
        unpack(track_inputs),
        experiments=expand(f"{R}/experiments/{{e}}.json", e=EXPERIMENT_NAMES),
    params:
        code=script_code("track"),
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
