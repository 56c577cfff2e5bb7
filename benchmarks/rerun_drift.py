"""How far a rerun moves each sampler cell, against the interval the tables state: two results trees of the same
configuration (e.g. the committed results/committed/default and your run's results/default), compared cell by cell
(model, variant, steps: the seed-set mean of FID or SW2 and its 95 % t interval). Prints a Markdown summary; `--out`
also writes it.
    python benchmarks/rerun_drift.py results/committed/default results/default
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from sgm_bench.report.stats import half_width


def cells(root: Path) -> pd.DataFrame:
    out = []
    for f in sorted(root.glob("metrics/*/samplers.json")):
        rows = pd.DataFrame(json.loads(f.read_text())["rows"])
        metric = "fid" if "fid" in rows and rows["fid"].notna().any() else "sw"
        for (variant, steps), g in rows.groupby(["variant", rows["steps"].fillna(-1)]):
            out.append({"model": f.parent.name, "variant": variant, "steps": steps, "metric": metric,
                        "mean": g[metric].mean(), "pm": half_width(g[metric]), "seed_sets": len(g)})
    return pd.DataFrame(out).set_index(["model", "variant", "steps"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--label", default="")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    a, b = cells(args.a), cells(args.b)
    d = a.join(b[["mean"]].rename(columns={"mean": "mean_b"}), how="inner")
    d["moved"] = (d["mean"] - d["mean_b"]).abs()
    d["ratio"] = d["moved"] / d["pm"].where(d["pm"] > 0)
    lines = [f"# Rerun drift of the sampler cells: {args.a} vs {args.b}", "", args.label, "",
             f"{len(d)} cells ({d['seed_sets'].iloc[0]} seed sets each; ± is the half-width of the seed-set mean's 95 % "
             f"t interval, as the tables state it); {int((d['moved'] == 0).sum())} identical.", "",
             f"- the rerun's mean inside the committed 95 % interval: {(d['moved'] <= d['pm']).mean():.1%}; at most 2 ±: "
             f"{(d['moved'] <= 2 * d['pm']).mean():.1%}",
             f"- |moved| / ±, median {d['ratio'].median():.2f}, 90 % {d['ratio'].quantile(0.9):.2f}, 99 % "
             f"{d['ratio'].quantile(0.99):.1f}, max {d['ratio'].max():.1f}", "", "The cells that moved most, in their ±:", "",
             d.sort_values("ratio", ascending=False).head(10)[["metric", "mean", "pm", "mean_b", "ratio"]]
             .round(4).to_markdown(), ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
