"""Course experiments 5-6: the score-matching objectives (stability without noise, cost with the dimension)."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import seaborn as sns
import torch

from ..spec import load_dataset
from ..losses import LOSSES
from ..models import build_model
from ..optim import adam
from ..report.plots import plt, save
from .registry import EXPERIMENTS


@EXPERIMENTS.register("ssm_noise")
def ssm_noise(out, steps: int = 4000, noise_stds=(0.0, 0.01, 0.1), lr: float = 1e-3, batch: int = 128, seed: int = 0):
    """5. Sliced score matching (VR) on digits with and without N(0, sigma^2) noise added to the data: loss curves.
    Three digits pixels are constant, so without noise the objective is unbounded below (tr grad s -> -inf there at no
    cost in ||s||^2; NCSN sec. 3.1); with noise it is bounded by -D / (2 sigma^2), since J(x + z) <= J(z) = D/sigma^2."""
    d = load_dataset({"name": "digits"})
    D, curves = d.train[0].numel(), {}
    for sd in noise_stds:
        torch.manual_seed(seed)
        model = build_model("score", (1, 8, 8), {"name": "mlp", "hidden": 256, "depth": 2, "act": "softplus"},
                            noise_std=sd)
        opt = adam(model.parameters(), lr)
        g = torch.Generator().manual_seed(seed)
        vals = []
        for _ in range(steps):
            x = d.train[torch.randint(len(d.train), (batch,), generator=g)]
            loss = LOSSES["score_matching"](model, x, objective="ssm", noise_std=sd, variance_reduction=True)
            opt.zero_grad()
            loss.backward()
            opt.step()
            vals.append(float(loss.detach()))
        curves[sd] = np.asarray(vals)
    label = lambda sd: f"noise std {sd:g}" if sd else "no noise"  # noqa: E731
    df = pd.concat([pd.DataFrame({"step": np.arange(steps), "loss": v, "data": label(sd)}) for sd, v in curves.items()])
    fig, ax = plt.subplots(figsize=(6, 3.8))
    sns.lineplot(df, x="step", y="loss", hue="data", ax=ax, linewidth=0.6)
    for sd in noise_stds:
        if sd and D / (2 * sd**2) < 10 * np.abs(df["loss"]).max():
            ax.axhline(-D / (2 * sd**2), ls="--", lw=0.8, color="grey")
            ax.annotate(f"bound for std {sd:g}", (0, -D / (2 * sd**2)), fontsize=7, va="bottom")
    ax.set(yscale="symlog", title="Sliced score matching on digits (lower is not better: unbounded without noise)")
    save(fig, out)
    res, q = {}, steps // 4
    for sd, v in curves.items():
        res[f"final_loss[{label(sd)}]"] = float(v[-q // 2:].mean())
        res[f"drop_per_1000_steps_last_quarter[{label(sd)}]"] = float((v[-2 * q:-q].mean() - v[-q:].mean()) * 1000 / q)
        res[f"loss_std_last_quarter[{label(sd)}]"] = float(v[-q:].std())
        if sd:
            res[f"lower_bound[{label(sd)}]"] = -D / (2 * sd**2)
    return res


@EXPERIMENTS.register("objective_cost")
def objective_cost(out, dims=(2, 4, 8, 16, 32, 64, 128, 256), repeats: int = 5, batch: int = 128, seed: int = 0):
    """6. Seconds per training step of exact, sliced and denoising score matching as the dimension D grows (log-log):
    exact SM needs D backward passes for tr(grad s), the others a fixed number."""
    rows = []
    for D in dims:
        torch.manual_seed(seed)
        model = build_model("score", (D,), {"name": "mlp", "hidden": 256, "depth": 2, "act": "softplus"}, noise_std=0.1)
        opt = adam(model.parameters(), 1e-4)
        x = torch.randn(batch, D)
        for obj, extra in (("esm", {"max_dim": max(dims)}), ("ssm", {}), ("dsm", {"noise_std": 0.1})):
            times = []
            for r in range(repeats + 1):
                start = time.perf_counter()
                loss = LOSSES["score_matching"](model, x, objective=obj, **extra)
                opt.zero_grad()
                loss.backward()
                opt.step()
                times.append(time.perf_counter() - start)
            rows.append({"D": D, "objective": obj, "seconds_per_step": float(np.median(times[1:]))})
    df = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    sns.lineplot(df, x="D", y="seconds_per_step", hue="objective", marker="o", ax=ax)
    ax.set(xscale="log", yscale="log", title="Cost per training step vs data dimension")
    save(fig, out)
    out_d = {}
    for obj, g in df.groupby("objective"):
        big = g[g["D"] >= 16]
        slope = np.polyfit(np.log(big["D"]), np.log(big["seconds_per_step"]), 1)[0]
        out_d[f"loglog_slope[{obj}]"] = float(slope)
        out_d[f"seconds_per_step_D{max(dims)}[{obj}]"] = float(g[g["D"] == max(dims)]["seconds_per_step"].iloc[0])
    return out_d
