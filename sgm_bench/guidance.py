"""Controllable generation (Song et al. 2021, sec. 5; Dhariwal & Nichol 2021; Ho & Salimans 2022).

Everything here turns a score function into another score function, or constrains a sampler's state, so every
SDE sampler and the probability-flow ODE can use it unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .nets.embed import GaussianFourier
from .nets.unet import UNetClassifier
from .optim import adam
from .registry import Registry
from .sde import SDE, bcast


TIME_CLASSIFIERS = Registry("time-dependent classifier")


@TIME_CLASSIFIERS.register("mlp")
class TimeClassifier(nn.Module):
    """p_t(y | x(t)): an MLP on the flattened pixels and Fourier features of t (2 hidden layers of 128)."""

    def __init__(self, shape, num_classes: int, hidden: int = 128, embed: int = 32):
        super().__init__()
        self.embed = GaussianFourier(embed, scale=16.0)
        self.net = nn.Sequential(nn.Linear(math.prod(shape) + embed, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, num_classes))

    def forward(self, x, t):
        return self.net(torch.cat([x.flatten(1), self.embed(t)], 1))


@TIME_CLASSIFIERS.register("unet")
class UNetTimeClassifier(UNetClassifier):
    """p_t(y | x(t)) for images: the U-Net encoder conditioned on Fourier features of t, pooled to logits."""

    def __init__(self, shape, num_classes: int, **encoder):
        super().__init__(shape, num_classes, **{"embedding": "fourier", **encoder})

    def forward(self, x, t):
        return super().forward(x, t * self.cond.noise.time_scale)


def train_time_classifier(sde: SDE, x, y, num_classes: int, steps: int = 3000, batch: int = 128, lr: float = 1e-3,
                          eps: float = 1e-3, seed: int = 0, net: dict | None = None, progress: bool = False,
                          device="cpu") -> nn.Module:
    """Cross-entropy on x(t) ~ p_0t(. | x0) with t ~ U(eps, 1): a classifier of noisy data at every noise level.
    `net`: {name: mlp | unet, ...options}; the MLP (2x128) by default."""
    g = torch.Generator(device).manual_seed(seed)
    torch.manual_seed(seed)
    net = dict(net or {"name": "mlp"})
    clf = TIME_CLASSIFIERS[net.pop("name", "mlp")](tuple(x.shape[1:]), num_classes, **net).to(device)
    opt = adam(clf.parameters(), lr)
    x, y = x.to(device), y.to(device)  # once, not per step
    for _ in tqdm(range(steps), disable=not progress, desc="time classifier"):
        idx = torch.randint(len(x), (batch,), generator=g, device=device)
        t = torch.rand(batch, generator=g, device=device) * (1 - eps) + eps
        mean, std = sde.marginal_prob(x[idx], t)
        xt = mean + bcast(std, mean) * torch.randn(mean.shape, generator=g, device=device)
        loss = F.cross_entropy(clf(xt, t), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return clf.eval()


def classifier_guided(score_fn, log_prob_y, w: float = 1.0):
    """grad log p_t(x | y) = grad log p_t(x) + w grad log p_t(y | x) (eq. 14 with a guidance scale w).

    log_prob_y(x, t) -> [B] is log p_t(y | x) for the wanted labels (e.g. from a TimeClassifier).
    """

    def guided(x, t):
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            grad = torch.autograd.grad(log_prob_y(xg, t).sum(), xg)[0]
        return score_fn(x, t) + w * grad

    return guided


def classifier_log_prob(clf: nn.Module, y: torch.Tensor):
    """log p_t(y | x) from a time-dependent classifier's logits, for classifier_guided."""
    return lambda x, t: torch.log_softmax(clf(x, t), 1).gather(1, y[:, None])[:, 0]


def classifier_free(cond_score_fn, uncond_score_fn, w: float):
    """s~(x, t, y) = (1 + w) s(x, t, y) - w s(x, t, null) (Ho & Salimans 2022, eq. 6 on scores): two evaluations a call."""

    def guided(x, t):
        return (1 + w) * cond_score_fn(x, t) - w * uncond_score_fn(x, t)

    guided.nfe_per_call = 2  # the conditional and the unconditional network: both count as NFE
    return guided


class Inpainting:
    """Known pixels follow the forward-noised observation: x[known] <- m_t y + s_t z at every step (App. I.2)."""

    def __init__(self, sde: SDE, y: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None):
        self.sde, self.y, self.mask, self.gen = sde, y, mask.to(y.dtype), generator

    def __call__(self, x, t):
        mean, std = self.sde.marginal_prob(self.y, t)
        z = torch.randn(x.shape, generator=self.gen, device=x.device)
        known = mean + bcast(std, x) * z
        return x * (1 - self.mask) + known * self.mask

    def finish(self, x):
        return x * (1 - self.mask) + self.y * self.mask


class Colorization(Inpainting):
    """Grey levels as a known linear view: in an orthogonal colour basis whose first axis is (1,1,1)/sqrt(3), the
    first channel is the (scaled) grey image; it is imposed like an inpainting mask (App. I.2)."""

    def __init__(self, sde: SDE, grey: torch.Tensor, generator: torch.Generator | None = None):
        q, _ = torch.linalg.qr(torch.tensor([[1.0, 1, 1], [0, 1, 0], [0, 0, 1]]).T)
        self.M = q.T * torch.sign(q.T[0, 0])  # rows: orthonormal basis, first row (1,1,1)/sqrt(3)
        known = grey.new_zeros(grey.shape[0], 3, *grey.shape[2:])
        known[:, :1] = grey * 3**0.5  # the first decoupled channel of a grey pixel g*(1,1,1)
        mask = torch.zeros_like(known)
        mask[:, :1] = 1
        super().__init__(sde, known, mask, generator)

    def _to(self, x):
        return torch.einsum("ij,bjhw->bihw", self.M.to(x), x)

    def _from(self, x):
        return torch.einsum("ji,bjhw->bihw", self.M.to(x), x)

    def __call__(self, x, t):
        return self._from(super().__call__(self._to(x), t))

    def finish(self, x):
        return self._from(super().finish(self._to(x)))
