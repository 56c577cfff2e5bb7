"""Figures with seaborn: one colour per sampler everywhere; PNG and PDF. seaborn is imported inside the functions
that draw with it, so the sampling jobs (which only need `sample_grid`) start faster."""
from __future__ import annotations

import functools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .stats import half_width  # noqa: E402


@functools.cache
def palette() -> dict:
    """One colour per sampler, the same in every figure: tab10's ten distinct hues, then tab20's light shades (tab20
    in order puts each dark shade beside its own light one, which a reader cannot tell apart)."""
    import seaborn as sns

    from ..samplers import names  # every registered sampler, in name order

    tab20 = sns.color_palette("tab20", 20)
    return dict(zip(names(), tab20[0::2] + tab20[1::2]))


MARKERS = "os^Dv<>PXph*8"
LINES = ("-", "--", ":", "-.")


def variant_styles(rows) -> dict:
    """{variant: (line style, marker)}: a sampler's own name draws solid with its marker, its named variants (e.g.
    ddim_eta0.2, ddim_eta0.5) the next line styles and markers, so that variants sharing a colour stay apart."""
    out = {}
    pairs = rows[["variant", "sampler"]].drop_duplicates() if "sampler" in rows else rows[["variant"]].assign(
        sampler=rows["variant"]).drop_duplicates()
    for sampler, g in pairs.groupby("sampler", sort=False):
        variants = sorted(g["variant"], key=lambda v: (v != sampler, v))
        base = MARKERS.index(marker(sampler))
        for k, v in enumerate(variants):
            out[v] = (LINES[k % len(LINES)], MARKERS[(base + k) % len(MARKERS)])
    return out


def marker(sampler: str) -> str:
    """One marker per sampler, so that colours are not the only cue (print, colour-blind readers)."""
    order = list(palette())  # the samplers in name order
    return MARKERS[order.index(sampler) % len(MARKERS)] if sampler in order else "o"


def plain_log(axis) -> None:
    """A log axis labelled as plain numbers (not 2 x 10^2), ticked at 1, 2 and 5 times powers of ten where the data
    span under two decades (else at the powers alone, whose labels would collide); call it after plotting."""
    axis.axes.set_yscale("log") if axis is axis.axes.yaxis else axis.axes.set_xscale("log")
    lo, hi = sorted(axis.get_view_interval())
    narrow = lo > 0 and hi / lo < 100
    axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0) if narrow else (1.0,)))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def save(fig, stem, formats=("png", "pdf")) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(f".{f}") for f in formats]
    for p in paths:
        fig.savefig(p, bbox_inches="tight", dpi=120)
    plt.close(fig)
    return paths


def bpd_bars(lik, stem):
    """ODE bits/dim per image model and NLL in nats per toy model, each with its error bar (standard error over test
    images / examples); DDPM's variational bound and the true NLL beside them."""
    panels = [(m, c, e, extra, label) for m, c, e, extra, label in (
        (lik["bpd"].notna() if "bpd" in lik else None, "bpd", "bpd_se", "vlb_bpd", "bits/dim (images)"),
        (lik["nll"].notna() if "nll" in lik else None, "nll", "nll_se", "true_nll", "NLL in nats (toys)"))
        if m is not None and m.any()]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.5 * max(len(panels), 1), 3.6), squeeze=False)
    for ax, (mask, col, err, extra, label) in zip(axes.flat, panels):
        g = lik[mask].reset_index(drop=True)
        xs = range(len(g))
        ax.bar([x - 0.2 for x in xs], g[col], 0.4, yerr=g[err].fillna(0) if err in g else None, capsize=3,
               color="C0", label="probability-flow ODE")
        if extra in g and g[extra].notna().any():
            ax.bar([x + 0.2 for x in xs], g[extra], 0.4, color="C1",
                   label="DDPM variational bound" if extra == "vlb_bpd" else "true NLL")
        ax.set_xticks(list(xs), g["model"], rotation=45, ha="right", fontsize=8)
        ax.set(ylabel=label, title=label.split(" (")[0] + " on the test split")
        ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.12), ncol=2, frameon=False)
    fig.suptitle("Test-set likelihood (error bars: standard error over test images or examples)", fontsize=10)
    fig.tight_layout()
    return save(fig, stem)


