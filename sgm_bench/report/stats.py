"""Intervals over seed sets (or examples): the 95 % t interval of a mean, and ties decided by paired differences.

Every sampler of a model draws its initial and step noise from the same per-sample streams of a seed set, so two
settings' values at one seed set are paired: their difference cancels what the seed set shares.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95  # confidence of every interval the tables print


def half_width(values) -> float:
    """Half-width of the 95 % Student-t interval of the mean (sample std with ddof 1); NaN under 2 finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + LEVEL / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))


def tied(a: pd.Series, b: pd.Series) -> bool | None:
    """Whether settings a and b (values indexed by seed set) are indistinguishable: the 95 % interval of their mean
    paired difference holds 0. None when they share fewer than 2 seed sets (nothing to decide with)."""
    d = (a - b).dropna()
    if len(d) < 2:
        return None
    return bool(abs(d.mean()) <= half_width(d)) if (d != 0).any() else True


COST = ("nfe", "seconds", "seconds_per_sample", "peak_memory_mb")


def seed_set_summary(rows: list) -> dict:
    """Seed-set mean of every quality metric (metrics.registry.METRICS), non-finite count and cost, its std (ddof 1)
    as `<name>_std` and the half-width of the mean's 95 % t interval as `<name>_ci95` (both absent for one seed set):
    what a sampler setting's MLflow run records."""
    from ..metrics.registry import METRICS

    df = pd.DataFrame(rows)
    out = {}
    for k in [*METRICS.names_in_order(), "n_nonfinite", *COST]:
        if k in df and pd.api.types.is_numeric_dtype(df[k]) and df[k].notna().any():
            out[k] = float(df[k].mean())
            if df[k].notna().sum() > 1:
                out[f"{k}_std"], out[f"{k}_ci95"] = float(df[k].std(ddof=1)), half_width(df[k])
    out["seed_sets"] = len(df)
    return out


def spread(values) -> dict:
    """A floor's draws as a distribution: mean, 5 % and 95 % quantiles and the number of draws."""
    import torch

    v = torch.tensor([float(a) for a in values], dtype=torch.float64)
    q = torch.quantile(v, torch.tensor([0.05, 0.95], dtype=torch.float64))
    return {"mean": float(v.mean()), "p05": float(q[0]), "p95": float(q[1]), "draws": len(v)}
