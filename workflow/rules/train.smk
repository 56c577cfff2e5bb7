rule classifier:
    """Domain classifier (the digits-CNN feature extractor and the clean classifier for guidance)."""
    params:
        code=script_code("classifier"),
        settings=lambda wc: settings(PLAN.datasets[wc.data], PLAN.evaluation.classifier_epochs),
    output:
        weights=L.classifier("{data}"),
        report=L.classifier_report("{data}"),
    log:
        L.log("classifier", "{data}"),
    benchmark:
        L.benchmark("classifier", "{data}")
    priority: job_priority("classifier")
    threads: THREADS
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/classifier.py"


rule reference:
    """Reference statistics of an image test split (cached once, content-hashed) and the train-vs-test floor."""
    input:
        unpack(lambda wc: {"classifier": L.classifier(wc.data)} if DIGITS_FEATURES else {}),
    params:
        code=script_code("reference"),
        settings=lambda wc: settings(PLAN.datasets[wc.data], PLAN.evaluation),  # split, n, floor draws
    output:
        L.reference("{data}"),
    log:
        L.log("reference", "{data}"),
    benchmark:
        L.benchmark("reference", "{data}")
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
        model=L.model_file("{model}"),
        stats=L.train_stats("{model}"),
        log_csv=L.train_log("{model}"),
    params:
        code=script_code("train"),
        run_dir=lambda wc: L.run_dir(wc.model),
        settings=lambda wc: settings(PLAN.models[wc.model].config),  # a changed setting re-runs (and retrains) the model
    log:
        L.log("train", "{model}"),
    benchmark:
        L.benchmark("train", "{model}")
    wildcard_constraints:
        model=one_of([m for m in MODELS if m not in RELEASED]),
    priority: job_priority("train")
    threads: lambda wc: THREADS * PLAN.models[wc.model].processes
    resources:
        gpu=lambda wc: GPU * PLAN.models[wc.model].processes,  # the SLURM executor turns it into --gpus=K
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/train.py"


rule import_released:
    """A released checkpoint (score_sde_pytorch, a diffusers folder) as a model file, in place of training; its
    train_stats.json records where the weights came from (file, sha256, step)."""
    output:
        model=L.model_file("{model}"),
        stats=L.train_stats("{model}"),
        log_csv=L.train_log("{model}"),
    wildcard_constraints:
        model=one_of(RELEASED),
    params:
        code=script_code("import_released"),
        settings=lambda wc: settings(PLAN.models[wc.model].config),
    log:
        L.log("train", "{model}"),
    benchmark:
        L.benchmark("train", "{model}")
    priority: job_priority("train")
    threads: THREADS
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/import_released.py"
