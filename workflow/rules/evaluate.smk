rule evaluate:
    """Every sampler of one model over its step grids and seed sets, in one process (fixed costs paid once per model):
    samples, quality, NFE, seconds, memory; a sample grid per (sampler, steps). A finished sampler is kept in
    work/<cfg>/evaluations/<model>/, so a re-run recomputes only the samplers whose settings or inputs changed."""
    input:
        model=rules.train.output.model,
        classifier=classifier_input,
        reference=reference_input,
    output:
        metrics=L.metrics("{model}"),
        grids=report(directory(L.sample_grids("{model}")), patterns=["{name}.png"], category="Samples",
                     subcategory="{model}", caption="../report/samples.rst"),
        samples=L.samples("{model}"),
    params:
        code=script_code("evaluate"),
        settings=lambda wc: settings(PLAN.jobs_of(wc.model), PLAN.evaluation),
        resume=lambda wc: L.evaluations(wc.model),
    log:
        L.log("evaluate", "{model}"),
    benchmark:
        L.benchmark("evaluate", "{model}")
    priority: job_priority("evaluate")
    threads: THREADS
    resources:
        gpu=GPU,
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/evaluate.py"


rule likelihood:
    """Test-set ODE bits/dim (toy: NLL in nats); DDPM's variational bound apart."""
    input:
        model=rules.train.output.model,
    output:
        L.likelihood("{model}"),
    params:
        code=script_code("likelihood"),
        settings=lambda wc: settings(PLAN.models[wc.model].config, PLAN.evaluation.likelihood),
    log:
        L.log("likelihood", "{model}"),
    benchmark:
        L.benchmark("likelihood", "{model}")
    priority: job_priority("likelihood")
    threads: THREADS
    resources:
        gpu=GPU,
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/likelihood.py"
