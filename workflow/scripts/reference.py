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
# against it at the evaluated n (subsets of a small held-out split share images: its spread is a lower bound on the
# sampling spread). FID falls with n, so a floor at fewer images than the evaluated n is no floor: with too few
# held-out images it is stated as not available, with why.
split = ev.reference_split
ref, held_out = reference_set(data, ev), data.test if split == "train" else data.train
n = ev.scored_n()
score = lambda x, seed, fresh=False: fidelity_metrics(  # noqa: E731
    data.images.to_uint8(x), data.images.to_uint8(ref), extractor=ev.extractor, weights_path=weights,
    cache_root=plan.layout.fidelity_cache(), kid_subset_size=min(ev.kid_subset_size, len(x)), device=plan.device,
    seed=seed, fresh=fresh)
fresh = forced(snakemake)  # --forcerun reference: the statistics are computed afresh
if len(held_out) < n:
    first = score(held_out, 0, fresh)  # caches the reference statistics; not a floor
    floor = {"n": n, "status": "not available", "reference_hash": first["reference_hash"],
             "note": f"floor not available: the {len(held_out)} held-out {'test' if split == 'train' else 'training'} "
                     f"images are fewer than the evaluated n = {n}, and FID falls with n (a floor at fewer images "
                     "would lie above the evaluated n's)"}
else:
    draws = []
    for d in range(ev.floor_draws):
        pick = torch.randperm(len(held_out), generator=torch.Generator().manual_seed(d))[:n]
        draws.append(score(held_out[pick], d, fresh and d == 0))
        print(f"sgm-bench: floor draw {d}: FID {draws[-1]['fid']:.4g}", file=sys.stderr)
    floor = {k: spread(r[k] for r in draws) for k in of_kind("image", floor=True) if k in draws[0]}  # IS: logits
    floor.update(n=n, held_out=f"random {n}-subsets of the {len(held_out)} {'test' if split == 'train' else 'training'}"
                 " images", reference_hash=draws[0]["reference_hash"])
floor.update(n_reference=len(ref), reference_split=split, extractor=ev.extractor)
save_json({"dataset": snakemake.wildcards.data, "floor": floor}, snakemake.output[0])
