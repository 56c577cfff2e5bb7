rule classifier:
    """Domain classifier (the digits-CNN feature extractor and the clean classifier for guidance)."""
    params:
        code=script_code("classifier"),
        settings=lambda wc: settings(config["datasets"][wc.data], config["evaluation"].get("classifier_epochs")),
    output:
        weights=f"{W}/classifier/{{data}}.pt",
        report=f"{R}/classifier/{{data}}.json",
    log:
        f"{R}/logs/classifier/{{data}}.log",
    benchmark:
        f"{R}/benchmarks/classifier/{{data}}.tsv"
    priority: job_priority("classifier")
    threads: THREADS
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/classifier.py"


rule reference:
    """Reference statistics of an image test split (cached once, content-hashed) and the train-vs-test floor."""
    input:
        unpack(lambda wc: {"classifier": f"{W}/classifier/{wc.data}.pt"} if DIGITS_FEATURES else {}),
    params:
        code=script_code("reference"),
        settings=lambda wc: settings(config["datasets"][wc.data], config["evaluation"]),  # split, n, floor draws
    output:
        f"{R}/reference/{{data}}.json",
    log:
        f"{R}/logs/reference/{{data}}.log",
    benchmark:
        f"{R}/benchmarks/reference/{{data}}.tsv"
    priority: job_priority("reference")
    threads: THREADS
    resources:
        gpu=GPU,
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/reference.py"


rule train:
    """One model variant; checkpoints live in work/<config>/runs/<model>, outside the outputs, so a re-run resumes."""
    output:
        model=f"{W}/models/{{model}}/model.pt",
        stats=f"{R}/train/{{model}}/train_stats.json",
        log_csv=f"{R}/train/{{model}}/train_log.csv",
    params:
        code=script_code("train"),
        run_dir=lambda wc: f"{W}/runs/{wc.model}",
        settings=lambda wc: settings(PLAN.models[wc.model]),  # a changed setting re-runs (and retrains) the model
    log:
        f"{R}/logs/train/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{model}}.tsv"
    wildcard_constraints:
        model=one_of([m for m in MODELS if m not in RELEASED]),
    priority: job_priority("train")
    threads: lambda wc: THREADS * processes(wc.model)
    resources:
        gpu=lambda wc: GPU * processes(wc.model),  # the SLURM executor turns it into --gpus=K
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/train.py"


rule import_released:
    """A released checkpoint (score_sde_pytorch, a diffusers folder) as a model file, in place of training; its
    train_stats.json records where the weights came from (file, sha256, step)."""
    output:
        model=f"{W}/models/{{model}}/model.pt",
        stats=f"{R}/train/{{model}}/train_stats.json",
        log_csv=f"{R}/train/{{model}}/train_log.csv",
    wildcard_constraints:
        model=one_of(RELEASED),
    params:
        code=script_code("import_released"),
        settings=lambda wc: settings(PLAN.models[wc.model]),
    log:
        f"{R}/logs/train/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{model}}.tsv"
    priority: job_priority("train")
    threads: THREADS
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/import_released.py"
