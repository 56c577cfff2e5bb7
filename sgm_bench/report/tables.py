"""Comparison tables as CSV, Markdown and LaTeX, the papers' published numbers beside ours."""
from __future__ import annotations

from html import escape
from pathlib import Path

import pandas as pd

from ..metrics.registry import METRICS, ranked_by
from .stats import half_width, tied

class Notes:
    """Long reasons as notes: the cell reads `not applicable (a)`, the caption says what (a) is, once per reason (a
    reason in every cell padded each Markdown row of a table to hundreds of characters)."""

    def __init__(self):
        self.text = {}

    def mark(self, why: str) -> str:
        key = next((k for k, v in self.text.items() if v == why), None)
        if key is None:
            key = chr(ord("a") + len(self.text))
            self.text[key] = why
        return f"({key})"

    def caption(self) -> str:
        return " ".join(f"({k}) {v}." for k, v in self.text.items())


def with_notes(caption: str, df: pd.DataFrame) -> str:
    """A table's caption followed by its notes (`df.attrs['notes']`), if any."""
    notes = df.attrs.get("notes", "")
    return f"{caption}. {notes}" if notes else caption


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


def mean_ci(values: pd.Series) -> str:
    """'mean ± h' over seed sets, h the half-width of the mean's 95 % t interval; the mean alone for one seed set or
    where they agree exactly (a fixed NFE)."""
    v = values.dropna()
    if v.empty:
        return ""
    h = half_width(v)
    return f"{fmt(v.mean())} ± {fmt(h)}" if h > 0 else fmt(v.mean())


def across_trainings(values: list) -> str:
    """'mean ± h over k trainings (v1, v2, ...)': one cell's spread across training runs of a model (`replicates`),
    h the half-width of the 95 % t interval over the runs' own values."""
    v = pd.Series(values, dtype=float)
    return f"{mean_ci(v)} over {len(v)} trainings ({', '.join(map(fmt, v))})"


def by_seed_set(g: pd.DataFrame, metric: str) -> pd.Series:
    """One setting's values of `metric` indexed by seed set (what pairs two settings of a model); rows of one seed
    set measured twice (two detectors) are averaged, so that a pairing never multiplies rows."""
    if "seed_set" not in g:
        return g[metric].reset_index(drop=True)
    return g.groupby("seed_set")[metric].mean()


def _ok(g: pd.DataFrame) -> bool:
    """Every seed set of the setting finished with finite samples."""
    return "status" not in g or bool((g["status"].fillna("ok") == "ok").all())


def _rankable(g: pd.DataFrame, metric: str) -> bool:
    """A setting that may be ranked: every seed set finite, a value of `metric`, one FID detector (two detectors'
    FIDs are different numbers)."""
    return (metric in g and _ok(g) and bool(g[metric].notna().any())
            and ("extractor" not in g or g["extractor"].nunique() <= 1))


def versus_best(groups: dict, metric: str) -> dict:
    """For settings {key: rows} of one model: 'best' for the lowest mean among whole settings, 'tied' where the 95 %
    interval of the paired difference to it holds 0, 'worse' where it does not, 'undecided' under two shared seed
    sets; settings with a non-finite seed set or no value get ''."""
    means = {k: g[metric].mean() for k, g in groups.items() if _rankable(g, metric)}
    if not means:
        return {}
    best = min(means, key=means.get)
    ref = by_seed_set(groups[best], metric)
    out = {}
    for k in means:
        t = tied(by_seed_set(groups[k], metric), ref)
        out[k] = "best" if k == best else {True: "tied", False: "worse", None: "undecided"}[t]
    return out


def floor_text(floor: dict | None) -> str:
    """'mean [5 %, 95 %] over k draws at n'."""
    if not floor:
        return ""
    return f"{fmt(floor['mean'])} [{fmt(floor['p05'])}, {fmt(floor['p95'])}] ({floor['draws']} draws)"


def _cell(g: pd.DataFrame, metric: str) -> str:
    """What one (sampler, steps) cell is: mean ± 95 % interval over seed sets, or diverged / partial with the counts."""
    n, bad = int(g["n"].sum()), int(g["n_nonfinite"].fillna(0).sum()) if "n_nonfinite" in g else 0
    status = g["status"].fillna("ok") if "status" in g else pd.Series(["ok"] * len(g))
    if status.str.startswith("diverged").any():
        return f"diverged ({bad}/{n} non-finite)"
    if "extractor" in g and g["extractor"].nunique() > 1:  # FIDs of different detectors do not average
        return "not averaged: rows of detectors " + ", ".join(sorted(g["extractor"].dropna().unique()))
    text = mean_ci(g[metric]) if metric in g else ""
    if not text and f"{metric}_note" in g and g[f"{metric}_note"].notna().any():  # e.g. no IS from a detector
        return str(g[f"{metric}_note"].dropna().iloc[0])
    if "comparable" in g and (g["comparable"] == False).any():  # noqa: E712 - a column of bools and NaN
        text += " (n ≤ feature dim: not comparable)"
    return f"{text} (partial: {bad}/{n} non-finite)" if bad else (text or "NaN (unlabelled: a bug)")


