"""Benchmark jobs the workflow runs: one sampler of one model over its step grid and seed sets; one model's likelihood.

Each returns plain rows (dicts) that tracking and reporting read; nothing here knows Snakemake.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import torch

from . import samplers
from .errors import SolverError
from .spec import Dataset
from .likelihood import ddpm_vlb, dequantized_bpd, ode_nll
from .metrics.registry import of_kind, toy_metrics
from .metrics.toy import finite_only
from .report.stats import spread
from .models import ScoreModel
from .runtime import device_name, peak_memory_mb
from .samplers.registry import why_not

if TYPE_CHECKING:  # the plan's settings types, for the signatures only
    from .plan import Evaluation, Likelihood


DIVERGED_FRACTION = 0.1  # more non-finite samples than this: the row is `diverged` and reports no quality


def status_of(n_bad: int, n: int) -> str:
    """'ok', 'partial (k/n non-finite)' (quality on the finite ones) or 'diverged (k/n non-finite)'."""
    if n_bad == 0:
        return "ok"
    return f"{'diverged' if n_bad > DIVERGED_FRACTION * n or n - n_bad < 2 else 'partial'} ({n_bad}/{n} non-finite)"


def reference_set(data: Dataset, ev: Evaluation) -> torch.Tensor:
    """The split quality is measured against: evaluation.reference_split (train, the papers' convention, or test)."""
    return data.train if ev.reference_split == "train" else data.test


def sample_quality(data: Dataset, x: torch.Tensor, ev: Evaluation, cache_root, seed: int, weights=None) -> dict:
    """FID / IS / KID against the reference split (images; `weights`: the detector's file) or SW / MMD / log-density /
    mode weights (toys), on the finite samples; non-finite ones are counted in the row's status, never scored
    silently."""
    n = len(x)
    x, n_bad = finite_only(x)
    row = {"n_nonfinite": n_bad, "status": status_of(n_bad, n), "reference_split": ev.reference_split}
    if row["status"].startswith("diverged"):
        return row
    if data.images is not None:
        from .metrics.fidelity import fidelity_metrics  # torchvision's model zoo: only image jobs pay for it

        fid = fidelity_metrics(data.images.to_uint8(x), data.images.to_uint8(reference_set(data, ev)),
                               extractor=ev.extractor, weights_path=weights, cache_root=cache_root,
                               kid_subset_size=min(ev.kid_subset_size, len(x)), seed=seed)
        return {**row, **fid}
    return {**row, **toy_quality(data, x, reference_set(data, ev))}


def toy_quality(data: Dataset, x: torch.Tensor, ref: torch.Tensor, floor: bool = False) -> dict:
    """Every toy metric (metrics.registry.METRICS) of x against n reference points, and the mixture's mode weights;
    `floor`: only the metrics a floor is scored for."""
    row = toy_metrics(data, x, ref, floor)
    if hasattr(data.toy, "mode_weights"):
        row["mode_weights"] = [round(float(w), 4) for w in data.toy.mode_weights(x)]
    return row


def toy_floor(data: Dataset, n: int, ev: Evaluation) -> dict:
    """What a perfect sampler scores: exact samples of the toy (fresh draws) at the evaluated n against the same
    reference, `floor_draws` times: each metric's mean and 5-95 % range."""
    ref = reference_set(data, ev)
    draws = [toy_quality(data, data.toy.sample(n, torch.Generator().manual_seed(10_000 + d)), ref, floor=True)
             for d in range(ev.floor_draws)]
    keys = [k for k in of_kind("toy", floor=True) if k in draws[0]]
    return {"n": n, **{k: spread(d[k] for d in draws) for k in keys}}


def plot_limits(data: Dataset, margin: float = 0.25) -> tuple[float, float]:
    """Shared axes for a toy's sample plots: the training data's range (all coordinates) widened by `margin`."""
    lo, hi = float(data.train.min()), float(data.train.max())
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


def pooled_quality(data: Dataset, xs: list, ev: Evaluation, cache_root, weights=None) -> list[dict]:
    """Image quality of k seed sets' samples scored together (evaluation.pool_seed_sets), one dict per seed set.

    FID is biased by 1/n, so one FID on all k n samples is the better estimate; its uncertainty is a jackknife over
    seed sets. Seed set i's row holds pooled - (k - 1) (leave-i-out - mean of the leave-outs): the rows' mean is the
    pooled value and their 95 % t interval is the delete-one jackknife's (Tukey), so the tables' intervals and their
    paired tie test (every sampler of a model shares the seed sets' noise) read these rows as they read seed sets."""
    k = len(xs)
    finite = [finite_only(x) for x in xs]
    n_all, n_bad = sum(len(x) for x in xs), sum(b for _, b in finite)
    status = status_of(n_bad, n_all)
    if status.startswith("diverged"):  # too few finite samples in all: no quality for any seed set
        return [{"status": f"{status}, pooled", "n_nonfinite": b} for _, b in finite]
    kept = [x for x, _ in finite]
    score = lambda parts: sample_quality(data, torch.cat(parts), ev, cache_root, 0, weights)  # noqa: E731
    pooled = score(kept)
    # each row counts its own seed set's non-finite samples; the pool was scored, so none of them is `diverged`
    own = [{"n_nonfinite": b, "status": status_of(b, len(x)).replace("diverged", "partial", 1)}
           for x, (_, b) in zip(xs, finite)]
    if k == 1:
        return [{**pooled, **own[0]}]
    leave_out = [score(kept[:i] + kept[i + 1:]) for i in range(k)]
    names = [m for m in of_kind("image") if isinstance(pooled.get(m), float)]
    rows = []
    for i in range(k):
        row = {**pooled, "quality_over": f"the {k} seed sets pooled (n = {len(torch.cat(kept))})"}
        for m in names:
            mean_out = sum(lo[m] for lo in leave_out) / k
            row[m] = pooled[m] - (k - 1) * (leave_out[i][m] - mean_out)
            row[f"{m}_leave_out"] = leave_out[i][m]
        row.update(own[i])
        rows.append(row)
    return rows


def evaluate_sampler(model: ScoreModel, data: Dataset, sampler: str, steps_grid: list, options: dict, ev: Evaluation,
                     cache_root, device, n: int | None = None, weights=None) -> tuple[list[dict], dict]:
    """Rows for every (steps, seed set) and the first seed set's samples per step count {steps: x}; image quality per
    seed set, or of the seed sets pooled (evaluation.pool_seed_sets)."""
    rows, grids = [], {}
    n = int(n or ev.n_samples)
    pool = ev.pool_seed_sets and data.images is not None
    for steps in steps_grid:
        note = samplers.caveat(sampler, model.sde, steps, options)  # the same for every seed set
        xs, steps_rows = [], []
        for seed in range(ev.seed_sets):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            started = time.time()
            score = model.score_fn(continuous=samplers.SAMPLERS[sampler].continuous_time)
            r = samplers.sample_batched(sampler, score, model.sde, n, model.shape, seed=seed, steps=steps,
                                        batch_size=ev.batch_size, device=device,
                                        family=model.family.name, **options)
            row = {"sampler": sampler, "steps": steps, "seed_set": seed, "n": n, "nfe": r.info["nfe_per_batch"],
                   "seconds": r.seconds, "seconds_per_sample": r.seconds / n, "peak_memory_mb": peak_memory_mb(device),
                   "device": device_name(device), **{f"opt_{k}": v for k, v in options.items()}}
            if not pool:
                row.update(sample_quality(data, r.x, ev, cache_root, seed, weights))
            row.update(**({"note": note} if note else {}), started=started, finished=time.time())
            steps_rows.append(row)
            xs.append(r.x)
            if seed == 0:
                grids[steps] = r.x
        if pool:
            for row, quality in zip(steps_rows, pooled_quality(data, xs, ev, cache_root, weights)):
                row.update(quality, reference_split=ev.reference_split, **({"note": note} if note else {}))
        rows += steps_rows
    return rows, grids


def evaluate_likelihood(model: ScoreModel, data: Dataset, lik: Likelihood, device) -> dict:
    """Test-set ODE NLL (bpd with dequantization repeats for images, nats for toys); DDPM's bound apart."""
    n = lik.n_examples
    if model.sde is None:
        return {"n_examples": 0, "status": "not applicable",
                "note": "a single-noise-level score model defines no density"}
    why = why_not("ode", model.family.name)
    if why:  # the likelihood integrates the probability-flow ODE: where that sampler does not apply, neither does it
        return {"n_examples": 0, "status": "not applicable", "note": why}
    kw = dict(solver=lik.solver, eps=float(lik.eps), device=device, rtol=float(lik.rtol), atol=float(lik.atol))
    out = {"n_examples": n, "status": "ok"}
    if data.images is not None:
        x_int = data.images.test[:n]
        try:
            mean, se, nfe = dequantized_bpd(model.score_fn(continuous=True), model.sde, data.images, x_int,
                                             repeats=lik.repeats, **kw)
            out.update(bpd=mean, bpd_se=se, bpd_nfe=nfe, bpd_repeats=lik.repeats)
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