def pareto_front(x, y):
    """Indices of the points no other point beats on both x and y (lower is better on both), sorted by x."""
    order = sorted(range(len(x)), key=lambda i: (x[i], y[i]))
    front, best = [], float("inf")
    for i in order:
        if y[i] < best:
            front.append(i)
            best = y[i]
    return front


def quality_vs(rows, x: str, stem, floors: dict, xlabel: str, pareto: bool = False):
    """Quality against cost per model: one point per (sampler, steps) with the seed-set mean's 95 % t interval as
    error bars, log axes (an outlier FID of 700 would squash the useful range of a linear one), the floor's 5-95 %
    band in grey, diverged settings marked with a red x on the top edge; one colour per sampler in every panel and
    figure, its named variants told apart by line style and marker; with `pareto`, the front of settings that no
    other is both cheaper and better than."""
    models = list(dict.fromkeys(rows["model"]))
    cols = min(4, len(models))
    fig, axes = plt.subplots((len(models) + cols - 1) // cols, cols, figsize=(3.4 * cols, 2.9 * ((len(models) + cols - 1) // cols)),
                             squeeze=False)
    colours, styles = palette(), variant_styles(rows)
    for ax, model in zip(axes.flat, models):
        g = rows[rows["model"] == model]
        ok = g[~g["diverged"]]
        metrics = list(dict.fromkeys(ok["quality_metric"]))  # FIDs of two detectors: separate, labelled lines
        for (variant, metric), v in ok.groupby(["variant", "quality_metric"], sort=False):
            a = v.groupby(v["steps"].fillna(-1)).agg(x=(x, "mean"), y=("quality", "mean"),
                                                     e=("quality", half_width)).sort_values("x")
            sampler = v["sampler"].iloc[0]
            style = styles.get(variant, ("-", marker(sampler)))
            ax.errorbar(a["x"], a["y"], yerr=a["e"].fillna(0), marker=style[1], ms=4, lw=1, capsize=2,
                        label=variant if len(metrics) == 1 else f"{variant}, {metric}", color=colours.get(sampler),
                        ls=style[0])
        if pareto and len(metrics) == 1:  # no front across two detectors' FIDs
            pts = ok.groupby(["variant", ok["steps"].fillna(-1)]).agg(x=(x, "mean"), y=("quality", "mean")).dropna()
            front = pts.iloc[pareto_front(list(pts["x"]), list(pts["y"]))]
            ax.step(front["x"], front["y"], where="post", color="black", lw=1.2, alpha=0.7, label="Pareto front", zorder=3)
        fl = floors.get(model)
        if fl:
            ax.axhspan(fl["p05"], fl["p95"], color="0.85", zorder=0, label="floor (5-95 %)")
        for _, d in g[g["diverged"]].groupby(["variant", g["steps"].fillna(-1)]).first().iterrows():
            ax.plot(d[x], 1.0, "x", color="red", transform=ax.get_xaxis_transform(), clip_on=False)
        ax.set(title=model, xlabel=xlabel, ylabel=" / ".join(metrics))
        plain_log(ax.xaxis)  # ticks at 1, 2, 5 x 10^k: a panel within one decade still gets labels
        ax.tick_params(labelsize=7)
        q = ok["quality"][ok["quality"] > 0]
        if len(q) and q.max() > 5 * q.min():  # a range wide enough for outliers to squash a linear axis
            plain_log(ax.yaxis)
        ax.title.set_fontsize(9)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    handles = {lab: h for ax in axes.flat for h, lab in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=6, fontsize=7, bbox_to_anchor=(0.5, -0.06))
    fig.suptitle("Quality vs " + xlabel + " (mean ± 95 % interval over seed sets; grey: floor; red x: diverged"
                 + ("; black: Pareto front)" if pareto else ")"), fontsize=10)
    fig.tight_layout()
    return save(fig, stem)


