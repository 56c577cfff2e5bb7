"""Comparison tables as CSV, Markdown and LaTeX, the papers' published numbers beside ours."""
from __future__ import annotations

from html import escape
from pathlib import Path

import pandas as pd

def markdown(df: pd.DataFrame) -> str:
    """A table with its index as ordinary columns (no tuple labels)."""
    flat = df.reset_index() if df.index.name or any(df.index.names) else df
    return flat.to_markdown(index=flat is df)


def write_table(df: pd.DataFrame, stem, caption: str = "") -> list[Path]:
    """stem.csv, stem.md, stem.tex and stem.html (the page the Snakemake report shows)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(stem.with_suffix(".csv"), index=True)
    stem.with_suffix(".md").write_text((f"{caption}\n\n" if caption else "") + markdown(df) + "\n")
    stem.with_suffix(".tex").write_text(df.to_latex(escape=True, caption=caption or None))
    html = df.reset_index().to_html(index=False, border=0, classes="sgm") if df.index.name or any(df.index.names) \
        else df.to_html(index=False, border=0, classes="sgm")
    stem.with_suffix(".html").write_text(f"<!doctype html><meta charset='utf-8'><style>{TABLE_CSS}</style>"
                                         f"<p>{escape(caption)}</p>{html}\n")
    return [stem.with_suffix(s) for s in (".csv", ".md", ".tex", ".html")]


TABLE_CSS = ("body{font:13px sans-serif;margin:12px} table.sgm{border-collapse:collapse} .sgm th,.sgm td{padding:3px 8px;"
             "border-bottom:1px solid #ddd;text-align:left} .sgm th{background:#f3f3f3}")


def fmt(v: float) -> str:
    """A number for reading: 3 significant digits (whole numbers from 100 on), no raw floats."""
    if v != v:
        return "NaN"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def mean_pm_std(values: pd.Series) -> str:
    """'mean ± std' over seed sets; the mean alone where they agree exactly (a fixed NFE)."""
    v = values.dropna()
    if v.empty:
        return ""
    sd = v.std(ddof=0)
    return f"{fmt(v.mean())} ± {fmt(sd)}" if len(v) > 1 and sd > 0 else fmt(v.mean())


def floor_text(floor: dict | None) -> str:
    """'mean [5 %, 95 %] over k draws at n'."""
    if not floor:
        return ""
    return f"{fmt(floor['mean'])} [{fmt(floor['p05'])}, {fmt(floor['p95'])}] ({floor['draws']} draws)"


def _cell(g: pd.DataFrame, metric: str) -> str:
    """What one (sampler, steps) cell is: mean ± std over seed sets, or diverged / partial with the counts."""
    n, bad = int(g["n"].sum()), int(g["n_nonfinite"].fillna(0).sum()) if "n_nonfinite" in g else 0
    status = g["status"].fillna("ok") if "status" in g else pd.Series(["ok"] * len(g))
    if status.str.startswith("diverged").any():
        return f"diverged ({bad}/{n} non-finite)"
    if "extractor" in g and g["extractor"].nunique() > 1:  # FIDs of different detectors do not average
        return "not averaged: rows of detectors " + ", ".join(sorted(g["extractor"].dropna().unique()))
    text = mean_pm_std(g[metric]) if metric in g else ""
    if not text and f"{metric}_note" in g and g[f"{metric}_note"].notna().any():  # e.g. no IS from a detector
        return str(g[f"{metric}_note"].dropna().iloc[0])
    if "comparable" in g and (g["comparable"] == False).any():  # noqa: E712 - a column of bools and NaN
        text += " (n ≤ feature dim: not comparable)"
    return f"{text} (partial: {bad}/{n} non-finite)" if bad else (text or "NaN (unlabelled: a bug)")


def leaderboard(rows: pd.DataFrame, metric: str, label: str, not_run=(), not_applicable=()) -> pd.DataFrame:
    """One row per (sampler, steps), sorted by quality: NFE and the metric as mean ± std over seed sets, seconds per
    sample; an adaptive solver is one row per setting; `not run` and `not applicable` rows say why."""
    out = []
    for (variant, steps), g in rows.groupby(["variant", rows["steps"].fillna(-1)], sort=False):
        out.append({"sampler": variant, "steps": "adaptive" if steps == -1 else str(int(steps)),
                    "NFE": mean_pm_std(g["nfe"]), label: _cell(g, metric),
                    "s / sample": fmt(g["seconds_per_sample"].mean()),
                    **({"mode-weight error": mean_pm_std(g["mode_weight_error"])} if "mode_weight_error" in g
                       and g["mode_weight_error"].notna().any() else {}),
                    "_key": g[metric].mean() if metric in g and g[metric].notna().any() else float("inf")})
    out.sort(key=lambda r: r["_key"])
    out += [{"sampler": s, "steps": "paper protocol", label: f"not run: {why}", "_key": 0} for s, why in not_run]
    out += [{"sampler": s, "steps": "—", label: f"not applicable: {why}", "_key": 0} for s, why in not_applicable]
    return pd.DataFrame(out).drop(columns="_key").fillna("").set_index(["sampler", "steps"])


def numbers_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Every (model, variant, steps) cell as numbers for analysis (the leaderboards' cells are text): seed-set count,
    mean and std (ddof 0, as the tables) of each quality and cost measure, the status of its worst seed set."""
    measures = [m for m in ("fid", "kid", "is", "sw", "mmd", "mode_weight_error", "nfe", "seconds_per_sample")
                if m in rows and rows[m].notna().any()]
    out = []
    for (model, variant, steps), g in rows.groupby(["model", "variant", rows["steps"].fillna(-1)], sort=False):
        status = g["status"].fillna("ok") if "status" in g else pd.Series(["ok"])
        row = {"model": model, "variant": variant, "sampler": g["sampler"].iloc[0] if "sampler" in g else variant,
               "steps": None if steps == -1 else int(steps), "seed_sets": len(g),
               "status": next((x for x in status if x.startswith("diverged")), next((x for x in status if x != "ok"), "ok"))}
        for m in measures:
            row[f"{m}_mean"], row[f"{m}_std"] = g[m].mean(), g[m].std(ddof=0)
        out.append(row)
    return pd.DataFrame(out).astype({"steps": "Int64"})  # adaptive solvers: no step count


