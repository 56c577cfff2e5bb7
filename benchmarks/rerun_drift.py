"""How far a rerun moves each sampler cell, against the ± the tables state: two results trees of the same configuration
(e.g. the committed results/default and a rerun on another machine), compared cell by cell (model, variant, steps:
the seed-set mean of FID or SW2). Prints a Markdown summary; `--out` also writes it.
    python benchmarks/rerun_drift.py results/default /path/to/rerun/results/default --out results/benchmarks/rerun_drift.md
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def cells(root: Path) -> pd.DataFrame:
    out = []
    for f in sorted(root.glob("metrics/*/samplers.json")):
        rows = pd.DataFrame(json.loads(f.read_text())["rows"])
        metric = "fid" if "fid" in rows and rows["fid"].notna().any() else "sw"
        for (variant, steps), g in rows.groupby(["variant", rows["steps"].fillna(-1)]):
            out.append({"model": f.parent.name, "variant": variant, "steps": steps, "metric": metric,
                        "mean": g[metric].mean(), "pm": g[metric].std(ddof=0), "seed_sets": len(g)})
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
             f"{len(d)} cells ({d['seed_sets'].iloc[0]} seed sets each; ± is the std over them, ddof 0, as the tables "
             f"state it); {int((d['moved'] == 0).sum())} identical.", "",
             f"- moved by at most their ±: {(d['moved'] <= d['pm']).mean():.1%}; at most 2 ±: "
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
