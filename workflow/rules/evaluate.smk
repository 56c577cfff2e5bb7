rule evaluate:
    """One sampler of one model over its step grid and seed sets: samples, quality, NFE, seconds, memory."""
    input:
        model=rules.train.output.model,
        classifier=classifier_input,
        reference=reference_input,
    output:
        metrics=f"{R}/metrics/{{model}}/{{sampler}}.json",
        grid=report(f"{R}/samples/{{model}}/{{sampler}}.png", category="Samples", subcategory="{model}"),
        samples=f"{W}/samples/{{model}}/{{sampler}}.pt",
    params:
        settings=lambda wc: settings(PLAN.job(wc.model, wc.sampler), config["evaluation"]),
    log:
        f"{R}/logs/evaluate/{{model}}/{{sampler}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{{model}}/{{sampler}}.tsv"
    threads: THREADS
    resources:
        gpu=GPU,
    script:
        "../scripts/evaluate.py"


rule likelihood:
    """Test-set ODE bits/dim (toy: NLL in nats); DDPM's variational bound apart."""
    input:
        model=rules.train.output.model,
    output:
        f"{R}/metrics/{{model}}/likelihood.json",
    params:
        settings=lambda wc: settings(PLAN.models[wc.model], config["evaluation"].get("likelihood", {})),
    log:
        f"{R}/logs/likelihood/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/likelihood/{{model}}.tsv"
    threads: THREADS
    resources:
        gpu=GPU,
    script:
        "../scripts/likelihood.py"
