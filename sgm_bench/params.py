"""Parameterizations: every network output converts to the score here, and nowhere else.

With x_t = m_t x_0 + s_t eps (Song et al. 2021, eq. 29-33):
  score = -eps / s_t                       ('eps', DDPM's eps_theta; Ho et al. eq. 11)
  score = (m_t x0 - x_t) / s_t^2           ('x0')
  score = out / s_t                        ('scaled_score', NCSNv2 / NCSN++: s_theta(x, sigma) = s_theta(x) / sigma)
  score = out                              ('score', NCSN)
  score from DDPM's mu_theta via x0 = (mu - c2 x_t) / c1, c1, c2 the posterior mean coefficients ('mu', Ho et al. eq. 7)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .registry import Registry
from .sde import bcast

PARAMETERIZATIONS = Registry("parameterization")


@dataclass
class NoiseLevel:
    """Per-example m_t, s_t [B] and, for the discrete DDPM chain, the posterior mean coefficients c1, c2."""

    m: torch.Tensor
    s: torch.Tensor
    c1: torch.Tensor | None = None
    c2: torch.Tensor | None = None


def x0_to_score(x0, x, n: NoiseLevel):
    return (bcast(n.m, x) * x0 - x) / bcast(n.s, x) ** 2


PARAMETERIZATIONS.add("score", lambda out, x, n: out)
PARAMETERIZATIONS.add("scaled_score", lambda out, x, n: out / bcast(n.s, x))
PARAMETERIZATIONS.add("eps", lambda out, x, n: -out / bcast(n.s, x))
PARAMETERIZATIONS.add("x0", x0_to_score)
PARAMETERIZATIONS.add("mu", lambda out, x, n: x0_to_score((out - bcast(n.c2, x) * x) / bcast(n.c1, x), x, n))


def to_score(param: str, out: torch.Tensor, x: torch.Tensor, n: NoiseLevel) -> torch.Tensor:
    """Network output under `param` to the score grad_x log p_t(x)."""
    return PARAMETERIZATIONS[param](out, x, n)


def score_to_eps(score, x, n: NoiseLevel):
    """eps = -s_t score."""
    return -bcast(n.s, x) * score


def score_to_x0(score, x, n: NoiseLevel):
    """Tweedie: x0 = (x_t + s_t^2 score) / m_t."""
    return (x + bcast(n.s, x) ** 2 * score) / bcast(n.m, x)
