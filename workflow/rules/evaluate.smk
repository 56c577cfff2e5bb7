rule evaluate:
    """Every sampler of one model over its step grids and seed sets, in one process (fixed costs paid once per model):
    samples, quality, NFE, seconds, memory; a sample grid per (sampler, steps). A finished sampler is kept in
    work/<cfg>/evaluations/<model>/, so a re-run recomputes only the samplers whose settings or inputs changed."""
    input:
        model=rules.train.output.model,
        classifier=classifier_input,
        reference=reference_input,
    output:
        metrics=f"{R}/metrics/{{model}}/samplers.json",
        grids=report(directory(f"{R}/samples/{{model}}"), patterns=["{name}.png"], category="Samples",
                     subcategory="{model}", caption="../report/samples.rst"),
        samples=f"{W}/samples/{{model}}.pt",
    params:
        code=script_code("evaluate"),
        settings=lambda wc: settings(PLAN.jobs_of(wc.model), config["evaluation"]),
        resume=lambda wc: f"{W}/evaluations/{wc.model}",
    log:
        f"{R}/logs/evaluate/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{{model}}.tsv"
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
        f"{R}/metrics/{{model}}/likelihood.json",
    params:
        code=script_code("likelihood"),
        settings=lambda wc: settings(PLAN.models[wc.model], config["evaluation"].get("likelihood", {})),
    log:
        f"{R}/logs/likelihood/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/likelihood/{{model}}.tsv"
    priority: job_priority("likelihood")
    threads: THREADS
    resources:
        gpu=GPU,
    conda:
        "../envs/sgm-bench.yaml"
    script:
        "../scripts/likelihood.py"
