"""Benchmark jobs the workflow runs: one sampler of one model over its step grid and seed sets; one model's likelihood.

Each returns plain rows (dicts) that tracking and reporting read; nothing here knows Snakemake.
"""
from __future__ import annotations

import functools
import math
import time

import torch

from . import samplers
from .errors import SolverError
from .experiment import Dataset
from .likelihood import ddpm_vlb, dequantized_bpd, ode_nll
from .metrics import mmd_rbf
from .metrics.toy import SlicedReference, finite_only
from .models import ScoreModel
from .runtime import configure
from .samplers.registry import why_not
from .train import device_name, peak_memory_mb


DIVERGED_FRACTION = 0.1  # more non-finite samples than this: the row is `diverged` and reports no quality


def status_of(n_bad: int, n: int) -> str:
    """'ok', 'partial (k/n non-finite)' (quality on the finite ones) or 'diverged (k/n non-finite)'."""
    if n_bad == 0:
        return "ok"
    return f"{'diverged' if n_bad > DIVERGED_FRACTION * n or n - n_bad < 2 else 'partial'} ({n_bad}/{n} non-finite)"


def reference_set(data: Dataset, ev: dict) -> torch.Tensor:
    """The split quality is measured against: evaluation.reference_split (train, the papers' convention, or test)."""
    return data.train if ev.get("reference_split", "train") == "train" else data.test


def sample_quality(data: Dataset, x: torch.Tensor, ev: dict, cache_root, seed: int) -> dict:
    """FID / IS / KID against the reference split (images) or SW / MMD / log-density / mode weights (toys), on the
    finite samples; non-finite ones are counted in the row's status, never scored silently."""
    n = len(x)
    x, n_bad = finite_only(x)
    row = {"n_nonfinite": n_bad, "status": status_of(n_bad, n), "reference_split": ev.get("reference_split", "train")}
    if row["status"].startswith("diverged"):
        return row
    if data.images is not None:
        from .metrics.fidelity import fidelity_metrics  # torchvision's model zoo: only image jobs pay for it

        fid = fidelity_metrics(data.images.to_uint8(x), data.images.to_uint8(reference_set(data, ev)),
                               extractor=ev["extractor"], weights_path=ev.get("extractor_weights"),
                               cache_root=cache_root, kid_subset_size=min(ev["kid_subset_size"], len(x)), seed=seed)
        return {**row, **fid}
    return {**row, **toy_quality(data, x, reference_set(data, ev))}


def toy_quality(data: Dataset, x: torch.Tensor, ref: torch.Tensor, mmd: bool = True) -> dict:
    """SW2 (and MMD) to n reference points, and what the toy's exact law tells: log-density, mode weights."""
    row = {"sw": _sliced_reference(ref, ref._version)(x), **({"mmd": mmd_rbf(x, ref[: len(x)])} if mmd else {})}
    if getattr(data.toy, "has_density", False):
        row["mean_log_density"] = float(data.toy.log_prob(x).mean())
    if hasattr(data.toy, "mode_weights"):
        row["mode_weights"] = [round(float(w), 4) for w in data.toy.mode_weights(x)]
        row["mode_weight_error"] = float((data.toy.mode_weights(x) - data.toy.weights).abs().max())
    return row


@functools.lru_cache(maxsize=2)
def _sliced_reference(ref: torch.Tensor, version: int) -> SlicedReference:
    """The reference split's sorted projections, made once per job (keyed by the tensor and its in-place version)."""
    return SlicedReference(ref)


def spread(values) -> dict:
    """mean, 5 % and 95 % quantiles and the number of draws of a floor."""
    v = torch.tensor([float(a) for a in values], dtype=torch.float64)
    q = torch.quantile(v, torch.tensor([0.05, 0.95], dtype=torch.float64))
    return {"mean": float(v.mean()), "p05": float(q[0]), "p95": float(q[1]), "draws": len(v)}


def toy_floor(data: Dataset, n: int, ev: dict) -> dict:
    """What a perfect sampler scores: exact samples of the toy (fresh draws) at the evaluated n against the same
    reference, `floor_draws` times: each metric's mean and 5-95 % range."""
    ref = reference_set(data, ev)
    draws = [toy_quality(data, data.toy.sample(n, torch.Generator().manual_seed(10_000 + d)), ref, mmd=False)
             for d in range(int(ev.get("floor_draws", 20)))]
    keys = [k for k in ("sw", "mode_weight_error", "mean_log_density") if k in draws[0]]
    return {"n": n, **{k: spread(d[k] for d in draws) for k in keys}}


def grid_name(variant: str, steps) -> str:
    """The sample grid's file stem of one (sampler variant, step count): `ddim_10`, `ode_adaptive`."""
    return f"{variant}_{steps if steps is not None else 'adaptive'}"


def plot_limits(data: Dataset, margin: float = 0.25) -> tuple[float, float]:
    """Shared axes for a toy's sample plots: the training data's range (all coordinates) widened by `margin`."""
    lo, hi = float(data.train.min()), float(data.train.max())
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