BUDGETS = (10, 20, 50, 100, 1000)  # NFE budgets of the best-sampler table


def budget_table(rows: pd.DataFrame, budgets=BUDGETS) -> pd.DataFrame:
    """For each model and NFE budget, the best setting (variant, steps) whose mean NFE fits, by its mean FID or SW2,
    and the settings tied with it (mean ± std intervals over seed sets that overlap the best's): which sampler to use
    at a given cost. Diverged settings never win; a budget nothing fits says so."""
    out = []
    for model, g in rows.groupby("model", sort=False):
        metric = "fid" if "fid" in g and (g["fid"].notna().any() or "sw" not in g) else "sw"
        bad = g["status"].fillna("ok") != "ok" if "status" in g else pd.Series(False, index=g.index)
        whole = ~bad.groupby([g["variant"], g["steps"].fillna(-1)]).transform("any")  # a setting with any non-ok seed set never competes
        ok = g[whole & g[metric].notna()] if metric in g else g.iloc[:0].assign(**{metric: []})
        cells = ok.groupby(["variant", ok["steps"].fillna(-1)], sort=False).agg(
            nfe=("nfe", "mean"), mean=(metric, "mean"), sd=(metric, lambda v: v.std(ddof=0))).dropna(subset=["mean"])
        row = {"model": model, "metric": "FID" if metric == "fid" else "SW2"}
        for b in budgets:
            fit = cells[cells["nfe"] <= b].sort_values("mean")
            if fit.empty:
                row[f"≤ {b} NFE"] = "nothing fits"
                continue
            (v, s), best = fit.index[0], fit.iloc[0]
            tied = [f"{tv} {_steps(ts)}" for (tv, ts), c in fit.iloc[1:].iterrows()
                    if c["mean"] - c["sd"] <= best["mean"] + best["sd"]]
            row[f"≤ {b} NFE"] = (f"{v} {_steps(s)}: {fmt(best['mean'])} ± {fmt(best['sd'])} (NFE {fmt(best['nfe'])})"
                                 + (f"; tied: {', '.join(tied)}" if tied else ""))
        out.append(row)
    return pd.DataFrame(out).set_index(["model", "metric"])


