import sys
from pathlib import Path

import torch

from sgm_bench.bench import reference_set, setup_job, spread
from sgm_bench.experiment import load_dataset
from sgm_bench.io import save_json
from sgm_bench.metrics.fidelity import fidelity_metrics

setup_job(snakemake.threads, snakemake.log[0], snakemake)
cfg, ev = snakemake.config, snakemake.config["evaluation"]
data = load_dataset(cfg["datasets"][snakemake.wildcards.data])
weights = snakemake.input.get("classifier") or ev.get("inception_weights")
# Caches the reference split's statistics once (content-hashed), before any evaluation job reads them, and reports
# the floor as a distribution: `floor_draws` random n-subsets of real images held out from the reference, scored
# against it at the evaluation's sample size (subsets of a small held-out split share images: its spread is a
# lower bound on the sampling spread).
split = ev.get("reference_split", "train")
ref, held_out = reference_set(data, ev), data.test if split == "train" else data.train
n = min(int(ev["n_samples"]), len(held_out))
draws = []
for d in range(int(ev.get("floor_draws", 20))):
    pick = torch.randperm(len(held_out), generator=torch.Generator().manual_seed(d))[:n]
    draws.append(fidelity_metrics(data.images.to_uint8(held_out[pick]), data.images.to_uint8(ref),
                                  extractor=ev["extractor"], weights_path=weights,
                                  cache_root=Path(cfg["work"]) / "fidelity-cache",
                                  kid_subset_size=min(ev["kid_subset_size"], n), device=cfg.get("device", "cpu"), seed=d))
    print(f"sgm-bench: floor draw {d}: FID {draws[-1]['fid']:.4g}", file=sys.stderr)
floor = {k: spread(r[k] for r in draws) for k in ("fid", "kid", "is") if k in draws[0]}  # no IS without logits
floor.update(n=n, n_reference=len(ref), reference_split=split, held_out=f"random {n}-subsets of the "
             f"{len(held_out)} {'test' if split == 'train' else 'training'} images", extractor=ev["extractor"],
             reference_hash=draws[0]["reference_hash"])
save_json({"dataset": snakemake.wildcards.data, "floor": floor}, snakemake.output[0])
