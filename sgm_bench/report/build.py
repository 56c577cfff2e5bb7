"""results/<config>/: tables and figures from the metric files the workflow wrote."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from ..metrics.registry import METRICS, ranked_by, ranking_metric  # noqa: E402
from . import plots, tables  # noqa: E402


def paper_tables() -> dict:
    """The published numbers shipped with the package (a copy of the brief's paper_tables.yaml)."""
    return yaml.safe_load(resources.files("sgm_bench").joinpath("reference", "paper_tables.yaml").read_text())


LOSS_NAMES = {"smld": "NCSN: denoising score matching per level", "dsm": "SDE: denoising score matching in t",
              "ddpm": "DDPM: L_{objective}", "score_matching": "single level: score matching ({objective})"}


def objective_of(spec: dict) -> str:
    """A model's training objective in words, for faceting its loss curve."""
    from ..models import FAMILIES

    fam = FAMILIES[spec["model"]["family"]]
    return LOSS_NAMES.get(fam.loss, fam.loss).format(**{"objective": "", **fam.loss_defaults, **(spec.get("loss") or {})})


def load_rows(metric_files) -> pd.DataFrame:
    """Every metrics file's rows, with the columns the tables and figures read (see load_rows_of)."""
    return load_rows_of([r for f in metric_files for r in json.loads(Path(f).read_text())["rows"]])


def load_rows_of(rows: list) -> pd.DataFrame:
    """Metric rows as a frame with `diverged`, `quality` (FID or SW2) and `quality_metric` (which, and its detector)."""
    df = pd.DataFrame(rows)
    df["diverged"] = df["status"].fillna("ok").str.startswith("diverged") if "status" in df else False
    ranking = [n for n, m in METRICS.items() if m.ranks and n in df]  # FID (images), SW2 (toys)
    df["quality"] = df[ranking].bfill(axis=1).iloc[:, 0] if ranking else None
    toy, image = (METRICS[ranking_metric(k)].label for k in ("toy", "image"))
    df["quality_metric"] = [f"{image} ({e})" if pd.notna(e) else toy for e in df.get("extractor", [None] * len(df))]
    return df


def detector_of(rows: pd.DataFrame) -> pd.Series:
    """Each row's FID detector ('' for toys); a row without one (diverged: nothing was scored) takes its model's."""
    if "extractor" not in rows:
        return pd.Series("", index=rows.index)
    return rows["extractor"].fillna(rows.groupby("model")["extractor"].transform("first")).fillna("")


LIKELIHOOD_METRICS = {"bpd": "bpd_se", "nll": "nll_se", "vlb_bpd": None}  # value -> its standard error


def _likelihood_value(lik: pd.DataFrame, model: str, metric: str):
    """(value, its standard error or 0, status) of one model's likelihood metric; value None where it has none."""
    hit = lik[lik["model"] == model] if "model" in lik else lik.iloc[:0]
    if not len(hit):
        return None, 0.0, None
    status = str(hit["status"].iloc[0]) if "status" in hit else "ok"
    if metric not in hit or hit[metric].isna().all():
        return None, 0.0, status
    std = LIKELIHOOD_METRICS[metric]
    return float(hit[metric].iloc[0]), float(hit[std].iloc[0]) if std and std in hit else 0.0, status


def _sampler_rows(rows: pd.DataFrame, model: str, c: dict) -> pd.DataFrame:
    hit = rows[(rows["model"] == model) & (rows["variant"] == c["sampler"])]
    return hit[hit["steps"] == c["steps"]] if c.get("steps") is not None else hit


def ours_for_paper(rows: pd.DataFrame, cells: list, lik: pd.DataFrame, trainings: dict | None = None) -> dict:
    """{table: {(row index, column): cell text}} and {table: dataset} from the configuration's paper_cells mapping.

    A cell {table, row, column, model, sampler (variant), steps, metric} is filled by that model's rows (the mean ±
    95 % interval over seed sets) or, for bpd / nll / vlb_bpd, by its likelihood (± standard error over images). A
    model trained more than once (`trainings`: model -> its runs) shows the spread across its trainings instead."""
    out, datasets = {}, {}
    for c in cells:
        metric = c.get("metric", ranking_metric("image"))
        runs = (trainings or {}).get(c["model"], [c["model"]])
        if metric in LIKELIHOOD_METRICS:
            v, sd, status = _likelihood_value(lik, c["model"], metric)
            if status is None or (v is None and status in ("ok", "nan")):
                continue
            if v is None:
                text = f"{status} (see the likelihood table)"
            else:
                text = (f"≤ {tables.fmt(v)}" if metric == "vlb_bpd" else
                        f"{tables.fmt(v)} ± {tables.fmt(sd)} s.e." if sd == sd and sd else tables.fmt(v))
                values = [_likelihood_value(lik, m, metric)[0] for m in runs]
                if len(runs) > 1 and None not in values:
                    text = ("≤ " if metric == "vlb_bpd" else "") + tables.across_trainings(values)
            dataset = lik.loc[lik["model"] == c["model"], "dataset"].iloc[0]
        else:
            hit = _sampler_rows(rows, c["model"], c)
            if not len(hit):
                continue
            text = tables._cell(hit, metric)
            per_run = [_sampler_rows(rows, m, c) for m in runs]
            if len(runs) > 1 and all(len(h) and metric in h and h[metric].notna().all() for h in per_run):
                text = tables.across_trainings([h[metric].mean() for h in per_run])
            dataset = hit["dataset"].iloc[0]
        out.setdefault(c["table"], {})[(int(c["row"]), str(c["column"]))] = text
        datasets.setdefault(c["table"], set()).add(dataset)
    return out, {t: ", ".join(sorted(d)) for t, d in datasets.items()}


def _n_cols(pt: pd.DataFrame) -> int:
    return sum(1 for c in pt.columns if c.endswith(" (paper)"))


def guidance_rows(exps) -> pd.DataFrame:
    """One row per (experiment, w) from the experiments that report accuracy[w=...] and per_class_fid_mean[w=...]."""
    rows = [{"experiment": e["experiment"], "w": float(k[len("accuracy[w="):-1]), "accuracy": v,
             "per-class FID": e.get(f"per_class_fid_mean[w={k[len('accuracy[w='):-1]}]"),
             "floor p05": e.get("per_class_fid_floor_p05"), "floor p95": e.get("per_class_fid_floor_p95")}
            for e in exps for k, v in e.items() if k.startswith("accuracy[w=")]
    return pd.DataFrame(rows)


PAPERS_N = 50_000  # the samples each paper here scores FID / IS on (EDM: the least of three such FIDs)


def sample_sizes(table: str, paper_cells, rows: pd.DataFrame) -> list[str]:
    """'models: FID / IS / KID of ..., not of 50 000 samples' for the models whose sampler cells fill this table with
    fewer samples than the papers scored: FID is biased upwards by about 1/n, so such a value is not the paper's
    protocol even on the paper's model."""
    models = dict.fromkeys(c["model"] for c in paper_cells if c["table"] == table
                           and c.get("metric", ranking_metric("image")) not in LIKELIHOOD_METRICS)
    how = {}
    for m in models:
        g = rows[rows["model"] == m] if "model" in rows else rows.iloc[:0]
        pooled = g["quality_over"].dropna() if "quality_over" in g else ()
        n = g["n_generated"].max() if len(pooled) else g["n"].max() if len(g) else None
        if n == n and n is not None and n < PAPERS_N:  # NaN: no row was scored
            how.setdefault(pooled.iloc[0] if len(pooled) else f"each seed set's {int(n)} samples", []).append(m)
    papers = f"{PAPERS_N:,}".replace(",", " ")
    return [f"{', '.join(ms)}: FID / IS / KID of {h}, not of the papers' {papers} samples" for h, ms in how.items()]


def departures(table: str, paper_cells, deviations: dict, released: dict | None = None,
               rows: pd.DataFrame | None = None) -> str:
    """' Released checkpoints: ...' and ' Departures from the paper: model: what, ...' for the models whose runs
    fill this table's cells, the samples their quality is scored on among them (sample_sizes)."""
    models = dict.fromkeys(c["model"] for c in paper_cells if c["table"] == table)
    out = [f"{m}: {c['format']} {c.get('config') or c['path']}" + (f" ({c['use']} checkpoint)" if c.get("use") else "")
           for m, c in (released or {}).items() if m in models]
    named = [f"{m}: {d}" for m in models for d in deviations.get(m, [])]
    named += sample_sizes(table, paper_cells, rows) if rows is not None else []
    return ((" Released checkpoint (evaluated, not trained here): " + "; ".join(out) + "." if out else "")
            + (" Departures from the paper: " + "; ".join(named) + "." if named else ""))


def replicated(table: str, paper_cells, trainings: dict) -> str:
    """' Trained k times: models; ...': the models whose cells show the spread across training runs."""
    models = [m for m in dict.fromkeys(c["model"] for c in paper_cells if c["table"] == table) if m in trainings]
    return (" Trained more than once (training seed + 0, 1, ...): " + ", ".join(f"{m} ({len(trainings[m])} "
            "trainings)" for m in models) + "; the cells their extra trainings measure read mean ± 95 % t interval "
            "over the trainings (each training's value after it), the others the first training's." if models else "")


def build(results: Path, metric_files, lik_files, curve_files, paper_cells=(), floor_files=(), experiment_files=(),
          not_run=(), not_applicable=(), objectives=None, deviations=None, released=None, trainings=None) -> None:
    results = Path(results)
    toy_floors = {json.loads(Path(f).read_text())["model"]: json.loads(Path(f).read_text()).get("floor")
                  for f in metric_files}
    floors = {}
    for f in floor_files:
        rep = json.loads(Path(f).read_text())
        floors[rep["dataset"]] = rep["floor"]
    T, F = results / "tables", results / "figures"
    rows = load_rows(metric_files)
    lik = pd.DataFrame([json.loads(Path(f).read_text()) for f in lik_files])
    md = ["# sgm-bench results\n"]
    sections = []
    detectors = detector_of(rows)
    for (model, detector), g in rows.groupby(["model", detectors], sort=False):
        metric = ranked_by(g)
        # FIDs of two detectors are different numbers: one table per detector, never averaged into one cell
        stem = model if detectors[rows["model"] == model].nunique() == 1 else f"{model}_{detector}"
        if METRICS[metric].kind == "image":
            fl = floors.get(g["dataset"].iloc[0]) or {}
            fl = fl if fl.get("extractor", detector) == detector else {}  # a floor from another detector is no floor
            floor = (f"; floor ({fl.get('held_out', 'held-out images')} vs the {fl.get('reference_split', '')} split, "
                     f"n = {fl.get('n')}): FID {tables.floor_text(fl.get('fid'))}" if fl.get("fid")
                     else f"; {fl['note']}" if fl.get("note") else "")
            inception = "domain_features" in g and (g["domain_features"] == False).any()  # noqa: E712 - bools and NaN
            domain = "" if inception else " (not Inception)"
            label = (f"{model}: FID on {detector} features{domain} against the "
                     f"{g['reference_split'].iloc[0]} split{floor}")
        else:
            fl = toy_floors.get(model) or {}
            floor = (f"; floor (exact samples, n = {fl['n']}): SW2 {tables.floor_text(fl.get('sw'))}, mode-weight error "
                     f"{tables.floor_text(fl.get('mode_weight_error'))}") if fl else ""
            label = f"{model}: sliced Wasserstein-2 to the {g['reference_split'].iloc[0]} split{floor}"
        pooled = g["quality_over"].dropna() if "quality_over" in g else ()
        label += (f" (one value of {pooled.iloc[0]} ± its 95 % jackknife interval over seed sets" if len(pooled) else
                  " (mean ± 95 % t interval over seed sets") + ("; `vs best`: the 95 % interval of the paired "
                  "difference to the best over shared seed sets holds 0 (tied) or not (worse))")
        if "note" in g and g["note"].notna().any():
            from ..samplers.registry import CAVEATS  # torch: only where a row carries a caveat
            label += "; " + CAVEATS
        nr = [(s, w) for m, s, w in not_run if m == model]
        na = [(s, w) for m, s, w in not_applicable if m == model]
        t = tables.leaderboard(g, metric, METRICS[metric].label, nr, na)
        tables.write_table(t, T / f"samplers_{stem}", tables.with_notes(label, t))
        sections.append(f"## {label}\n\n{t.attrs['notes']}\n\n{tables.markdown(t)}\n" if t.attrs["notes"] else
                        f"## {label}\n\n{tables.markdown(t)}\n")
    (T / "samplers.md").write_text("\n".join(sections))
    images = lik["dataset"].isin(rows.loc[rows["quality_metric"] != METRICS[ranking_metric("toy")].label, "dataset"].unique())
    parts = []
    for mask, caption in ((images, "Images: test-set ODE bits/dim (uniform dequantization; ± standard error over images); DDPM's "
                                   "VLB is an upper bound on discrete data, kept apart"),
                          (~images, "Toys: held-out NLL in nats by the ODE (± standard error over examples), beside the true NLL")):
        if mask.any():
            part = tables.likelihood_table(lik[mask])
            caption = tables.with_notes(caption, part)
            parts.append(f"{caption}\n\n{tables.markdown(part)}\n")
            tables.write_table(part, T / ("likelihood_images" if mask is images else "likelihood_toys"), caption)
    (T / "likelihood.md").write_text("\n".join(parts))
    lt = "\n".join(parts)
    ct = tables.cost_table(rows)
    tables.write_table(ct, T / "cost", "Cost per (model, sampler, steps): NFE, seconds per sample, device" + (
        ", peak GPU memory (n/a: CPU rows)" if "peak GPU memory (MB)" in ct else
        "; no peak memory: on the CPU the process's resident set measures the whole job, not one sampler"))
    tables.numbers_table(rows).to_csv(T / "samplers_numbers.csv", index=False)
    bt = tables.budget_table(rows)
    budget_caption = ("Best sampler setting per NFE budget (mean NFE at or below it), by mean FID or SW2 ± 95 % t "
                      "interval over seed sets; `tied`: settings whose paired difference to the best over the shared "
                      "seed sets has a 95 % interval holding 0 (not distinguishable here)")
    tables.write_table(bt, T / "budget", budget_caption)
    ref = paper_tables()
    ours, datasets = ours_for_paper(rows, list(paper_cells), lik, trainings)
    paper_md = []
    for key, table in ref.items():
        if not isinstance(table, dict) or "rows" not in table:
            continue
        pt = tables.paper_table(table, ours.get(key, {}), datasets.get(key))
        filled = sum(len(v) for k, v in ours.items() if k == key)
        caption = (f"{table['source']}. Published: {table.get('dataset', '')}; ours: {datasets.get(key, 'no cell measured')}"
                   f" ({filled} cell(s) measured by this configuration; the others read `not run`). "
                   + ("Only CIFAR-10 cells are comparable with the published numbers. " if datasets.get(key) != "cifar10"
                      else "") + table.get("note", "") + departures(key, paper_cells, deviations or {}, released, rows)
                   + replicated(key, paper_cells, trainings or {}))
        tables.write_table(pt.set_index(list(pt.columns[: len(pt.columns) - 2 * _n_cols(pt)])), T / f"paper_{key}", caption)
        paper_md.append(f"## {table['source']}\n\n{caption}\n\n{pt.to_markdown(index=False)}\n")
    (T / "paper.md").write_text("\n".join(paper_md))
    md += [f"## Best sampler per NFE budget\n\n{budget_caption}\n\n{tables.markdown(bt)}\n"]
    md += sections + [f"## Likelihood\n\n{lt}", f"## Cost\n\n{tables.markdown(ct)}\n"]
    exps = [json.loads(Path(f).read_text()) for f in experiment_files]
    for exp in exps:
        nums = "\n".join(f"| {k} | {v:.4g} |" for k, v in exp.items() if isinstance(v, (int, float)))
        md.append(f"## Experiment: {exp['experiment']}\n\n{exp['doc']}\n\n![{exp['experiment']}](experiments/"
                  f"{exp['experiment']}.png)\n\n| number | value |\n|---|---|\n{nums}\n")
    guided = guidance_rows(exps)
    if len(guided):
        tables.write_table(guided.set_index(["experiment", "w"]), T / "guidance",
                           "Guidance scale w: clean-classifier accuracy and mean per-class FID of class-conditional samples")
        plots.guidance_scales(guided, F / "guidance")
    (results / "summary.md").write_text("\n".join(md))
    band = {m: (f or {}).get(ranking_metric("toy")) for m, f in toy_floors.items()}
    for model, g in rows.groupby("model"):
        if g["quality_metric"].iloc[0] != METRICS[ranking_metric("toy")].label:
            band[model] = (floors.get(g["dataset"].iloc[0]) or {}).get(ranking_metric("image"))
    plots.quality_vs(rows, "nfe", F / "quality_vs_nfe", band, "NFE")
    plots.budget_curves(rows, F / "budget")
    plots.quality_vs(rows, "seconds_per_sample", F / "quality_vs_seconds", band, "seconds per sample", pareto=True)
    plots.bpd_bars(lik, F / "likelihood")
    curves = pd.concat([pd.read_csv(f).assign(model=Path(f).parent.name,
                                              objective=(objectives or {}).get(Path(f).parent.name, "loss"))
                        for f in curve_files])
    plots.training_curves(curves, F / "training_curves")