def evaluate_sampler(model: ScoreModel, data: Dataset, sampler: str, steps_grid: list, options: dict, ev: dict,
                     cache_root, device, n: int | None = None) -> tuple[list[dict], dict]:
    """Rows for every (steps, seed set) and the first seed set's samples per step count {steps: x}."""
    rows, grids = [], {}
    n = int(n or ev["n_samples"])
    for steps in steps_grid:
        note = samplers.caveat(sampler, model.sde, steps, options)  # the same for every seed set
        for seed in range(int(ev["seed_sets"])):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            started = time.time()
            score = model.score_fn(continuous=samplers.SAMPLERS[sampler].continuous_time)
            r = samplers.sample_batched(sampler, score, model.sde, n, model.shape, seed=seed, steps=steps,
                                        batch_size=int(ev.get("batch_size", 500)), device=device,
                                        family=model.family.name, **options)
            row = {"sampler": sampler, "steps": steps, "seed_set": seed, "n": n, "nfe": r.info["nfe_per_batch"],
                   "seconds": r.seconds, "seconds_per_sample": r.seconds / n, "peak_memory_mb": peak_memory_mb(device),
                   "device": device_name(device), **{f"opt_{k}": v for k, v in options.items()}}
            row.update(sample_quality(data, r.x, ev, cache_root, seed), **({"note": note} if note else {}))
            row.update(started=started, finished=time.time())
            rows.append(row)
            if seed == 0:
                grids[steps] = r.x
    return rows, grids


def evaluate_likelihood(model: ScoreModel, data: Dataset, lik: dict, device) -> dict:
    """Test-set ODE NLL (bpd with dequantization repeats for images, nats for toys); DDPM's bound apart."""
    n = int(lik.get("n_examples", 64))
    if model.sde is None:
        return {"n_examples": 0, "status": "not applicable",
                "note": "a single-noise-level score model defines no density"}
    why = why_not("ode", model.family.name)
    if why:  # the likelihood integrates the probability-flow ODE: where that sampler does not apply, neither does it
        return {"n_examples": 0, "status": "not applicable", "note": why}
    kw = dict(solver=lik.get("solver", "rk45"), eps=float(lik.get("eps", 1e-5)), device=device,
              rtol=float(lik.get("rtol", 1e-5)), atol=float(lik.get("atol", 1e-5)))  # score_sde's tolerances
    out = {"n_examples": n, "status": "ok"}
    if data.images is not None:
        x_int = data.images.test[:n]
        try:
            mean, se, nfe = dequantized_bpd(model.score_fn(continuous=True), model.sde, data.images, x_int,
                                             repeats=int(lik.get("repeats", 5)), **kw)
            out.update(bpd=mean, bpd_se=se, bpd_nfe=nfe, bpd_repeats=int(lik.get("repeats", 5)))
        except SolverError as e:  # the model's probability-flow ODE is too stiff to integrate: say so in its cell
            out.update(status="diverged", note=f"the probability-flow ODE could not be integrated ({e})")
        if model.family.name == "ddpm":
            y = data.images.to_model(x_int).to(device)
            vlb = ddpm_vlb(model.score_fn(), model.sde, y, levels=data.images.levels, scale=data.images.scale)
            out["vlb_bpd"] = float(vlb.mean()) / (y[0].numel() * math.log(2))  # a bound on discrete data: no offset
        return out
    x = data.test[:n].to(device)
    kw.pop("device")
    try:
        res = ode_nll(model.score_fn(continuous=True), model.sde, x, **kw)
        out.update(nll=float(res.nll.mean()), nll_se=float(res.nll.std() / math.sqrt(len(res.nll))), nll_nfe=res.nfe)
    except SolverError as e:
        out.update(status="diverged", note=f"the probability-flow ODE could not be integrated ({e})")
    if getattr(data.toy, "has_density", False):
        out["true_nll"] = float(-data.toy.log_prob(data.test[:n]).mean())
    return out


def setup_job(threads: int, log_path=None, job=None) -> None:
    """Per-job settings for workflow jobs: torch threads = the job's cores and the allocator (runtime.configure);
    warnings and progress go to its log, which opens with what the job is (rule, wildcards, threads, its settings) and
    closes with its wall-clock."""
    import atexit
    import sys
    from pathlib import Path

    configure(threads)
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    if job is not None:
        start = time.time()
        wildcards = ", ".join(f"{k}={v}" for k, v in job.wildcards.items())
        print(f"sgm-bench: {time.strftime('%Y-%m-%d %H:%M:%S')} rule {job.rule} ({wildcards or 'no wildcards'}), "
              f"{threads} thread(s), torch {torch.__version__}", file=sys.stderr)
        for name, value in (job.params.items() if hasattr(job, "params") else []):
            print(f"sgm-bench: {name} {value}", file=sys.stderr)
        atexit.register(lambda: print(f"sgm-bench: done in {time.time() - start:.1f} s", file=sys.stderr))
