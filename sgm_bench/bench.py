"""Benchmark jobs the workflow runs: one sampler of one model over its step grid and seed sets; one model's likelihood.

Each returns plain rows (dicts) that tracking and reporting read; nothing here knows Snakemake.
"""
from __future__ import annotations

import math

import torch

from . import samplers
from .experiment import Dataset
from .likelihood import ddpm_vlb, dequantized_bpd, ode_nll
from .metrics import mmd_rbf, sliced_wasserstein
from .metrics.toy import finite_only
from .models import ScoreModel
from .train import device_name, peak_memory_mb


def sample_quality(data: Dataset, x: torch.Tensor, ev: dict, cache_root, seed: int) -> dict:
    """FID / IS / KID against the test split (images) or SW / MMD / log-density / mode weights (toys)."""
    x, n_bad = finite_only(x)
    row = {"n_nonfinite": n_bad}
    if len(x) < 2:  # the sampler diverged: a result to report (quality NaN), not a crash
        return {**row, "diverged": True}
    if data.images is not None:
        from .metrics.fidelity import fidelity_metrics  # torchvision's model zoo: only image jobs pay for it

        fid = fidelity_metrics(data.images.to_uint8(x), data.images.to_uint8(data.test), extractor=ev["extractor"],
                               weights_path=ev.get("extractor_weights"), cache_root=cache_root,
                               kid_subset_size=ev["kid_subset_size"], seed=seed)
        return {**row, **fid}
    ref = data.test[: len(x)]
    row.update(sw=sliced_wasserstein(x, ref), mmd=mmd_rbf(x, ref))
    if len(data.test) >= 2 * len(x):  # the sampling floor: two held-out sets of the same size
        other = data.test[len(x): 2 * len(x)]
        row.update(sw_floor=sliced_wasserstein(other, ref), mmd_floor=mmd_rbf(other, ref))
    if getattr(data.toy, "has_density", False):
        row["mean_log_density"] = float(data.toy.log_prob(x).mean())
    if hasattr(data.toy, "mode_weights"):
        row["mode_weights"] = [round(float(w), 4) for w in data.toy.mode_weights(x)]
        row["mode_weight_error"] = float((data.toy.mode_weights(x) - data.toy.weights).abs().max())
    return row


def evaluate_sampler(model: ScoreModel, data: Dataset, sampler: str, steps_grid: list, options: dict, ev: dict,
                     cache_root, device) -> tuple[list[dict], torch.Tensor]:
    """Rows for every (steps, seed set), and the first seed set's samples at the last step count of the grid."""
    rows, grid = [], None
    n = int(ev["n_samples"])
    for steps in steps_grid:
        for seed in range(int(ev["seed_sets"])):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            r = samplers.sample_batched(sampler, model.score_fn(), model.sde, n, model.shape, seed=seed, steps=steps,
                                        batch_size=int(ev.get("batch_size", 500)), device=device,
                                        family=model.family.name, **options)
            row = {"sampler": sampler, "steps": steps, "seed_set": seed, "n": n, "nfe": r.info["nfe_per_batch"],
                   "seconds": r.seconds, "seconds_per_sample": r.seconds / n, "peak_memory_mb": peak_memory_mb(device),
                   "device": device_name(device), **{f"opt_{k}": v for k, v in options.items()}}
            row.update(sample_quality(data, r.x, ev, cache_root, seed))
            rows.append(row)
            grid = r.x if seed == 0 else grid
    return rows, grid


def evaluate_likelihood(model: ScoreModel, data: Dataset, lik: dict, device) -> dict:
    """Test-set ODE NLL (bpd with dequantization repeats for images, nats for toys); DDPM's bound apart."""
    n = int(lik.get("n_examples", 64))
    if model.sde is None:
        return {"n_examples": 0, "note": "not applicable: a single-noise-level score model defines no density"}
    kw = dict(solver=lik.get("solver", "rk45"), eps=float(lik.get("eps", 1e-5)), device=device)
    out = {"n_examples": n}
    if data.images is not None:
        x_int = data.images.test[:n]
        mean, std, nfe = dequantized_bpd(model.score_fn(), model.sde, data.images, x_int,
                                         repeats=int(lik.get("repeats", 5)), **kw)
        out.update(bpd=mean, bpd_std=std, bpd_nfe=nfe, bpd_repeats=int(lik.get("repeats", 5)))
        if model.family.name == "ddpm":
            y = data.images.to_model(x_int).to(device)
            vlb = ddpm_vlb(model.score_fn(), model.sde, y, levels=data.images.levels, scale=data.images.scale)
            out["vlb_bpd"] = float(vlb.mean()) / (y[0].numel() * math.log(2))  # a bound on discrete data: no offset
        return out
    x = data.test[:n].to(device)
    kw.pop("device")
    res = ode_nll(model.score_fn(), model.sde, x, **kw)
    out.update(nll=float(res.nll.mean()), nll_std=float(res.nll.std()), nll_nfe=res.nfe)
    if getattr(data.toy, "has_density", False):
        out["true_nll"] = float(-data.toy.log_prob(data.test[:n]).mean())
    return out


def setup_job(threads: int, log_path=None) -> None:
    """Per-job settings for workflow jobs: torch threads = the job's cores; warnings and progress go to its log."""
    import sys
    from pathlib import Path

    torch.set_num_threads(max(int(threads), 1))
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
