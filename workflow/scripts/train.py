from pathlib import Path

from sgm_bench.bench import setup_job
from sgm_bench.io import copy_file
from sgm_bench.plan import build_plan
from sgm_bench.train import train

if __name__ == "__main__":  # train.processes > 1 spawns processes, which re-import this file as __mp_main__
    setup_job(snakemake.threads, snakemake.log[0], snakemake)
    cfg = build_plan(snakemake.config).models[snakemake.wildcards.model]
    cfg["train"] = {**cfg["train"], "device": snakemake.config.get("device", "cpu"), "progress": False}
    run = Path(snakemake.params.run_dir)
    train(cfg, run)  # train.processes > 1: DDP over that many processes (GPUs)
    for src, dst in [("model.pt", snakemake.output.model), ("train_stats.json", snakemake.output.stats),
                     ("train_log.csv", snakemake.output.log_csv)]:
        copy_file(run / src, dst)
