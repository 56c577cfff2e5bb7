rule track_model:
    """One model's MLflow runs (the model, a child per sampler setting), idempotent by content key: with a tracking
    server (MLFLOW_TRACKING_URI=http...), the models' jobs write to it concurrently."""
    input:
        unpack(lambda wc: tracked_files(wc.model)),
    params:
        code=script_code("track"),
    output:
        L.tracked("{model}"),
    log:
        L.log("track", "{model}"),
    benchmark:
        L.benchmark("track", "{model}")
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/track.py"


rule track:
    """On SQLite every model's runs, on a server the track_model jobs' lists; then the course experiments' runs and the
    list of every run of the configuration (mlflow_runs.json)."""
    input:
        unpack(track_inputs),
        experiments=[L.experiment(e) for e in EXPERIMENT_NAMES],
    params:
        code=script_code("track"),
    output:
        L.runs_list(),
    log:
        L.log("track"),
    benchmark:
        L.benchmark("track")
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/track.py"