def leaderboard(rows: pd.DataFrame, metric: str, label: str, not_run=(), not_applicable=()) -> pd.DataFrame:
    """One row per (sampler, steps), sorted by quality: NFE and the metric as mean ± 95 % interval over seed sets,
    whether it is tied with the best (paired differences over the shared seed sets), seconds per sample; an adaptive
    solver is one row per setting; `not run` and `not applicable` rows say why."""
    out = []
    groups = dict(list(rows.groupby(["variant", rows["steps"].fillna(-1)], sort=False)))
    vs = versus_best(groups, metric)
    for (variant, steps), g in groups.items():
        out.append({"sampler": variant, "steps": "adaptive" if steps == -1 else str(int(steps)),
                    "NFE": mean_ci(g["nfe"]), label: _cell(g, metric), "vs best": vs.get((variant, steps), ""),
                    "s / sample": fmt(g["seconds_per_sample"].mean()),
                    **{m.label: mean_ci(g[n]) for n, m in METRICS.items()  # beside the ranking one (toys: modes)
                       if m.column and n in g and g[n].notna().any()},
                    **({"note": g["note"].dropna().iloc[0]} if "note" in g and g["note"].notna().any() else {}),
                    "_key": g[metric].mean() if metric in g and g[metric].notna().any() else float("inf")})
    out.sort(key=lambda r: r["_key"])
    notes = Notes()
    out += [{"sampler": s, "steps": "paper protocol", label: f"not run {notes.mark(why)}", "_key": 0} for s, why in not_run]
    out += [{"sampler": s, "steps": "—", label: f"not applicable {notes.mark(why)}", "_key": 0}
            for s, why in not_applicable]
    t = pd.DataFrame(out).drop(columns="_key").fillna("").set_index(["sampler", "steps"])
    t.attrs["notes"] = notes.caption()
    return t


