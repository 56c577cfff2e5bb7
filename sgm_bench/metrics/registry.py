"""METRICS: every sample-quality number, declared once (a ranking metric is lower-is-better). The evaluation computes
the toy ones from their `compute` (torch-fidelity computes the image ones together); the tables, figures and MLflow
read their labels, kinds and roles here.

    @metric("sw", "SW2", ranks=True)
    def sw(data, x, ref): ...      # a toy metric: (dataset, finite samples, reference split) -> float, or None
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..registry import Registry


@dataclass(frozen=True)
class Metric:
    label: str  # as tables, figures and captions print it
    kind: str  # "image": torch-fidelity's, on 8-bit images; "toy": `compute` on toy samples
    ranks: bool = False  # the number a model's samplers are ranked by (FID for images, SW2 for toys)
    floor: bool = True  # also scored on real data (the floor a perfect sampler reaches)
    column: bool = False  # shown in the leaderboards beside the ranking metric
    compute: Callable | None = None  # toy: fn(data, x, ref) -> float, None where it is not defined for the data


METRICS = Registry("metric")


def metric(name: str, label: str, kind: str = "toy", **options) -> Callable:
    """Register the decorated toy metric `fn(data, x, ref)` under `name`."""

    def deco(fn: Callable) -> Callable:
        METRICS.add(name, Metric(label, kind, compute=fn, **options))
        return fn

    return deco


# torch-fidelity computes these three in one pass (metrics.fidelity.fidelity_metrics)
METRICS.add("fid", Metric("FID", "image", ranks=True))
METRICS.add("kid", Metric("KID", "image"))
METRICS.add("is", Metric("IS", "image"))


def of_kind(kind: str, floor: bool = False) -> list[str]:
    """The metrics of a kind (image or toy) in declaration order; `floor`: only those scored on real data too."""
    return [n for n, m in METRICS.items() if m.kind == kind and (m.floor or not floor)]


def ranking_metric(kind: str) -> str:
    """The metric the samplers of an image or a toy model are ranked by (FID, SW2)."""
    return next(n for n in of_kind(kind) if METRICS[n].ranks)


def ranked_by(frame) -> str:
    """The metric a table of rows is ranked by: the first ranking metric with values (FID, else SW2), else the first
    one present."""
    ranking = [n for n, m in METRICS.items() if m.ranks]
    present = [n for n in ranking if n in frame]
    return next((n for n in present if frame[n].notna().any()), present[0] if present else ranking[0])


def toy_metrics(data, x, ref, floor: bool = False) -> dict:
    """Every toy metric defined for this data ({name: value}); `floor`: only those with a floor."""
    out = {}
    for name in of_kind("toy", floor):
        value = METRICS[name].compute(data, x, ref)
        if value is not None:
            out[name] = value
    return out
