"""The course experiments: small studies that make the theory visible, each returning numbers and drawing a figure.

    EXPERIMENTS[name](out_stem, **options) -> dict of numbers (and writes out_stem.png / .pdf)
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402

from . import samplers  # noqa: E402
from .data import TOYS  # noqa: E402
from .experiment import load_dataset  # noqa: E402
from .likelihood import ode_nll  # noqa: E402
from .losses import LOSSES  # noqa: E402
from .models import build_model, build_sde  # noqa: E402
from .registry import Registry  # noqa: E402
from .report.plots import save  # noqa: E402

EXPERIMENTS = Registry("experiment")


@EXPERIMENTS.register("langevin_mixing")
def langevin_mixing(out, n: int = 2000, seed: int = 0):
    """1. Exact score of 1/5 N((-5,-5), I) + 4/5 N((5,5), I): plain Langevin (eps 0.1, 1000 steps) from uniform points
    vs annealed Langevin (NCSN sec. 3.2.2: sigma 20 -> 1, L = 10, T = 100): mode weights beside the true 1/5, 4/5."""
    gm = TOYS["mixture2d"]()
    plain = samplers.sample("langevin", gm.score_fn(None), None, (n, 2), seed=seed, steps=1000, step_size=0.1).x
    sde = build_sde("ncsn", sigma_min=1.0, sigma_max=20.0, N=10)
    ann = samplers.sample("annealed_langevin", gm.score_fn(sde), sde, (n, 2), seed=seed, step_lr=0.1, init="uniform",
                          init_range=8.0).x
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), sharex=True, sharey=True)
    for ax, (x, title) in zip(axes, [(gm.sample(n, torch.Generator().manual_seed(seed)), "data"),
                                      (plain, "Langevin"), (ann, "annealed Langevin")]):
        w = gm.mode_weights(x)
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4)
        ax.set_title(f"{title}: weights {w[0]:.2f} / {w[1]:.2f}")
    save(fig, out)
    wp, wa = gm.mode_weights(plain), gm.mode_weights(ann)
    return {"true_weight_minor": 0.2, "langevin_weight_minor": float(wp[0]), "annealed_weight_minor": float(wa[0]),
            "annealed_error": float((wa - gm.weights).abs().max())}


def _train_toy(data, family: str, net: dict, steps: int, lr: float, batch: int, seed: int):
    """A short in-process training run (the Trainer's loop without checkpoints) for the toy experiments."""
    torch.manual_seed(seed)
    model = build_model(family, (data.shape[1],), net)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        loss = LOSSES[model.family.loss](model, data[torch.randint(len(data), (batch,), generator=g)])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return model.eval(), losses


@EXPERIMENTS.register("vp_1d")
def vp_1d(out, steps: int = 6000, n: int = 4000, seed: int = 0):
    """2. 1/2 N(-3, 1/4) + 1/2 N(3, 1): VP SDE, MLP 1x128 ReLU, Adam lr 1e-4, batch 64; reverse SDE by Euler-Maruyama;
    histogram over the true density, and the held-out NLL by the ODE beside the true NLL."""
    dist = TOYS["mixture1d"]()
    data = dist.sample(20000, torch.Generator().manual_seed(seed))
    net = {"name": "mlp", "hidden": 128, "depth": 1, "act": "relu", "embedding": "fourier"}
    model, _ = _train_toy(data, "vp", net, steps, 1e-4, 64, seed)
    x = samplers.sample("euler_maruyama", model.score_fn(), model.sde, (n, 1), seed=seed).x
    test = dist.sample(500, torch.Generator().manual_seed(seed + 1))
    nll = ode_nll(model.score_fn(), model.sde, test, exact=True)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    sns.histplot(x[:, 0].numpy(), bins=100, stat="density", ax=ax, label="samples")
    grid = torch.linspace(-6, 7, 400)[:, None]
    ax.plot(grid[:, 0], dist.log_prob(grid).exp(), color="k", label="true density")
    ax.legend()
    save(fig, out)
    return {"ode_nll": float(nll.nll.mean()), "true_nll": float(-dist.log_prob(test).mean()), "nll_nfe": nll.nfe,
            "weight_left": float((x < 0).double().mean())}


@EXPERIMENTS.register("smile_ode")
def smile_ode(out, steps: int = 6000, n: int = 2000, seed: int = 0):
    """3. The smile: VP SDE, MLP 2x128 ReLU, probability-flow ODE with RK45; samples over data, SW2 to data."""
    from .metrics import sliced_wasserstein

    dist = TOYS["smile"]()
    data = dist.sample(400, torch.Generator().manual_seed(seed))  # the course's 400 points
    net = {"name": "mlp", "hidden": 128, "depth": 2, "act": "relu", "embedding": "fourier"}
    model, _ = _train_toy(data, "vp", net, steps, 1e-3, 128, seed)
    r = samplers.sample("ode", model.score_fn(), model.sde, (n, 2), seed=seed, method="rk45")
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(r.x[:, 0], r.x[:, 1], s=2, alpha=0.4, label="probability-flow ODE samples")
    ax.scatter(data[:, 0], data[:, 1], s=4, color="k", label="data")
    ax.set_aspect("equal")
    ax.legend(fontsize=7)
    save(fig, out)
    fresh = dist.sample(n, torch.Generator().manual_seed(seed + 1))
    return {"sw2_to_data": sliced_wasserstein(r.x, fresh), "ode_nfe": r.nfe,
            "sw2_data_floor": sliced_wasserstein(dist.sample(n, torch.Generator().manual_seed(seed + 2)), fresh)}


@EXPERIMENTS.register("ssm_noise")
def ssm_noise(out, steps: int = 1500, noise_std: float = 0.01, seed: int = 0):
    """5. Sliced score matching on digits with and without N(0, 1e-4) noise added to the data: the loss curves.
    Without noise the data lie on a lattice (17 grey levels) and the objective is unbounded below, as NCSN sec. 3.1
    argues for data on a low-dimensional set."""
    d = load_dataset({"name": "digits"})
    curves = {}
    for label, sd in (("no noise", 0.0), (f"noise std {noise_std}", noise_std)):
        torch.manual_seed(seed)
        model = build_model("score", (1, 8, 8), {"name": "mlp", "hidden": 256, "depth": 2, "act": "softplus"},
                            noise_std=sd)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(seed)
        vals = []
        for _ in range(steps):
            x = d.train[torch.randint(len(d.train), (128,), generator=g)]
            loss = LOSSES["score_matching"](model, x, objective="ssm", noise_std=sd, variance_reduction=True)
            opt.zero_grad()
            loss.backward()
            opt.step()
            vals.append(float(loss.detach()))
        curves[label] = vals
    df = pd.concat([pd.DataFrame({"step": np.arange(len(v)), "loss": v, "data": k}) for k, v in curves.items()])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.lineplot(df, x="step", y="loss", hue="data", ax=ax)
    ax.set(yscale="symlog", title="Sliced score matching on digits")
    save(fig, out)
    tail = {k: v[-200:] for k, v in curves.items()}
    return {f"final_loss[{k}]": float(np.mean(v)) for k, v in tail.items()} | \
        {f"loss_std_last200[{k}]": float(np.std(v)) for k, v in tail.items()}


@EXPERIMENTS.register("objective_cost")
def objective_cost(out, dims=(2, 4, 8, 16, 32, 64, 128, 256), repeats: int = 5, batch: int = 128, seed: int = 0):
    """6. Seconds per training step of exact, sliced and denoising score matching as the dimension D grows (log-log):
    exact SM needs D backward passes for tr(grad s), the others a fixed number."""
    rows = []
    for D in dims:
        torch.manual_seed(seed)
        model = build_model("score", (D,), {"name": "mlp", "hidden": 256, "depth": 2, "act": "softplus"}, noise_std=0.1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
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


@EXPERIMENTS.register("digits_guidance")
def digits_guidance(out, model_path, classifier_path, scales=(0.0, 1.0, 2.0, 4.0), per_class: int = 50,
                    steps: int = 100, classifier_steps: int = 3000, cache_root="work/fidelity-cache", seed: int = 0):
    """4. Digits with a time-dependent classifier p_t(y | x(t)) (MLP 64 pixels + t, 2x128): class-conditional samples
    per guidance scale w, scored by the independent clean digits-CNN (accuracy, per-class FID on its features), and
    inpainting of the bottom half of held-out test digits (error on the masked region)."""
    from .guidance import Inpainting, classifier_guided, classifier_log_prob, train_time_classifier
    from .metrics.digits_cnn import accuracy, load_digits_cnn
    from .metrics.fidelity import fidelity_metrics
    from .train import load_model

    d = load_dataset({"name": "digits"})
    model = load_model(model_path)
    clf = train_time_classifier(model.sde, d.train, d.train_labels, 10, steps=classifier_steps, seed=seed)
    clean = load_digits_cnn(classifier_path)
    y = torch.arange(10).repeat_interleave(per_class)
    res, grids = {}, {}
    for w in scales:
        fn = classifier_guided(model.score_fn(), classifier_log_prob(clf, y), w)
        x = samplers.sample("euler_maruyama", fn, model.sde, (len(y), 1, 8, 8), steps=steps, seed=seed).x.clamp(-1, 1)
        res[f"accuracy[w={w:g}]"] = accuracy(clean, x, y)
        fids = [fidelity_metrics(d.images.to_uint8(x[y == c]), d.images.to_uint8(d.test[d.test_labels == c]),
                                 extractor="digits-cnn", weights_path=classifier_path, cache_root=cache_root,
                                 isc=False, kid=False)["fid"] for c in range(10)]
        res[f"per_class_fid_mean[w={w:g}]"] = float(np.mean(fids))
        grids[w] = x.reshape(10, per_class, 1, 8, 8)[:, :8].transpose(0, 1).reshape(-1, 1, 8, 8)
    truth = d.test[:200]
    mask = torch.zeros_like(truth)
    mask[..., :4, :] = 1  # the top half is observed
    con = Inpainting(model.sde, truth, mask, torch.Generator().manual_seed(seed))
    filled = samplers.sample("euler_maruyama", model.score_fn(), model.sde, truth.shape, steps=steps, seed=seed,
                             constraint=con).x.clamp(-1, 1)
    free = samplers.sample("euler_maruyama", model.score_fn(), model.sde, truth.shape, steps=steps, seed=seed + 1).x
    hidden = 1 - mask
    mse = lambda a: float(((a - truth) ** 2 * hidden).sum() / hidden.sum())  # noqa: E731
    res.update(inpaint_mse_masked=mse(filled), unconditional_mse_masked=mse(free.clamp(-1, 1)),
               mean_image_mse_masked=mse(d.train.mean(0, keepdim=True).expand_as(truth)))
    from torchvision.utils import make_grid

    fig, axes = plt.subplots(1, len(scales) + 1, figsize=(3.2 * (len(scales) + 1), 3.6))
    for ax, w in zip(axes, scales):
        ax.imshow(make_grid(d.images.to_uint8(grids[w]), nrow=10, padding=1).permute(1, 2, 0))
        ax.set_title(f"w = {w:g}: accuracy {res[f'accuracy[w={w:g}]']:.2f}", fontsize=9)
    show = torch.cat([truth[:10] * mask[:10] - (1 - mask[:10]), filled[:10], truth[:10]])
    axes[-1].imshow(make_grid(d.images.to_uint8(show), nrow=10, padding=1).permute(1, 2, 0))
    axes[-1].set_title(f"inpainting (observed / filled / truth)\nmasked MSE {res['inpaint_mse_masked']:.3f}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    save(fig, out)
    return res
