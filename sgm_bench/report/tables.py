"""Comparison tables as CSV, Markdown and LaTeX, the papers' published numbers beside ours."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

def write_table(df: pd.DataFrame, stem, caption: str = "") -> list[Path]:
    """stem.csv, stem.md, stem.tex."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(stem.with_suffix(".csv"), index=True)
    stem.with_suffix(".md").write_text((f"{caption}\n\n" if caption else "") + df.to_markdown() + "\n")
    stem.with_suffix(".tex").write_text(df.to_latex(escape=True, caption=caption or None))
    return [stem.with_suffix(s) for s in (".csv", ".md", ".tex")]


def mean_pm_std(values: pd.Series) -> str:
    v = values.dropna()
    if v.empty:
        return ""
    return f"{v.mean():.3g} ± {v.std(ddof=0):.2g}" if len(v) > 1 else f"{v.mean():.3g}"


def sampler_table(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows sampler, columns NFE, cells metric mean ± std over seed sets."""
    r = rows.assign(NFE=rows["nfe"].round().astype(int))
    return r.pivot_table(index="sampler", columns="NFE", values=metric, aggfunc=mean_pm_std).fillna("")


def cost_table(rows: pd.DataFrame) -> pd.DataFrame:
    keep = ["model", "sampler", "steps", "nfe", "seconds_per_sample", "peak_memory_mb", "device"]
    g = rows[keep].groupby(["model", "sampler", "steps"], dropna=False)
    return g.agg({"nfe": "mean", "seconds_per_sample": "mean", "peak_memory_mb": "max", "device": "first"})


def likelihood_table(lik: pd.DataFrame) -> pd.DataFrame:
    """ODE bpd (or toy NLL) and DDPM's bound, in separate columns: a bound is never mixed with an exact value."""
    cols = {"bpd": "ODE bpd", "bpd_std": "± (dequant.)", "bpd_nfe": "NFE", "vlb_bpd": "VLB bpd (bound, ≥)",
            "nll": "ODE NLL (nats)", "nll_std": "± (examples)", "true_nll": "true NLL (nats)", "nll_nfe": "NFE "}
    present = [c for c in cols if c in lik.columns and lik[c].notna().any()]
    return lik.set_index("model")[present].dropna(how="all").rename(columns=cols)


def _published(v):
    if isinstance(v, (int, float)):
        return float(v)
    m = re.match(r"^\s*(?:<=)?\s*([0-9.]+)", str(v))
    return float(m.group(1)) if m else None


def paper_table(table: dict, ours: dict) -> pd.DataFrame:
    """One paper table: each published cell, our number for it (if the configuration measured it), the difference."""
    out = []
    for i, row in enumerate(table["rows"]):
        label = ", ".join(f"{k}={v}" for k, v in row.items() if k not in table.get("columns", []) and not isinstance(v, list))
        cells = table.get("columns") or [k for k in ("fid", "is", "nll") if k in row]
        values = row.get("values") or [row.get(c) for c in cells]
        for col, pub in zip(cells, values):
            mine = ours.get((i, str(col)))
            p = _published(pub)
            out.append({"row": label, "column": str(col), "published": pub, "ours": mine,
                        "difference": None if mine is None or p is None else round(mine - p, 3)})
    return pd.DataFrame(out)
