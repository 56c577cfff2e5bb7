from pathlib import Path

from sgm_bench.io import copy_file
from sgm_bench.job import start
from sgm_bench.train import train

if __name__ == "__main__":  # train.processes > 1 spawns processes, which re-import this file as __mp_main__
    plan = start(snakemake)
    cfg = plan.models[snakemake.wildcards.model].config
    cfg["train"] = {**cfg["train"], "device": plan.device, "progress": False}
    run = Path(snakemake.params.run_dir)
    train(cfg, run)  # train.processes > 1: DDP over that many processes (GPUs)
    for src, dst in [("model.pt", snakemake.output.model), ("train_stats.json", snakemake.output.stats),
                     ("train_log.csv", snakemake.output.log_csv)]:
        copy_file(run / src, dst)
