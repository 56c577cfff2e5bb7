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


def standard_error(values) -> float:
    """Standard error of the mean, std (ddof 1) / sqrt(n); NaN under 2 finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan


def tied(a: pd.Series, b: pd.Series) -> bool | None:
    """Whether settings a and b (values indexed by seed set) are indistinguishable: the 95 % interval of their mean
    paired difference holds 0. None when they share fewer than 2 seed sets (nothing to decide with)."""
    d = (a - b).dropna()
    if len(d) < 2:
        return None
    return bool(abs(d.mean()) <= half_width(d)) if (d != 0).any() else True