def _steps(s) -> str:
    return "adaptive" if s == -1 else f"{int(s)} steps"


def cost_table(rows: pd.DataFrame) -> pd.DataFrame:
    """NFE, seconds per sample, peak memory and device per (model, sampler or variant, steps), formatted for reading;
    an adaptive solver's steps say so. Peak memory is shown where it measures the sampler (the GPU's peak, reset before
    each run); on the CPU the process's resident set would measure the whole job, so the cell says so instead."""
    r = rows.assign(steps=rows["steps"].map(lambda s: "adaptive" if s != s or s is None else str(int(s))))
    g = r.groupby(["model", "variant", "steps"], sort=False)
    out = g.agg({"nfe": "mean", "seconds_per_sample": "mean", "peak_memory_mb": "max", "device": "first"})
    cuda = out["device"].astype(str).str.startswith("cuda")
    out["peak_memory_mb"] = [fmt(m) if c else "n/a on CPU (no per-sampler measure)" for m, c in zip(out["peak_memory_mb"], cuda)]
    out["nfe"] = out["nfe"].map(lambda v: fmt(v) if v == v else "")
    out["seconds_per_sample"] = out["seconds_per_sample"].map(lambda v: f"{v:.3g}")
    return out.rename(columns={"nfe": "NFE (mean)", "seconds_per_sample": "s / sample", "peak_memory_mb": "peak GPU memory (MB)"})


def likelihood_table(lik: pd.DataFrame) -> pd.DataFrame:
    """ODE bpd (or toy NLL) and DDPM's bound, in separate columns: a bound is never mixed with an exact value; a
    model whose likelihood is not defined says so."""
    cols = {"bpd": "ODE bpd", "bpd_std": "± (dequant.)", "bpd_nfe": "NFE per solve", "vlb_bpd": "VLB bpd (bound, ≥)",
            "nll": "ODE NLL (nats)", "nll_std": "± (examples)", "true_nll": "true NLL (nats)", "nll_nfe": "NFE"}
    present = [c for c in cols if c in lik.columns and lik[c].notna().any()]
    t = lik.set_index("model")[present].map(lambda v: fmt(v) if isinstance(v, float) and v == v else v)
    if "vlb_bpd" in present:  # DDPM's bound exists for the DDPM chain only
        t["vlb_bpd"] = [v if isinstance(v, str) else "n/a: DDPM models only" for v in t["vlb_bpd"]]
    if "status" in lik:
        status = lik.set_index("model")["status"].fillna("ok")
        for m in status[status != "ok"].index:
            keep = t.loc[m, "vlb_bpd"] if status[m] == "diverged" and "vlb_bpd" in t else None  # the bound stands
            t.loc[m] = ""
            t.loc[m, t.columns[0]] = f"{status[m]}: " + str(lik.set_index("model").loc[m, "note"])
            if keep is not None:
                t.loc[m, "vlb_bpd"] = keep
    return t.rename(columns=cols)


METRIC_COLUMNS = ("fid", "is", "nll", "nll_test", "nll_train", "uncond_vp", "uncond_ve", "cond_vp", "cond_ve")


def paper_table(table: dict, ours: dict, dataset: str | None) -> pd.DataFrame:
    """One paper table laid out as the paper prints it: its rows (labelled by its own keys) and, for each of its
    columns, the published number (the paper's own cell format) beside ours on `dataset`. ours: {(row, column):
    cell text}; a cell the configuration does not measure reads `not run`."""
    columns = [str(c) for c in table.get("columns") or
               [k for k in METRIC_COLUMNS if any(k in r for r in table["rows"])]]
    out = []
    for i, row in enumerate(table["rows"]):
        label = {k: v for k, v in row.items() if str(k) not in columns and k not in ("values", "kind")}
        values = dict(zip(columns, row["values"])) if "values" in row else {c: row.get(c) for c in columns}
        line = dict(label)
        for c in columns:
            line[f"{c}: {table.get('dataset', 'paper')} (paper)"] = "–" if values[c] is None else str(values[c])
            line[f"{c}: ours ({dataset or 'n/a'})"] = ours.get((i, c), "not run")
        out.append(line)
    return pd.DataFrame(out)