def budget_curves(rows, stem):
    """The best quality a model reaches within an NFE budget: for each model the running minimum, over its settings
    sorted by mean NFE, of the seed-set mean FID (digits) or SW2 (toys); settings with a non-finite seed set never
    count. One panel per quality measure, log axes: the budget table's question (which sampler at 10 NFE?) as a curve."""
    ok = rows[~rows["diverged"]].dropna(subset=["quality"])
    cells = (ok.groupby(["quality_metric", "model", "variant", ok["steps"].fillna(-1)])
             .agg(nfe=("nfe", "mean"), q=("quality", "mean")).reset_index())
    bad = rows[rows["diverged"]].groupby(["model", "variant", rows["steps"].fillna(-1)]).size()
    cells = cells[[k not in bad.index for k in zip(cells["model"], cells["variant"], cells["steps"])]]
    metrics = list(dict.fromkeys(cells["quality_metric"]))
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(5.2 * max(len(metrics), 1), 3.8), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for model, g in cells[cells["quality_metric"] == metric].groupby("model"):
            g = g.sort_values("nfe")
            ax.step(g["nfe"], g["q"].cummin(), where="post", marker="o", ms=3, label=model)
        ax.set(xscale="log", yscale="log", xlabel="NFE budget (mean NFE of the setting)",
               ylabel=f"best {metric} within budget", title=metric)
        plain_log(ax.yaxis)
        ax.legend(fontsize=7)
    fig.suptitle("Best quality reachable within an NFE budget (seed-set means; the budget table in tables/budget.md)",
                 fontsize=10)
    fig.tight_layout()
    return save(fig, stem)


def guidance_scales(df, stem):
    """df: experiment, w, accuracy, per-class FID: the guidance trade-off per method."""
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, col in zip(axes, ("accuracy", "per-class FID")):
        sns.lineplot(df, x="w", y=col, hue="experiment", marker="o", ax=ax)
    if "floor p05" in df and df["floor p05"].notna().any():
        axes[1].axhspan(df["floor p05"].min(), df["floor p95"].max(), color="0.85", zorder=0)
    axes[0].set(title="Clean-classifier accuracy", ylim=(0, 1.02))
    axes[1].set(title="Mean per-class FID\n(grey: floor of real images, 5-95 %)")
    plain_log(axes[1].yaxis)
    for ax in axes:
        ax.title.set_fontsize(10)
    fig.suptitle("Class-conditional samples per guidance scale w", fontsize=11)
    fig.tight_layout()
    return save(fig, stem)


def training_curves(curves, stem):
    """curves: DataFrame with model, objective, step, loss: one panel per objective (losses of different objectives
    are on different scales), a running mean of 25 steps, log y."""
    import seaborn as sns

    if curves.empty:  # every model of the configuration is a released checkpoint: nothing was trained
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.text(0.5, 0.5, "no model trained here (released checkpoints)", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
        return save(fig, stem)
    sm = curves.assign(loss=curves.groupby("model")["loss"].transform(lambda v: v.rolling(25, min_periods=1).mean()))
    g = sns.relplot(sm, x="step", y="loss", hue="model", col="objective", kind="line", col_wrap=min(2, sm["objective"].nunique()),
                    height=2.8, aspect=1.4, facet_kws={"sharey": False}, palette="tab20")
    g.set(yscale="log")
    g.set_titles("{col_name}")
    g.figure.suptitle("Training loss (running mean of 25 steps), one panel per objective", fontsize=10, y=1.02)
    return save(g.figure, stem)


def sample_grid(x: torch.Tensor, stem, title: str, images=None, limits=None, formats=("png", "pdf")):
    """An 8x8 image grid, or a scatter / histogram for toy samples (on the shared `limits` (lo, hi) when given, so
    that every sampler's panel of one model is drawn on the same axes)."""
    fig, ax = plt.subplots(figsize=(4, 4))
    if len(x) == 0:  # every sample diverged: the panel says so instead of failing the job
        ax.text(0.5, 0.5, "no finite sample", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
    elif images is not None:
        from torchvision.utils import make_grid

        grid = make_grid(images.to_uint8(x[:64]), nrow=8, padding=1).permute(1, 2, 0)
        ax.imshow(grid.numpy())
        ax.axis("off")
    elif x.shape[1] == 1:
        ax.hist(x[:, 0].numpy(), bins=80, density=True, range=limits)
    else:
        ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=2, alpha=0.5)
        ax.set_aspect("equal")
        if limits is not None:
            ax.set_xlim(*limits)
            ax.set_ylim(*limits)
    ax.set_title(title, fontsize=9)
    return save(fig, stem, formats)
