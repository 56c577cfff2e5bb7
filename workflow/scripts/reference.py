import sys
import torch

from sgm_bench.evaluation import reference_set
from sgm_bench.report.stats import spread
from sgm_bench.spec import load_dataset
from sgm_bench.io import save_json
from sgm_bench.job import forced, start
from sgm_bench.metrics.registry import of_kind
from sgm_bench.metrics.fidelity import fidelity_metrics

plan = start(snakemake)
ev = plan.evaluation
data = load_dataset(plan.datasets[snakemake.wildcards.data])
weights = snakemake.input.get("classifier") or ev.inception_weights
# Caches the reference split's statistics once (content-hashed), before any evaluation job reads them, and reports
# the floor as a distribution: `floor_draws` random n-subsets of real images held out from the reference, scored
# against it at the evaluation's sample size (subsets of a small held-out split share images: its spread is a
# lower bound on the sampling spread).
split = ev.reference_split
ref, held_out = reference_set(data, ev), data.test if split == "train" else data.train
n = min(ev.n_samples, len(held_out))
draws = []
for d in range(ev.floor_draws):
    pick = torch.randperm(len(held_out), generator=torch.Generator().manual_seed(d))[:n]
    draws.append(fidelity_metrics(data.images.to_uint8(held_out[pick]), data.images.to_uint8(ref),
                                  extractor=ev.extractor, weights_path=weights, cache_root=plan.layout.fidelity_cache(),
                                  kid_subset_size=min(ev.kid_subset_size, n), device=plan.device, seed=d,
                                  fresh=d == 0 and forced(snakemake)))  # --forcerun reference: statistics afresh
    print(f"sgm-bench: floor draw {d}: FID {draws[-1]['fid']:.4g}", file=sys.stderr)
floor = {k: spread(r[k] for r in draws) for k in of_kind("image", floor=True) if k in draws[0]}  # IS needs logits
floor.update(n=n, n_reference=len(ref), reference_split=split, held_out=f"random {n}-subsets of the "
             f"{len(held_out)} {'test' if split == 'train' else 'training'} images", extractor=ev.extractor,
             reference_hash=draws[0]["reference_hash"])
if n < ev.n_samples:  # FID falls with n: a floor at fewer images lies above the one at the evaluated n
    floor["note"] = (f"measured at n = {n}, not the evaluated {ev.n_samples}: the held-out split has {len(held_out)} "
                     "images; FID falls with n, so this floor lies above the one at the evaluated n")
save_json({"dataset": snakemake.wildcards.data, "floor": floor}, snakemake.output[0])