def numbers_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Every (model, variant, steps) cell as numbers for analysis (the leaderboards' cells are text): seed-set count,
    mean, std (ddof 1) and the 95 % t interval [lower, upper] of the mean of each quality and cost measure, the
    status of its worst seed set, and (by the model's quality metric) whether it is tied with the model's best."""
    measures = [m for m in [*METRICS.names_in_order(), "nfe", "seconds_per_sample"] if m in rows and rows[m].notna().any()]
    out = []
    vs = {}
    for model, g in rows.groupby("model", sort=False):
        metric = ranked_by(g)
        vs.update({(model, *k): v for k, v in
                   versus_best(dict(list(g.groupby(["variant", g["steps"].fillna(-1)], sort=False))), metric).items()})
    for (model, variant, steps), g in rows.groupby(["model", "variant", rows["steps"].fillna(-1)], sort=False):
        status = g["status"].fillna("ok") if "status" in g else pd.Series(["ok"])
        row = {"model": model, "variant": variant, "sampler": g["sampler"].iloc[0] if "sampler" in g else variant,
               "steps": None if steps == -1 else int(steps), "seed_sets": len(g),
               "status": next((x for x in status if x.startswith("diverged")), next((x for x in status if x != "ok"), "ok"))}
        for m in measures:
            h = half_width(g[m])
            row.update({f"{m}_mean": g[m].mean(), f"{m}_std": g[m].std(ddof=1), f"{m}_lower": g[m].mean() - h,
                        f"{m}_upper": g[m].mean() + h})
        row["vs_best"] = vs.get((model, variant, steps), "")
        out.append(row)
    return pd.DataFrame(out).astype({"steps": "Int64"})  # adaptive solvers: no step count


BUDGETS = (10, 20, 50, 100, 1000)  # NFE budgets of the best-sampler table


def budget_table(rows: pd.DataFrame, budgets=BUDGETS) -> pd.DataFrame:
    """For each model and NFE budget, the best setting (variant, steps) whose mean NFE fits, by its mean FID or SW2
    with its 95 % interval, and the settings tied with it (the 95 % interval of their paired difference over the
    shared seed sets holds 0): which sampler to use at a given cost. A setting with a non-finite seed set never
    competes; a budget nothing fits says so."""
    out = []
    for model, g in rows.groupby("model", sort=False):
        metric = ranked_by(g)
        groups = {k: c for k, c in g.groupby(["variant", g["steps"].fillna(-1)], sort=False) if _rankable(c, metric)}
        row = {"model": model, "metric": METRICS[metric].label}
        for b in budgets:
            fit = sorted((k for k, c in groups.items() if c["nfe"].mean() <= b), key=lambda k: groups[k][metric].mean())
            if not fit:
                row[f"≤ {b} NFE"] = "nothing fits"
                continue
            best = groups[fit[0]]
            ties = [f"{v} {_steps(s)}" for v, s in fit[1:]
                    if tied(by_seed_set(groups[(v, s)], metric), by_seed_set(best, metric))]
            row[f"≤ {b} NFE"] = (f"{fit[0][0]} {_steps(fit[0][1])}: {mean_ci(best[metric])} "
                                 f"(NFE {fmt(best['nfe'].mean())})" + (f"; tied: {', '.join(ties)}" if ties else ""))
        out.append(row)
    return pd.DataFrame(out).set_index(["model", "metric"])


def _steps(s) -> str:
    return "adaptive" if s == -1 else f"{int(s)} steps"


def cost_table(rows: pd.DataFrame) -> pd.DataFrame:
    """NFE, seconds per sample, peak memory and device per (model, sampler or variant, steps), formatted for reading;
    an adaptive solver's steps say so. Peak memory is a column only where it measures the sampler (the GPU's peak,
    reset before each run; CPU rows read `n/a`); on the CPU the process's resident set would measure the whole job, so
    a CPU-only table has no such column and its caption says why."""
    r = rows.assign(steps=rows["steps"].map(lambda s: "adaptive" if s != s or s is None else str(int(s))))
    g = r.groupby(["model", "variant", "steps"], sort=False)
    out = g.agg({"nfe": "mean", "seconds_per_sample": "mean", "peak_memory_mb": "max", "device": "first"})
    cuda = out["device"].astype(str).str.startswith("cuda")
    out["peak_memory_mb"] = [fmt(m) if c else "n/a" for m, c in zip(out["peak_memory_mb"], cuda)]
    if not cuda.any():
        out = out.drop(columns="peak_memory_mb")
    out["nfe"] = out["nfe"].map(lambda v: fmt(v) if v == v else "")
    out["seconds_per_sample"] = out["seconds_per_sample"].map(lambda v: f"{v:.3g}")
    return out.rename(columns={"nfe": "NFE (mean)", "seconds_per_sample": "s / sample", "peak_memory_mb": "peak GPU memory (MB)"})


def likelihood_table(lik: pd.DataFrame) -> pd.DataFrame:
    """ODE bpd (or toy NLL) and DDPM's bound, in separate columns: a bound is never mixed with an exact value; a
    model whose likelihood is not defined says so."""
    cols = {"bpd": "ODE bpd", "bpd_se": "± s.e. (images)", "bpd_nfe": "NFE per solve", "vlb_bpd": "VLB bpd (bound, ≥)",
            "nll": "ODE NLL (nats)", "nll_se": "± s.e. (examples)", "true_nll": "true NLL (nats)", "nll_nfe": "NFE"}
    present = [c for c in cols if c in lik.columns and lik[c].notna().any()]
    t = lik.set_index("model")[present].map(lambda v: fmt(v) if isinstance(v, float) and v == v else v)
    notes = Notes()
    if "vlb_bpd" in present:  # DDPM's bound exists for the DDPM chain only
        t["vlb_bpd"] = [v if isinstance(v, str) else "n/a" for v in t["vlb_bpd"]]
    if "status" in lik:
        status = lik.set_index("model")["status"].fillna("ok")
        for m in status[status != "ok"].index:
            keep = t.loc[m, "vlb_bpd"] if status[m] == "diverged" and "vlb_bpd" in t else None  # the bound stands
            t.loc[m] = ""
            t.loc[m, t.columns[0]] = f"{status[m]} " + notes.mark(str(lik.set_index("model").loc[m, "note"]))
            if keep is not None:
                t.loc[m, "vlb_bpd"] = keep
    t = t.rename(columns=cols)
    t.attrs["notes"] = notes.caption() + (" VLB n/a: DDPM's bound, DDPM models only." if "vlb_bpd" in present else "")
    return t


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

