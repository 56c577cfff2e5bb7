"""Course experiments 1-3 on toy distributions with exact densities and scores."""
from __future__ import annotations

import seaborn as sns
import torch

from .. import samplers
from ..data import TOYS
from ..likelihood import ode_nll
from ..losses import LOSSES
from ..models import build_model, build_sde
from ..optim import adam
from ..report.plots import plt, save
from .registry import EXPERIMENTS


@EXPERIMENTS.register("langevin_mixing")
def langevin_mixing(out, n: int = 2000, seed: int = 0):
    """1. Exact score of 1/5 N((-5,-5), I) + 4/5 N((5,5), I): plain Langevin (eps 0.1, 1000 steps) from uniform points
    vs annealed Langevin (NCSN sec. 3.2.2: sigma 20 -> 1, L = 10, T = 100, its Alg. 1's eps = 0.1, i.e. step_lr 0.05 in
    NCSNv2's form): mode weights beside the true 1/5, 4/5."""
    gm = TOYS["mixture2d"]()
    plain = samplers.sample("langevin", gm.score_fn(None), None, (n, 2), seed=seed, steps=1000, step_size=0.1).x
    sde = build_sde("ncsn", sigma_min=1.0, sigma_max=20.0, N=10)
    ann = samplers.sample("annealed_langevin", gm.score_fn(sde), sde, (n, 2), seed=seed, step_lr=0.05, init="uniform",
                          init_range=8.0).x
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.9), sharex=True, sharey=True)
    for ax, (x, title) in zip(axes, [(gm.sample(n, torch.Generator().manual_seed(seed)), "data"),
                                      (plain, "Langevin"), (ann, "annealed Langevin")]):
        w = gm.mode_weights(x)
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4)
        ax.set(title=f"{title}\nmode weights {w[0]:.2f} / {w[1]:.2f}", xlabel="$x_1$")
    axes[0].set_ylabel("$x_2$")
    fig.suptitle("Mixture 1/5, 4/5: Langevin dynamics vs annealed Langevin (true weights 0.20 / 0.80)", fontsize=10)
    fig.tight_layout()
    save(fig, out)
    wp, wa = gm.mode_weights(plain), gm.mode_weights(ann)
    return {"true_weight_minor": 0.2, "langevin_weight_minor": float(wp[0]), "annealed_weight_minor": float(wa[0]),
            "annealed_error": float((wa - gm.weights).abs().max())}


def _train_toy(data, family: str, net: dict, steps: int, lr: float, batch: int, seed: int):
    """A short in-process training run (the Trainer's loop without checkpoints) for the toy experiments."""
    torch.manual_seed(seed)
    model = build_model(family, (data.shape[1],), net)
    opt = adam(model.parameters(), lr)
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
    ax.set(title="VP SDE on a 1-D mixture: Euler-Maruyama samples", xlabel="x", ylabel="density")
    ax.title.set_fontsize(10)
    ax.legend()
    save(fig, out)
    return {"ode_nll": float(nll.nll.mean()), "true_nll": float(-dist.log_prob(test).mean()), "nll_nfe": nll.nfe,
            "weight_left": float((x < 0).double().mean())}


@EXPERIMENTS.register("smile_ode")
def smile_ode(out, steps: int = 6000, n: int = 2000, seed: int = 0):
    """3. The smile: VP SDE, MLP 2x128 ReLU, probability-flow ODE with RK45; samples over data, SW2 to data."""
    from ..metrics import sliced_wasserstein

    dist = TOYS["smile"]()
    data = dist.sample(400, torch.Generator().manual_seed(seed))  # the course's 400 points
    net = {"name": "mlp", "hidden": 128, "depth": 2, "act": "relu", "embedding": "fourier"}
    model, _ = _train_toy(data, "vp", net, steps, 1e-3, 128, seed)
    r = samplers.sample("ode", model.score_fn(), model.sde, (n, 2), seed=seed, method="rk45")
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(r.x[:, 0], r.x[:, 1], s=2, alpha=0.4, label="probability-flow ODE samples")
    ax.scatter(data[:, 0], data[:, 1], s=4, color="k", label="data")
    ax.set_aspect("equal")
    ax.set(title="Probability-flow ODE (RK45) on the smile", xlabel="$x_1$", ylabel="$x_2$")
    ax.title.set_fontsize(10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    save(fig, out)
    fresh = dist.sample(n, torch.Generator().manual_seed(seed + 1))
    return {"sw2_to_data": sliced_wasserstein(r.x, fresh), "ode_nfe": r.nfe,
            "sw2_data_floor": sliced_wasserstein(dist.sample(n, torch.Generator().manual_seed(seed + 2)), fresh)}
